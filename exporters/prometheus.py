"""A Prometheus endpoint that serves whatever metric families it is handed: ``/metrics``, ``/healthz``, ``/readyz``.

Usage::

    from prometheus_client.core import GaugeMetricFamily
    from servewatch.exporters.prometheus import Exposition, MetricsServer, Snapshot

    exposition = Exposition()                    # a fresh CollectorRegistry: never the global REGISTRY
    gauges = Snapshot()                          # holds the families last handed to it
    exposition.register(gauges)
    exposition.register(otlp_metrics)            # any prometheus-client collector (``collect()``)
    gauges.set([GaugeMetricFamily("servewatch_window_samples", "...", value=1.0)])

    server = MetricsServer(exposition, ("127.0.0.1", 0), ready=lambda: store_is_open)
    server.start()
    server.url                                   # http://127.0.0.1:<bound port>/metrics
    server.stop()

``/metrics`` answers in the format the scraper asks for (Prometheus text 0.0.4, or OpenMetrics when the
``Accept`` header prefers it); no ``_created`` series are written (collectors here build families without
creation times). ``/healthz`` is 200 while the process serves; ``/readyz`` is 200 when ``ready()`` is true,
else 503. The server is a standard-library ``ThreadingHTTPServer``: one short-lived connection per scrape,
a socket timeout against stalled clients, and ``stop()`` waits for the requests in flight.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

__all__ = ["Exposition", "MetricsServer", "Snapshot"]

_log = logging.getLogger("servewatch.exporters.prometheus")


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


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    timeout = 10.0

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            try:
                body, content_type = self.server.exposition.render(self.headers.get("Accept"))
            except Exception as error:  # a broken collector must not take the endpoint down
                _log.exception("rendering /metrics failed")
                self._reply(500, f"cannot render metrics: {error}\n".encode(), "text/plain; charset=utf-8")
                return
            self._reply(200, body, content_type)
        elif path == "/healthz":
            self._reply(200, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/readyz":
            ready = self.server.is_ready()
            self._reply(200 if ready else 503, b"ready\n" if ready else b"not ready\n", "text/plain; charset=utf-8")
        else:
            self._reply(404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain; charset=utf-8")

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        _log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], exposition: Exposition, ready: Callable[[], bool]) -> None:
        self.exposition = exposition
        self._ready = ready
        super().__init__(address, _Handler)

    def is_ready(self) -> bool:
        try:
            return bool(self._ready())
        except Exception:
            return False


class MetricsServer:
    """Serves an :class:`Exposition` on ``address`` (port 0: any free port; see ``address`` after start)."""

    def __init__(self, exposition: Exposition, address: tuple[str, int] = ("127.0.0.1", 9108), *,
                 ready: Callable[[], bool] | None = None) -> None:
        self.exposition = exposition
        self._requested = address
        self._ready = ready or (lambda: True)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port)."""
        if self._server is None:
            return self._requested
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{_netloc(host)}:{port}/metrics"

    def start(self) -> MetricsServer:
        """Bind and serve in a background thread (OSError when the address is taken)."""
        self._server = _server_for(self._requested, self.exposition, self._ready)
        self._thread = threading.Thread(target=self._server.serve_forever, name="servewatch-metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, finish the scrapes in flight, close (idempotent)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None


def _server_for(address: tuple[str, int], exposition: Exposition, ready: Callable[[], bool]) -> _Server:
    import socket

    if ":" in address[0]:
        class _Server6(_Server):
            address_family = socket.AF_INET6

        return _Server6(address, exposition, ready)
    return _Server(address, exposition, ready)


def _netloc(host: str) -> str:
    return f"[{host}]" if ":" in host else host
