"""A Prometheus endpoint that serves whatever metric families it is handed: ``/metrics``, ``/healthz``, ``/readyz``.

Usage::

    from prometheus_client.core import GaugeMetricFamily
    from servewatch.detectors.service.prometheus import Exposition, MetricsServer, Snapshot

    exposition = Exposition()                    # a fresh CollectorRegistry: never the global REGISTRY
    gauges = Snapshot()                          # holds the families last handed to it
    exposition.register(gauges)
    exposition.register(otlp_metrics)            # any prometheus-client collector (``collect()``)
    gauges.set([GaugeMetricFamily("servewatch_window_samples", "...", value=1.0)])

    server = MetricsServer(exposition, ("127.0.0.1", 0), ready=lambda: store_is_open)
    server = MetricsServer(exposition, ("0.0.0.0", 9108), ready=..., tls=ssl_context)   # https
    server.start()
    server.url                                   # http://127.0.0.1:<bound port>/metrics
    server.stop()

``/metrics`` answers in the format the scraper asks for (Prometheus text 0.0.4, or OpenMetrics when the
``Accept`` header prefers it); no ``_created`` series are written (collectors here build families without
creation times), gzipped when the scraper's ``Accept-Encoding`` allows it (as Prometheus' does).
``/healthz`` is 200 while the process serves; ``/readyz`` is 200 when ``ready()`` is true, else 503 with the
reason when ``ready()`` returns one (a string means "not ready, because ..."). The server is a
:class:`~servewatch.detectors.service.listener.Listener` (bounded connections, whole-request deadlines, answers in
one write, TLS when ``tls`` is given), and ``stop()`` waits for the requests in flight.

What it exposes, to whoever can connect (there is no token here: bind it where only Prometheus can reach it,
or use TLS with client certificates): every family handed to it; for the detector, model, feature and signal
names, severities, statistics and counts, and the producers' re-exposed serving metrics with their labels.
"""

from __future__ import annotations

import gzip
import logging
import ssl
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from .listener import ConnectionLimits, Exchange, Listener
from .served import Served

__all__ = ["Exposition", "MetricsServer", "Snapshot"]

_log = logging.getLogger("servewatch.detectors.service.prometheus")

LIMITS = ConnectionLimits(max_connections=64, max_connections_per_peer=16, timeout=10.0, idle_timeout=120.0)
"""Connections of the metrics endpoint: a few scrapers, each keeping one connection alive between scrapes."""
_TEXT = "text/plain; charset=utf-8"


class Snapshot:
    """A collector serving the families last handed to :meth:`set` (swapped atomically)."""

    def __init__(self, families: Iterable[Metric] = ()) -> None:
        self._families: tuple[Metric, ...] = tuple(families)

    def set(self, families: Iterable[Metric]) -> None:
        self._families = tuple(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


class Exposition:
    """A registry of collectors and its rendering in the format a scraper asks for."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)

    def register(self, collector: Any) -> None:
        """Add a collector (anything with ``collect() -> Iterable[Metric]``)."""
        self.registry.register(collector)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """(body, content type) of the current metrics for an ``Accept`` header."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class _Handler(Exchange):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            try:
                body, content_type = self.server.exposition.render(self.headers.get("Accept"))
            except Exception as error:  # a broken collector must not take the endpoint down
                _log.exception("rendering /metrics failed")
                self.respond(500, f"cannot render metrics: {error}\n".encode(), _TEXT)
                return
            headers = {"Vary": "Accept-Encoding"}
            if _accepts_gzip(self.headers.get("Accept-Encoding")):
                body = gzip.compress(body, compresslevel=6)
                headers["Content-Encoding"] = "gzip"
            self.respond(200, body, content_type, headers)
        elif path == "/healthz":
            self.respond(200, b"ok\n", _TEXT)
        elif path == "/readyz":
            reason = self.server.unready()
            self.respond(503 if reason else 200, f"not ready: {reason}\n".encode() if reason else b"ready\n", _TEXT)
        else:
            self.respond(404, b"not found: try /metrics, /healthz or /readyz\n", _TEXT)

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()


class _Server(Listener):
    def __init__(self, address: tuple[str, int], exposition: Exposition, ready: Callable[[], bool | str],
                 tls: ssl.SSLContext | None) -> None:
        self.exposition = exposition
        self._ready = ready
        super().__init__(address, _Handler, LIMITS, tls)

    def unready(self) -> str | None:
        """None when ready, else why not."""
        try:
            ready = self._ready()
        except Exception as error:
            return f"the readiness check failed: {error}"
        if isinstance(ready, str):
            return ready or "not ready"
        return None if ready else "not ready"


def _accepts_gzip(header: str | None) -> bool:
    for item in (header or "").split(","):
        coding, _, parameters = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            quality = parameters.strip().lower().removeprefix("q=")
            try:
                return not parameters.strip() or float(quality) > 0
            except ValueError:
                return True
    return False


class MetricsServer(Served):
    """Serves an :class:`Exposition` on ``address`` (port 0: any free port; see ``address`` after start)."""

    thread_name = "servewatch-metrics"

    def __init__(self, exposition: Exposition, address: tuple[str, int] = ("127.0.0.1", 9108), *,
                 ready: Callable[[], bool | str] | None = None, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(address)
        self.exposition = exposition
        self._ready = ready or (lambda: True)
        self.tls = tls

    def _listener(self) -> Listener:
        return _Server(self._requested, self.exposition, self._ready, self.tls)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"{'https' if self.tls else 'http'}://{_netloc(host)}:{port}/metrics"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, finish the scrapes in flight, close (idempotent)."""
        super().stop(timeout)


def _netloc(host: str) -> str:
    return f"[{host}]" if ":" in host else host
