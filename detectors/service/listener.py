"""An HTTP/1.1 listener whose resources a peer who sends little cannot exhaust: the base of the detector's
OTLP/HTTP receiver and of its ``/metrics`` endpoint.

Usage::

    from servewatch.detectors.service.listener import ConnectionLimits, Exchange, Listener

    class Hello(Exchange):
        def do_GET(self) -> None:
            self.respond(200, b"hello\\n", "text/plain")          # status line, headers and body in one write

    listener = Listener(("127.0.0.1", 0), Hello, ConnectionLimits(), tls=None)   # or an ssl.SSLContext
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    ...
    listener.stop_serving(timeout=30.0)       # stop accepting, finish the exchanges in flight, close the rest

Each connection has a thread (``ThreadingHTTPServer``) and is bounded three ways:

- **Deadlines that a trickled byte does not reset.** A connection waiting for a request may stay idle
  ``idle_timeout`` seconds (keep-alive connections are reaped); from the request's first byte, its headers and
  body must arrive within ``timeout`` seconds in all (every read gets only what is left of that deadline).
  A TLS handshake (when ``tls`` is given) also has ``timeout`` seconds in all, and runs on the connection's
  own thread, never on the accepting one.
- **Counts.** At most ``max_connections`` open connections, at most ``max_connections_per_peer`` from one
  peer (an IPv4 address, or an IPv6 /64: one host has a whole /64 to pick from). When a count is full, the
  oldest connection that is still waiting for its request's headers (idle, or in its handshake, or
  trickling) is closed to make room, the peer's own first when the peer's count is the full one; only when
  every candidate is in the middle of an exchange is the newcomer refused (``503`` with ``Retry-After``, or
  just closed under TLS). A connection closed this way has had nothing of its request processed.
- **Answers in one write**, with ``TCP_NODELAY``: a keep-alive client never waits for a delayed ACK between
  the headers and the body.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import math
import select
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ConnectionLimits", "Exchange", "Listener", "peer_of"]

_log = logging.getLogger("servewatch.detectors.service.listener")
_REFUSED = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class ConnectionLimits:
    """How many connections a listener holds and for how long (counts, seconds); see the module docstring."""

    max_connections: int = 256
    max_connections_per_peer: int = 64
    timeout: float = 30.0
    """Seconds from a request's first byte until its body is read in full (and for a TLS handshake)."""
    idle_timeout: float = 30.0
    """Seconds a connection may wait for its next request."""


class _Connection:
    __slots__ = ("key", "socket", "peer", "since", "waiting", "closed")

    def __init__(self, connection: socket.socket, peer: str) -> None:
        self.key = self.socket = connection
        self.peer = peer
        self.since = time.monotonic()
        self.waiting = True
        """Waiting for a request's headers: closing it loses nothing."""
        self.closed = False


