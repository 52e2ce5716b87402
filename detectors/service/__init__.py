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
operator's log), :mod:`.service` (all of it wired together) and :mod:`.command` (the command line). The
Prometheus endpoint and the OTLP-metrics translation live in :mod:`servewatch.exporters.prometheus` and
:mod:`servewatch.exporters.prometheus_otlp`.
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
