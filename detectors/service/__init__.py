"""The detector service (``servewatch detect``): OTLP receiver, durable store, windows, Prometheus gauges.

Usage::

    from servewatch.detectors.service import DetectorService

    detector = DetectorService("servewatch.yaml", state_dir="state", listen="127.0.0.1:4318",
                               metrics_listen="127.0.0.1:9108").start()
    print(detector.describe())              # where it listens (bound ports)
    detector.evaluate()                     # evaluate now; it also does so every `interval`
    print(detector.table())                 # latest results per (model, signal, window)
    detector.stop()

The pieces, each in its own module: :mod:`.receiver` (OTLP/HTTP ``/v1/logs`` and ``/v1/metrics``, bodies by
:mod:`.otlp`), :mod:`.grpc_receiver` (OTLP/gRPC, the same handlers), :mod:`.committer` (group commit),
:mod:`.store` (SQLite, WAL, buckets, dedupe) with its encoding :mod:`.codec`, time layout :mod:`.tiers` and
in-memory :mod:`.buckets`, :mod:`.windows` and :mod:`.references` (what is compared with what),
:mod:`.evaluator` (statistics and rules per window), :mod:`.gauges` (Prometheus families), :mod:`.events` (the
operator's log), :mod:`.service` (all of it wired together) and :mod:`.command` (the command line). Facing
Prometheus: :mod:`.prometheus` (the ``/metrics`` endpoint: ``MetricsServer``, ``Exposition``, ``Snapshot``) and
:mod:`.reexposure` (``OtlpMetrics``: the serving processes' OTLP metrics re-exposed as Prometheus families, with
:mod:`.prometheus_names` and :mod:`.prometheus_histogram` for their names and buckets). The receiver and
``/metrics`` share one HTTP server base, :mod:`.listener`.
"""

from __future__ import annotations

from .committer import Unavailable
from .evaluator import WindowResult, format_table
from .receiver import ReceiverLimits
from .service import DetectorService, parse_address
from .store import Store, StoreError
from .tiers import Layout

__all__ = [
    "DetectorService",
    "Layout",
    "ReceiverLimits",
    "Store",
    "StoreError",
    "Unavailable",
    "WindowResult",
    "format_table",
    "parse_address",
]
