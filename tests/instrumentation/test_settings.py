"""Serving-side configuration: defaults, every variable, bad values reported with the default used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
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


SERVING = """
import logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")
from servewatch.instrumentation import monitor, runtime
assert runtime.current("python").spec.models == ()
with monitor("m") as call:
    call.inputs = [[1.0, 2.0]]
    call.outputs = [0.5]
print("served")
"""


@pytest.mark.parametrize("spec", ["/nonexistent.yaml", "latin1.yaml", "empty.yaml"])
def test_a_bad_spec_is_one_warning_line_and_the_process_serves_on(tmp_path: Path, spec: str) -> None:
    (tmp_path / "latin1.yaml").write_bytes("models:\n  - name: caf\xe9\n".encode("latin-1"))
    (tmp_path / "empty.yaml").write_bytes(b"")
    path = spec if spec.startswith("/") else str(tmp_path / spec)
    env = {**os.environ, "SERVEWATCH_SPEC": path, "OTEL_METRICS_EXPORTER": "none",
           "SERVEWATCH_SPOOL_DIR": str(tmp_path / "spool")}
    run = subprocess.run([sys.executable, "-c", SERVING], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "served", run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert lines[0].startswith("WARNING servewatch: spec failed (SpecError: " + path) and "serving is not affected" \
        in lines[0]
