"""Serving-side configuration: defaults, every variable, bad values reported with the default used."""

from __future__ import annotations

from servewatch.instrumentation.settings import Settings


def test_defaults() -> None:
    settings, problems = Settings.from_environ({})
    assert settings == Settings() and problems == []
    assert (settings.profile_interval, settings.max_columns, settings.metric_interval) == (60.0, 64, 60.0)
    assert (settings.metrics_exporter, settings.logs_protocol, settings.disabled) == ("otlp", "http/protobuf", False)


def test_every_variable() -> None:
    settings, problems = Settings.from_environ({
        "SERVEWATCH_DISABLED": "TRUE", "SERVEWATCH_SPEC": "/etc/servewatch.yaml", "SERVEWATCH_PROFILE_INTERVAL": "0.5",
        "SERVEWATCH_SPOOL_DIR": "/var/spool/sw", "SERVEWATCH_MAX_COLUMNS": "16", "OTEL_METRIC_EXPORT_INTERVAL": "2500",
        "OTEL_METRIC_EXPORT_TIMEOUT": "1000", "OTEL_METRICS_EXPORTER": "console", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
        "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "Delta"})
    assert problems == []
    assert settings == Settings(disabled=True, spec_path="/etc/servewatch.yaml", profile_interval=0.5,
                                spool_dir="/var/spool/sw", max_columns=16, metric_interval=2.5, metric_timeout=1.0,
                                metrics_exporter="console", logs_protocol="http/protobuf", metrics_protocol="grpc",
                                delta_histograms=True)


def test_bad_values_fall_back_to_defaults_with_one_line_each() -> None:
    settings, problems = Settings.from_environ({
        "SERVEWATCH_DISABLED": "maybe", "SERVEWATCH_PROFILE_INTERVAL": "-3", "SERVEWATCH_MAX_COLUMNS": "2.5",
        "OTEL_METRIC_EXPORT_INTERVAL": "soon", "OTEL_METRICS_EXPORTER": "prometheus",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})
    assert settings == Settings()
    assert len(problems) == 6
    assert any("SERVEWATCH_PROFILE_INTERVAL='-3'" in line and "using 60" in line for line in problems)
    assert any("OTEL_METRIC_EXPORT_INTERVAL='soon'" in line and "using 60000" in line for line in problems)
    assert any("prometheus" in line and "using otlp" in line for line in problems)
    assert any("http/json" in line for line in problems)


def test_the_first_usable_metrics_exporter_is_taken() -> None:
    settings, problems = Settings.from_environ({"OTEL_METRICS_EXPORTER": "prometheus,otlp"})
    assert settings.metrics_exporter == "otlp" and len(problems) == 1
    assert Settings.from_environ({"OTEL_METRICS_EXPORTER": "none"})[0].metrics_exporter == "none"
