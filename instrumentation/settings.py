"""Configuration of the serving side: environment variables only, each with a default.

Usage::

    from servewatch.instrumentation.settings import Settings

    settings, problems = Settings.from_environ()     # problems: one line per bad value (the default is used)
    settings.profile_interval                         # 60.0

=================================  ==========================================================================
variable                           meaning (default)
=================================  ==========================================================================
``SERVEWATCH_DISABLED``            ``true`` turns the instrumentation off entirely (``false``)
``SERVEWATCH_SPEC``                path of the monitoring spec; names, types and locates columns (none:
                                   automatic columns)
``SERVEWATCH_PROFILE_INTERVAL``    seconds between profile closes, fractions allowed (``60``)
``SERVEWATCH_SPOOL_DIR``           write profiles as files there instead of sending them (unset)
``SERVEWATCH_MAX_COLUMNS``         automatic columns per model and signal, 1..4096 (``64``)
``OTEL_METRIC_EXPORT_INTERVAL``    milliseconds between metric exports (``60000``)
``OTEL_METRIC_EXPORT_TIMEOUT``     milliseconds an export may take (``30000``)
``OTEL_METRICS_EXPORTER``          ``otlp``, ``console`` or ``none`` (``otlp``)
``OTEL_EXPORTER_OTLP_PROTOCOL``    ``http/protobuf`` or ``grpc``; per signal ``OTEL_EXPORTER_OTLP_LOGS_PROTOCOL``
                                   and ``..._METRICS_PROTOCOL`` (``http/protobuf``)
``OTEL_EXPORTER_OTLP_METRICS_``    ``cumulative``, ``delta`` or ``lowmemory`` (``cumulative``)
``TEMPORALITY_PREFERENCE``
=================================  ==========================================================================

Endpoint, headers, timeout, compression and certificates (``OTEL_EXPORTER_OTLP_[LOGS_|METRICS_]*``), the
service name and resource attributes are read by the OpenTelemetry SDK pieces themselves. A bad value never
stops serving: it is reported (once, when the instrumentation starts in the process) and its default used.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Settings"]

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")
_PROTOCOLS = ("http/protobuf", "grpc")
_METRICS_EXPORTERS = ("otlp", "console", "none")


@dataclass(frozen=True)
class Settings:
    """The serving side's settings (see the module docstring for the variables)."""

    disabled: bool = False
    spec_path: str | None = None
    profile_interval: float = 60.0
    spool_dir: str | None = None
    max_columns: int = 64
    metric_interval: float = 60.0
    metric_timeout: float = 30.0
    metrics_exporter: str = "otlp"
    logs_protocol: str = "http/protobuf"
    metrics_protocol: str = "http/protobuf"
    delta_histograms: bool = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> tuple[Settings, list[str]]:
        """The settings from ``environ`` (default ``os.environ``) and one line per value that was refused."""
        env = os.environ if environ is None else environ
        problems: list[str] = []
        default = cls()

        def text(name: str) -> str:
            return env.get(name, "").strip()

        def number(name: str, fallback: float, low: float, high: float, scale: float = 1.0) -> float:
            raw = text(name)
            if not raw:
                return fallback
            try:
                value = float(raw) * scale
            except ValueError:
                value = math.nan
            if not (low <= value <= high):
                problems.append(f"{name}={raw!r} is not a number in [{low / scale:g}, {high / scale:g}]; "
                                f"using {fallback / scale:g}")
                return fallback
            return value

        def choice(names: tuple[str, ...], allowed: tuple[str, ...], fallback: str) -> str:
            for name in names:
                raw = text(name).lower()
                if raw:
                    if raw in allowed:
                        return raw
                    problems.append(f"{name}={raw!r} is not one of {', '.join(allowed)}; using {fallback}")
                    return fallback
            return fallback

        disabled_raw = text("SERVEWATCH_DISABLED").lower()
        disabled = disabled_raw in _TRUE
        if disabled_raw not in _TRUE + _FALSE:
            problems.append(f"SERVEWATCH_DISABLED={disabled_raw!r} is not true or false; using false")
        columns = number("SERVEWATCH_MAX_COLUMNS", default.max_columns, 1, 4096)
        if columns != int(columns):
            problems.append(f"SERVEWATCH_MAX_COLUMNS={text('SERVEWATCH_MAX_COLUMNS')!r} is not a whole number; "
                            f"using {default.max_columns}")
            columns = default.max_columns
        exporters = [part.strip().lower() for part in text("OTEL_METRICS_EXPORTER").split(",") if part.strip()]
        metrics_exporter = "otlp"
        if exporters:
            usable = [name for name in exporters if name in _METRICS_EXPORTERS]
            if len(usable) != len(exporters):
                problems.append(f"OTEL_METRICS_EXPORTER={text('OTEL_METRICS_EXPORTER')!r}: servewatch sends its "
                                f"metrics with one of {', '.join(_METRICS_EXPORTERS)}; using "
                                f"{usable[0] if usable else 'otlp'}")
            metrics_exporter = usable[0] if usable else "otlp"
        temporality = choice(("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",),
                             ("cumulative", "delta", "lowmemory"), "cumulative")
        settings = cls(
            disabled=disabled,
            spec_path=text("SERVEWATCH_SPEC") or None,
            profile_interval=number("SERVEWATCH_PROFILE_INTERVAL", default.profile_interval, 0.05, 86400.0),
            spool_dir=text("SERVEWATCH_SPOOL_DIR") or None,
            max_columns=int(columns),
            metric_interval=number("OTEL_METRIC_EXPORT_INTERVAL", default.metric_interval, 0.05, 86400.0, 1e-3),
            metric_timeout=number("OTEL_METRIC_EXPORT_TIMEOUT", default.metric_timeout, 0.05, 3600.0, 1e-3),
            metrics_exporter=metrics_exporter,
            logs_protocol=choice(("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"), _PROTOCOLS,
                                 "http/protobuf"),
            metrics_protocol=choice(("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"),
                                    _PROTOCOLS, "http/protobuf"),
            delta_histograms=temporality in ("delta", "lowmemory"),
        )
        return settings, list(dict.fromkeys(problems))  # a shared variable read for two signals: one line
