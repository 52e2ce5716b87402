"""The OTLP/HTTP receiver: ``POST /v1/logs`` (profiles) and ``POST /v1/metrics`` (serving metrics).

Usage::

    receiver = Receiver(("127.0.0.1", 4318), handlers={"/v1/logs": (ExportLogsServiceRequest, on_logs)},
                        token=None, tls=None)          # tls: an ssl.SSLContext (TlsSettings.server_context())
    receiver.start()
    receiver.address          # the bound (host, port)
    receiver.stop()           # stop accepting, finish the requests in flight, close idle connections

A handler takes the parsed request and returns the response message (an ``Export*ServiceResponse``, with
``partial_success`` set when it rejected part of it) or raises :class:`~.committer.Unavailable` (503 with
``Retry-After``). The answers, as the OTLP/HTTP specification has them: 200 with the response message;
400 with a reason for a malformed body; 401 without the right ``Authorization: Bearer <token>`` (when a
token is set); 404/405 for other paths and methods; 411 without ``Content-Length`` (chunked bodies are
read); 413 over ``max_body`` bytes on the wire or ``max_inflated`` once decompressed (gzip bombs included);
415 for an unknown ``Content-Type`` or ``Content-Encoding``; 408 when the body does not arrive within the
request's deadline; 503 when the store cannot take the data, too much is in flight, or every connection is
in the middle of an exchange. Error bodies are ``google.rpc.Status`` messages in the request's encoding.

Robustness: the server is a :class:`~servewatch.detectors.service.listener.Listener` (HTTP/1.1 keep-alive,
optionally TLS, answers in one write): counts of connections in total and per peer, where the oldest idle one
makes room for a newcomer; a whole-request deadline that a trickled byte does not extend; idle keep-alive
connections reaped. On top of it: a budget of body bytes held at once (in total and per peer), a cap on
requests decoding at once (decoding holds the GIL, so more would only add memory), and no exception from a
request ever reaching the server loop. The ``Authorization`` scheme is matched case-insensitively.
"""

from __future__ import annotations

import hmac
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from .listener import ConnectionLimits, Exchange, Listener, peer_of
from .served import Served
from .committer import Unavailable
from .otlp import RequestError, answer, decompress, failure, media_type, parse

__all__ = ["Handler", "Receiver", "ReceiverLimits", "bearer_matches"]

_log = logging.getLogger("servewatch.detect")

Handler = tuple[type[Message], Callable[[Any], Message]]
"""(request message class, function of the parsed request returning the response message)."""


def bearer_matches(authorization: str, token: str) -> bool:
    """Whether an ``Authorization`` value (HTTP header or gRPC metadata) carries ``token`` as a bearer token; the
    scheme is case-insensitive (RFC 7235), the token compared in constant time."""
    scheme, _, given = authorization.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


@dataclass(frozen=True)
class ReceiverLimits(ConnectionLimits):
    """Limits of the receiver (bytes, seconds, counts; the connection limits are :class:`ConnectionLimits`').
    Request bodies held at once stay under ``max_bytes_in_flight`` (``max_bytes_in_flight_per_peer`` from one
    peer), and at most ``max_decoding`` of them are inflated (each to at most ``max_inflated``) and decoded
    at a time: the receiver's memory is bounded by these, not by traffic."""

    max_body: int = 16 * 2**20
    max_inflated: int = 64 * 2**20
    max_bytes_in_flight: int = 256 * 2**20
    max_bytes_in_flight_per_peer: int = 64 * 2**20
    max_decoding: int = 2


