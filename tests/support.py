"""What several test modules need: a free port, waiting for a condition, a module loaded from a file, a local
metrics endpoint, an in-memory metric exporter.

Usage (``tests/`` is on ``sys.path``, put there by ``tests/conftest.py``; tests are not a package)::

    from support import Capture, MetricsEndpoint, free_port, load_module, wait_for

    harness = load_module("torchserve_harness", ROOT / "bench" / "torchserve_harness.py")   # not a package

    port = free_port()                                        # a port nothing listens on (at this moment)
    line = wait_for(lambda: read_line(), 30, "the server's first line")   # the truthy value, or TimeoutError
    with MetricsEndpoint(TEXT) as endpoint:                   # GET endpoint.url -> TEXT (Prometheus text)
        ...; endpoint.text = "..."; endpoint.paths          # what was asked, in order
    capture = Capture(); capture.points("servewatch.inference.requests")   # [(attributes, point), ...]
"""

from __future__ import annotations

import importlib.util
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

__all__ = ["Capture", "MetricsEndpoint", "free_port", "load_module", "wait_for"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the system may hand it out again later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``condition()`` until it returns something truthy, and return that; TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def load_module(name: str, path: Path) -> ModuleType:
    """The module in ``path`` (a bench harness, an example, a helper beside the tests), run now and registered in
    ``sys.modules`` as ``name`` (dataclasses and pickling look it up there)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class MetricsEndpoint:
    """A framework's metrics endpoint stand-in on 127.0.0.1: answers every GET with :attr:`text` (which a test may
    change), remembers the paths asked in :attr:`paths`; ``url`` is its ``/metrics`` URL."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.paths: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                owner.paths.append(self.path)
                body = owner.text.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.url = self.address + "/metrics"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> MetricsEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Capture(MetricExporter):
    """A metric exporter that keeps every export (``MetricsData``) in :attr:`exports`."""

    def __init__(self) -> None:
        super().__init__()
        self.exports: list[MetricsData] = []

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        self.exports.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass

    def points(self, name: str, export: int = -1) -> list[tuple[dict[str, Any], Any]]:
        """``(attributes, point)`` of metric ``name`` in the ``export``-th export (the last; none before one)."""
        found: list[tuple[dict[str, Any], Any]] = []
        for resource in self.exports[export].resource_metrics if self.exports else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += [(dict(point.attributes), point) for point in metric.data.data_points]
        return found
