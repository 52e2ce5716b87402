"""A recording OTLP/HTTP receiver for tests: a real HTTP server on 127.0.0.1 that keeps what arrives.

    with Receiver() as receiver:                  # listening on receiver.endpoint (http://127.0.0.1:PORT)
        ... OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint ...
        receiver.wait_for(lambda r: len(r.profiles()) >= 2)
        receiver.profiles(), receiver.metric_points("servewatch.inference.requests"), receiver.requests

``status`` (default 200) and ``delay`` (seconds before answering) make it a failing or slow endpoint;
``port`` binds a given port (default: any free one).
Loaded by the conftest files with ``load_receiver()`` (tests are not a package).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from servewatch.profile import Profile
from servewatch.wire import decode_request, parse_request
from support import wait_for


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    resource: dict[str, Any] = field(default_factory=dict)


class Receiver:
    def __init__(self, *, status: int = 200, delay: float = 0.0, port: int = 0) -> None:
        self.status = status
        self.delay = delay
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if owner.delay:
                    time.sleep(owner.delay)
                with owner._lock:
                    owner.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def of(self, path: str) -> list[Received]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def profiles(self) -> list[tuple[Profile, dict[str, Any]]]:
        """Every profile received, with the resource attributes of its request."""
        result = []
        for request in self.of("/v1/logs"):
            parsed = parse_request(request.body)
            decoded = decode_request(parsed)
            assert not decoded.rejected, decoded.rejected
            resource = {kv.key: _value(kv.value) for rl in parsed.resource_logs for kv in rl.resource.attributes}
            result.extend((profile, resource) for profile in decoded.profiles)
        return result

    def metric_points(self, name: str) -> list[tuple[dict[str, Any], Any, dict[str, Any]]]:
        """``(attributes, data point, resource attributes)`` of every point of metric ``name`` received."""
        points = []
        for request in self.of("/v1/metrics"):
            message = ExportMetricsServiceRequest()
            message.ParseFromString(request.body)
            for rm in message.resource_metrics:
                resource = {kv.key: _value(kv.value) for kv in rm.resource.attributes}
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        if metric.name != name:
                            continue
                        kind = metric.WhichOneof("data")
                        for point in getattr(metric, kind).data_points:
                            attributes = {kv.key: _value(kv.value) for kv in point.attributes}
                            points.append((attributes, point, resource))
        return points

    def metric_names(self) -> set[str]:
        names = set()
        for request in self.of("/v1/metrics"):
            message = ExportMetricsServiceRequest()
            message.ParseFromString(request.body)
            names.update(m.name for rm in message.resource_metrics for sm in rm.scope_metrics for m in sm.metrics)
        return names

    def wait_for(self, condition: Callable[[Receiver], bool], timeout: float = 20.0) -> bool:
        """Whether ``condition(receiver)`` came true within ``timeout`` seconds."""
        try:
            return bool(wait_for(lambda: condition(self), timeout, "the receiver's condition"))
        except TimeoutError:
            return False


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None
