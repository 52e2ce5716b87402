"""Everything that ships data out of a process, knowing nothing of statistics.

Usage::

    from servewatch.exporters import (MetricsPipeline, OTLPProfileExporter, SpoolProfileExporter,
                                      otlp_metric_exporter, process_resource)

    resource = process_resource(framework="python")              # service.name / .instance.id / ml.framework
    profiles = OTLPProfileExporter(resource)                     # profiles as OTLP log records (OTEL_* variables)
    profiles = SpoolProfileExporter("/var/spool/servewatch", resource)   # ... or as files, same bytes
    profiles.export([profile])                                   # what cannot be delivered waits, bounded

    metrics = MetricsPipeline(resource, otlp_metric_exporter())  # our own MeterProvider; collect() exports
    metrics.meter().create_observable_counter(...)
    metrics.collect()

The serving side never touches OpenTelemetry's global providers: every provider here belongs to the object
that built it and exports only when its owner says so (no SDK threads, no SDK at-exit or at-fork exports).
The instrumentation (:mod:`servewatch.instrumentation`) builds these lazily in the process that serves.

Modules: :mod:`~servewatch.exporters.outbox` (bounded pending queue), :mod:`~servewatch.exporters.profiles`
(OTLP log records), :mod:`~servewatch.exporters.spool` (files), :mod:`~servewatch.exporters.metrics`
(MeterProvider pipeline), :mod:`~servewatch.exporters.resource` (who is sending). This is the serving side
only: the detector's ``/metrics`` exposition and its re-exposure of OTLP metrics live with their one user,
:mod:`servewatch.detectors.service`. Names are loaded on first use, so importing one submodule does not import
the OpenTelemetry SDK pieces of the others.
"""

from __future__ import annotations

from servewatch.lazy import lazy_attributes

__all__ = [
    "MetricsPipeline",
    "OTLPProfileExporter",
    "Outbox",
    "ProfileExporter",
    "SpoolProfileExporter",
    "otlp_log_exporter",
    "otlp_metric_exporter",
    "process_resource",
    "read_spool",
]

_HOMES = {
    "MetricsPipeline": "metrics",
    "otlp_metric_exporter": "metrics",
    "OTLPProfileExporter": "profiles",
    "ProfileExporter": "profiles",
    "otlp_log_exporter": "profiles",
    "Outbox": "outbox",
    "SpoolProfileExporter": "spool",
    "read_spool": "spool",
    "process_resource": "resource",
}

__getattr__, __dir__ = lazy_attributes(__name__, __all__, _HOMES)
