"""The OTLP/gRPC receiver: ``LogsService/Export`` (profiles) and ``MetricsService/Export`` (serving metrics).

Usage::

    receiver = GrpcReceiver(("127.0.0.1", 4317), [(ExportLogsServiceRequest, on_logs)], token=None)
    receiver.start()
    receiver.address          # the bound (host, port)
    receiver.stop()           # stop accepting, let the calls in flight finish (and commit)

The handlers are the OTLP/HTTP receiver's (:data:`~.receiver.Handler`): the request class names the service
method it answers, as the opentelemetry-proto service definitions have it (``ExportLogsServiceRequest`` ->
``/opentelemetry.proto.collector.logs.v1.LogsService/Export``), and the same function answers both protocols,
so here too a call is acknowledged only once its profiles are committed. The answers, as the OTLP
specification maps them onto gRPC:

- OK with the handler's response message (``partial_success`` exactly as it built it);
- INVALID_ARGUMENT for a message that does not parse (the methods are registered with our own parser, not
  the generated ``add_*Servicer_to_server``, which answers INTERNAL for garbage);
- UNAUTHENTICATED without ``authorization: Bearer <token>`` metadata, when a token is set;
- RESOURCE_EXHAUSTED for a message over ``max_inflated`` bytes (the size of the protobuf message, compressed
  or not: gRPC refuses it before it is decoded) and for more than ``max_connections`` calls at once;
- UNAVAILABLE, with ``google.rpc.retryinfo-bin`` asking for a retry in 5 s, when the store cannot take the data
  or more than ``max_bytes_in_flight`` request bytes are held; OTLP exporters retry, and a repeat that was
  stored is counted once.

Limits are the HTTP receiver's :class:`~.receiver.ReceiverLimits` (at most ``max_decoding`` messages decoded at
once). 16 threads answer calls, each holding one while its message arrives, decodes and commits; connections
get grpc's ``max_connection_age`` (5 minutes, clients reconnect unnoticed) with ``timeout`` seconds of grace,
after which the connection and any call still on it are closed: a client that stalls mid-message holds a
thread for minutes, not for good (the HTTP receiver's socket timeout does this in 30 s).

TLS: pass ``credentials`` (a ``grpc.ServerCredentials``, e.g. :func:`server_credentials` of the detector's
:class:`~.tls.TlsSettings`, whose client CA makes it mutual TLS); without it the port is plaintext. The port
is bound exclusively (no ``SO_REUSEPORT``: a second detector on the same port fails to start instead of
silently sharing the traffic). No HTTP/2 is written here: grpcio serves it.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc.error_details_pb2 import RetryInfo

from .committer import Unavailable
from .events import Throttle
from .otlp import PROTOBUF, RequestError, grpc_code, parse
from .receiver import Handler, ReceiverLimits, bearer_matches
from .tls import TlsSettings

__all__ = ["GrpcReceiver", "method_name", "server_credentials"]

_log = logging.getLogger("servewatch.detect")

_WORKERS = 16
"""Threads answering calls (a call holds one while it decodes and waits for its commit)."""
_MAX_AGE_MS = 5 * 60 * 1000
"""Connections are asked to reconnect after 5 minutes (clients do so unnoticed); a call still unfinished
``timeout`` seconds later is cut, so a client that stalls mid-message holds a thread for minutes, not forever."""
_RETRY_AFTER = 5
_RETRY_INFO = ("google.rpc.retryinfo-bin", RetryInfo(retry_delay=Duration(seconds=_RETRY_AFTER)).SerializeToString())
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def method_name(request: type[Message]) -> tuple[str, str]:
    """(service, method) of the opentelemetry-proto service method taking ``request`` messages, e.g.
    ``("opentelemetry.proto.collector.logs.v1.LogsService", "Export")``."""
    for service in request.DESCRIPTOR.file.services_by_name.values():
        for method in service.methods:
            if method.input_type.full_name == request.DESCRIPTOR.full_name:
                return service.full_name, method.name
    raise ValueError(f"no gRPC service method takes {request.DESCRIPTOR.full_name}")


def server_credentials(tls: TlsSettings) -> grpc.ServerCredentials:
    """gRPC credentials from the detector's TLS settings: the server's certificate chain and key, and, for mutual
    TLS, the CA that client certificates must be signed by (clients without one are then refused)."""
    chain, private, roots = tls.files()
    return grpc.ssl_server_credentials([(private, chain)], root_certificates=roots,
                                       require_client_auth=roots is not None)


class GrpcReceiver:
    """Serves OTLP/gRPC ``handlers`` on ``address``; see the module docstring."""

    def __init__(self, address: tuple[str, int], handlers: Iterable[Handler], *, token: str | None = None,
                 limits: ReceiverLimits | None = None, credentials: grpc.ServerCredentials | None = None,
                 on_request: Callable[[str, int | str], None] = lambda path, code: None) -> None:
        self._requested = address
        self.handlers = list(handlers)
        self.token = token
        self.limits = limits or ReceiverLimits()
        self.credentials = credentials
        self.on_request = on_request
        self._server: grpc.Server | None = None
        self._port = address[1]
        self._lock = threading.Lock()
        self._in_flight = 0
        self._decoding = threading.BoundedSemaphore(self.limits.max_decoding)
        self._throttle = Throttle()
        self._stopping = False

    @property
    def address(self) -> tuple[str, int]:
        return self._requested[0], self._port

    @property
    def serving(self) -> bool:
        return self._server is not None and not self._stopping

    def start(self) -> GrpcReceiver:
        limits = self.limits
        server = grpc.server(
            ThreadPoolExecutor(_WORKERS, thread_name_prefix="servewatch-grpc"),
            options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", limits.max_inflated),
                     ("grpc.max_connection_age_ms", _MAX_AGE_MS),
                     ("grpc.max_connection_age_grace_ms", int(limits.timeout * 1000))],
            maximum_concurrent_rpcs=limits.max_connections)
        services: dict[str, dict[str, grpc.RpcMethodHandler]] = {}
        for handler in self.handlers:
            service, method = method_name(handler[0])
            call = self._call(handler, f"/{service}/{method}")
            services.setdefault(service, {})[method] = grpc.unary_unary_rpc_method_handler(call)
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(service, methods)
                                         for service, methods in services.items()])
        host, port = self._requested
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            if self.credentials is not None:
                bound = server.add_secure_port(target, self.credentials)
            else:
                bound = server.add_insecure_port(target)
        except RuntimeError:
            bound = 0
        if not bound:
            server.stop(None)
            raise OSError(errno.EADDRINUSE, "the address is in use or not available")
        self._port = bound
        self._stopping = False
        server.start()
        self._server = server
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting; let the calls in flight finish (up to ``timeout``)."""
        server = self._server
        if server is None:
            return
        self._stopping = True
        server.stop(timeout).wait(timeout + 1.0)
        self._server = None

    # -- one call ----------------------------------------------------------------------------------------------

    def _call(self, handler: Handler, method: str) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        kind, respond = handler

        def call(data: bytes, context: grpc.ServicerContext) -> bytes:
            code = grpc.StatusCode.OK
            try:
                self._authorize(context)
                with self._reserve(len(data)), self._decoding:
                    request = parse(kind, PROTOBUF, data)
                    del data
                    return respond(request).SerializeToString()
            except RequestError as error:
                code = _CODES.get(grpc_code(error.status), grpc.StatusCode.UNKNOWN)
                self._refuse(context, method, code, error.reason)
            except Unavailable as error:
                code = grpc.StatusCode.UNAVAILABLE
                context.set_trailing_metadata((_RETRY_INFO,))
                self._refuse(context, method, code, str(error))
            except Exception as error:
                _log.exception("gRPC call %s failed", method)
                code = grpc.StatusCode.INTERNAL
                context.abort(code, f"internal error: {error}")
            finally:
                self.on_request(method, code.name)
            raise AssertionError("unreachable: abort raises")

        return call

    def _authorize(self, context: grpc.ServicerContext) -> None:
        if self.token is None:
            return
        given = dict(context.invocation_metadata()).get("authorization", "")
        if isinstance(given, bytes):
            given = given.decode("latin-1")
        if not bearer_matches(given, self.token):
            raise RequestError(401, "missing or wrong bearer token (metadata authorization: Bearer <token>)")

    @contextmanager
    def _reserve(self, size: int) -> Iterator[None]:
        with self._lock:
            if self._in_flight + size > self.limits.max_bytes_in_flight:
                raise Unavailable("too many request bytes in flight")
            self._in_flight += size
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= size

    def _refuse(self, context: grpc.ServicerContext, method: str, code: grpc.StatusCode, reason: str) -> Any:
        if self._throttle.add(code.name) is not None:
            _log.warning("%s %s -> %s: %s", context.peer(), method, code.name, reason)
        context.abort(code, reason)