class _Request(Exchange):
    server: _Server
    server_version = "servewatch-detect"

    def handle_expect_100(self) -> bool:
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.server.limits.max_body:
            self.close_connection = True
            self._fail(413, f"body of {length} bytes is over the {self.server.limits.max_body}-byte limit")
            return False
        return super().handle_expect_100()

    def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
        path = self.path.split("?", 1)[0]
        status = 500
        try:
            status = self._post(path)
        finally:
            self.server.on_request(path if path in self.server.handlers else "other", status)
            if self.server.stopping:
                self.close_connection = True

    def _post(self, path: str) -> int:
        as_json = media_type(self.headers.get("Content-Type")) == "json"
        body_read = False
        try:
            handler = self.server.handlers.get(path)
            if handler is None:
                raise RequestError(404, f"no such endpoint {path!r}: the detector receives /v1/logs and /v1/metrics")
            self._authorize()
            if media_type(self.headers.get("Content-Type")) is None:
                raise RequestError(415, f"Content-Type {self.headers.get('Content-Type')!r} is not supported: "
                                        "use application/x-protobuf or application/json")
            length = self._length()
            reserved = self.server.limits.max_body if length is None else length
            with self.server.reserve(peer_of(str(self.client_address[0])), reserved):
                body = self._chunked(self.server.limits.max_body) if length is None else self._read(length)
                body_read = True
                with self.server.decoding:
                    data = decompress(body, self.headers.get("Content-Encoding"), self.server.limits.max_inflated)
                    del body
                    request = parse(handler[0], self.headers.get("Content-Type"), data)
                    del data
                    response = handler[1](request)
            payload, content_type = answer(response, as_json)
            self._send(200, payload, content_type)
            return 200
        except RequestError as error:
            if not body_read:
                self.close_connection = True  # the body was not read: the connection cannot be reused
            self._fail(error.status, error.reason, as_json)
            return error.status
        except Unavailable as error:
            self.close_connection = self.close_connection or not body_read
            self._fail(503, str(error), as_json, retry_after=5)
            return 503
        except TimeoutError:
            self.close_connection = True
            self._fail(408, "the request body did not arrive in time", as_json)
            return 408
        except OSError:
            self.close_connection = True  # the client went away
            return 499
        except Exception as error:
            _log.exception("request to %s failed", path)
            self.close_connection = True
            self._fail(500, f"internal error: {error}", as_json)
            return 500

    def do_GET(self) -> None:  # noqa: N802
        self._method_not_allowed()

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET  # noqa: N815

    def _method_not_allowed(self) -> None:
        self.close_connection = True  # whatever body came along is not read
        self._fail(405, f"{self.command} is not allowed: OTLP/HTTP uses POST", extra={"Allow": "POST"})
        path = self.path.split("?", 1)[0]
        self.server.on_request(path if path in self.server.handlers else "other", 405)

    def _authorize(self) -> None:
        token = self.server.token
        if token is None:
            return
        if not bearer_matches(self.headers.get("Authorization", ""), token):
            raise RequestError(401, "missing or wrong bearer token")

    def _length(self) -> int | None:
        """The body's Content-Length (None: chunked), checked against the limit."""
        limits = self.server.limits
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return None
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise RequestError(411, "Content-Length is required (or a chunked body)")
        if not length_text.strip().isdigit():
            raise RequestError(400, f"Content-Length {length_text!r} is not a byte count")
        length = int(length_text)
        if length > limits.max_body:
            raise RequestError(413, f"body of {length} bytes is over the {limits.max_body}-byte limit")
        return length

    def _read(self, length: int) -> bytes:
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            raise RequestError(400, f"body ended after {len(body)} of {length} bytes")
        return body

    def _chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1026)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise RequestError(400, "malformed chunked body") from None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > limit:
                self.close_connection = True
                raise RequestError(413, f"chunked body over the {limit}-byte limit")
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                self.close_connection = True
                raise RequestError(400, "chunked body ended early")
            parts.append(chunk)

    def _fail(self, status: int, reason: str, as_json: bool = False, *, retry_after: int | None = None,
              extra: Mapping[str, str] | None = None) -> None:
        payload, content_type = failure(status, reason, as_json)
        headers = dict(extra or {})
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        self._send(status, payload, content_type, headers)
        self.server.throttle.log(status, f"{self.client_address[0]} {self.command} {self.path!r} -> {status}: {reason}")

    def _send(self, status: int, payload: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        if status == 401:
            headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="servewatch"'}
        self.respond(status, payload, content_type, headers)


class _Throttle:
    """Logs refused requests at most once a minute per status, so a misbehaving client cannot flood the log."""

    def __init__(self, every: float = 60.0) -> None:
        self.every = every
        self._last: dict[int, float] = {}
        self._lock = threading.Lock()

    def log(self, status: int, message: str) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(status, -self.every) < self.every:
                return
            self._last[status] = now
        _log.warning("%s", message)


class _Reservation:
    def __init__(self, server: _Server, peer: str, size: int) -> None:
        self.server, self.peer, self.size = server, peer, size

    def __enter__(self) -> None:
        server, limits = self.server, self.server.limits
        with server.lock:
            if server.in_flight + self.size > limits.max_bytes_in_flight:
                raise Unavailable("too many request bytes in flight")
            if server.in_flight_by_peer.get(self.peer, 0) + self.size > limits.max_bytes_in_flight_per_peer:
                raise Unavailable("too many request bytes in flight from this address")
            server.in_flight += self.size
            server.in_flight_by_peer[self.peer] = server.in_flight_by_peer.get(self.peer, 0) + self.size

    def __exit__(self, *exc: object) -> None:
        server = self.server
        with server.lock:
            server.in_flight -= self.size
            left = server.in_flight_by_peer.pop(self.peer) - self.size
            if left:
                server.in_flight_by_peer[self.peer] = left


class _Server(Listener):
    limits: ReceiverLimits

    def __init__(self, address: tuple[str, int], handlers: Mapping[str, Handler], token: str | None,
                 limits: ReceiverLimits, on_request: Callable[[str, int], None], tls: ssl.SSLContext | None) -> None:
        self.handlers = dict(handlers)
        self.token = token
        self.on_request = on_request
        self.decoding = threading.BoundedSemaphore(limits.max_decoding)
        self.in_flight = 0
        self.in_flight_by_peer: dict[str, int] = {}
        self.throttle = _Throttle()
        super().__init__(address, _Request, limits, tls)

    def reserve(self, peer: str, size: int) -> _Reservation:
        return _Reservation(self, peer, size)


class Receiver(Served):
    """Serves OTLP/HTTP ``handlers`` on ``address``; see the module docstring."""

    thread_name = "servewatch-receiver"

    def __init__(self, address: tuple[str, int], handlers: Mapping[str, Handler], *, token: str | None = None,
                 limits: ReceiverLimits | None = None, tls: ssl.SSLContext | None = None,
                 on_request: Callable[[str, int], None] = lambda path, status: None) -> None:
        super().__init__(address)
        self.handlers = handlers
        self.token = token
        self.limits = limits or ReceiverLimits()
        self.tls = tls
        self.on_request = on_request

    def _listener(self) -> Listener:
        return _Server(self._requested, self.handlers, self.token, self.limits, self.on_request, self.tls)

    @property
    def server(self) -> Listener | None:
        """The listener while serving (its ``connections``, ``evicted`` and ``refused`` counts)."""
        return self._server