class _Deadline(io.RawIOBase):
    """A socket's reads, each given only what is left of the current deadline."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.deadline = math.inf
        self._then: float | None = None

    def expect(self, idle: float, timeout: float) -> None:
        """Wait up to ``idle`` seconds for a request; from its first byte allow ``timeout`` seconds in all."""
        self.deadline = time.monotonic() + idle
        self._then = timeout

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request did not arrive in time")
        self.connection.settimeout(remaining)
        count = self.connection.recv_into(buffer)
        if count and self._then is not None:
            self.deadline = time.monotonic() + self._then
            self._then = None
        return count


class _Writer:
    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection

    def write(self, data: bytes) -> int:
        self.connection.sendall(data)
        return len(data)

    def flush(self) -> None:
        pass


class Exchange(BaseHTTPRequestHandler):
    """A request handler on a :class:`Listener`: define ``do_GET`` etc. and answer with :meth:`respond`."""

    server: Listener
    _headers_buffer: list[bytes]  # BaseHTTPRequestHandler's, which typeshed does not declare
    protocol_version = "HTTP/1.1"
    sys_version = ""

    def setup(self) -> None:
        self._record = self.server.record(self.request)
        self.connection: socket.socket | None = None
        self.close_connection = True
        connection: socket.socket = self.request
        if self._record.closed:
            return
        try:
            self.server.tune(connection)
            if self.server.tls is not None:
                connection = self.server.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
                self.server.rebind(self._record, connection)  # before the handshake: closing it to make room wakes it
                _handshake(connection, self.server.limits.timeout)
        except (OSError, ValueError):
            _close(connection)
            return
        self.connection = connection
        self._reader = _Deadline(connection)
        self.rfile = io.BufferedReader(self._reader, 65536)
        self.wfile = _Writer(connection)  # type: ignore[assignment]

    def handle(self) -> None:
        if self.connection is None:
            return
        limits = self.server.limits
        try:
            while True:
                self.close_connection = True
                self._reader.expect(limits.idle_timeout, limits.timeout)
                self.handle_one_request()
                self.server.release(self._record)
                if self.close_connection or self.server.stopping:
                    return
        except (OSError, ValueError):  # resets, deadlines, closed files: the client is gone
            self.close_connection = True

    def finish(self) -> None:
        if self.connection is None:
            return
        try:
            self.rfile.close()
        except (OSError, ValueError):
            pass
        if self.connection is not self.request:
            _close(self.connection)

    def parse_request(self) -> bool:
        """The headers are in: from here on the connection is in an exchange and is not closed to make room."""
        if not super().parse_request():
            return False
        if not self.server.claim(self._record):
            self.close_connection = True
            return False
        return True

    def respond(self, status: int, payload: bytes, content_type: str,
                headers: Mapping[str, str] | None = None) -> None:
        """Answer: status line, headers and ``payload`` (not for HEAD) in one write; a client gone is no error."""
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if self.close_connection or self.server.stopping:
                self.send_header("Connection", "close")
                self.close_connection = True
            self._headers_buffer.append(b"\r\n")
            head = b"".join(self._headers_buffer)
            self._headers_buffer = []
            assert self.connection is not None
            self.connection.settimeout(self.server.limits.timeout)
            self._transmit(head, b"" if self.command == "HEAD" else payload)
        except OSError:
            self.close_connection = True

    def _transmit(self, head: bytes, payload: bytes) -> None:
        self.wfile.write(head + payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the standard library's name)
        _log.debug("%s %s", self.address_string(), format % args)


class Listener(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` with bounded connections and deadlines; see the module docstring."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[Exchange], limits: ConnectionLimits,
                 tls: ssl.SSLContext | None = None) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.limits = limits
        self.tls = tls
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.stopping = False
        self._open: dict[socket.socket, _Connection] = {}
        """Accepted socket -> its connection (whose ``socket`` is the TLS one after the handshake)."""
        self.evicted = 0
        """Connections closed to make room."""
        self.refused = 0
        """Connections refused: every one open was in an exchange."""
        super().__init__(address, handler)

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)  # no reverse DNS look-up at start

    @property
    def connections(self) -> int:
        """Connections open."""
        with self.lock:
            return len(self._open)

    @property
    def exchanges(self) -> int:
        """Connections in the middle of an exchange (headers in, answer not yet sent)."""
        with self.lock:
            return sum(not record.waiting for record in self._open.values())

    def tune(self, connection: socket.socket) -> None:
        """Options of every accepted socket (``TCP_NODELAY``)."""
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def process_request(self, request: Any, client_address: Any) -> None:
        peer = peer_of(str(client_address[0]))
        with self.lock:
            admitted = not self.stopping and self._admit(request, peer)
        if not admitted:
            self.refused += 1
            if self.tls is None:
                try:
                    request.settimeout(1.0)
                    request.sendall(_REFUSED)
                except OSError:
                    pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def _admit(self, request: socket.socket, peer: str) -> bool:
        """Make room if a count is full (closing the oldest waiting connection), then count ``request`` in."""
        mine = [connection for connection in self._open.values() if connection.peer == peer]
        crowd = mine if len(mine) >= self.limits.max_connections_per_peer else (
            list(self._open.values()) if len(self._open) >= self.limits.max_connections else None)
        if crowd is not None:
            waiting = [connection for connection in crowd if connection.waiting]
            if not waiting:
                return False
            oldest = min(waiting, key=lambda connection: connection.since)
            del self._open[oldest.key]
            oldest.closed = True
            _shut(oldest.socket)
            self.evicted += 1
        self._open[request] = _Connection(request, peer)
        return True

    def record(self, request: socket.socket) -> _Connection:
        with self.lock:
            record = self._open.get(request)
        if record is None:  # closed to make room before its thread started
            record = _Connection(request, "")
            record.closed = True
        return record

    def rebind(self, record: _Connection, connection: socket.socket) -> None:
        with self.lock:
            record.socket = connection
            if record.closed:
                _shut(connection)

    def claim(self, record: _Connection) -> bool:
        """Mark ``record`` as in an exchange; False when it was closed to make room meanwhile."""
        with self.lock:
            if record.closed:
                return False
            record.waiting = False
            return True

    def release(self, record: _Connection) -> None:
        with self.lock:
            record.waiting = True
            record.since = time.monotonic()
            self.changed.notify_all()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.lock:
                record = self._open.pop(request, None)
                if record is not None:
                    record.closed = True
                self.changed.notify_all()

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("connection from %s failed", client_address, exc_info=True)  # it concerns its client alone

    def stop_serving(self, timeout: float = 30.0) -> None:
        """Stop accepting; let the exchanges in flight finish (up to ``timeout``); close every connection."""
        with self.lock:
            self.stopping = True
        self.shutdown()
        self.socket.close()
        with self.lock:
            for record in self._open.values():
                if record.waiting:
                    _shut(record.socket)
            self.changed.wait_for(lambda: all(record.waiting for record in self._open.values()), timeout)
            for record in self._open.values():
                _shut(record.socket)




def peer_of(address: str) -> str:
    """What connection counts are kept per: an IPv4 address (IPv4-mapped ones too), or an IPv6 /64."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


def _handshake(connection: ssl.SSLSocket, timeout: float) -> None:
    """The server side of a TLS handshake, ``timeout`` seconds in all however slowly the bytes come."""
    deadline = time.monotonic() + timeout
    connection.setblocking(False)
    while True:
        try:
            connection.do_handshake()
            break
        except ssl.SSLWantReadError:
            readable, writable = [connection], []
        except ssl.SSLWantWriteError:
            readable, writable = [], [connection]
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not any(select.select(readable, writable, [], remaining)[:2]):
            raise TimeoutError("the TLS handshake did not finish in time")
    connection.setblocking(True)


def _shut(connection: socket.socket) -> None:
    """Wake whatever thread reads ``connection`` (a TLS socket too: the plain socket's shutdown)."""
    try:
        socket.socket.shutdown(connection, socket.SHUT_RDWR)
    except OSError:
        pass


def _close(connection: socket.socket) -> None:
    try:
        connection.close()
    except OSError:
        pass
