"""The bounded HTTP listener on real sockets: who makes room for whom, and who is refused."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from servewatch.detectors.service.listener import ConnectionLimits, Exchange, Listener, peer_of


@pytest.mark.parametrize(("address", "peer"), [
    ("127.0.0.1", "127.0.0.1"), ("::ffff:10.1.2.3", "10.1.2.3"), ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"), ("fe80::1%eth0", "fe80::/64")])
def test_peers_are_addresses_or_ipv6_64s(address: str, peer: str) -> None:
    assert peer_of(address) == peer


class _Slow(Exchange):
    release = threading.Event()

    def do_GET(self) -> None:  # noqa: N802
        self.release.wait(10)
        self.respond(200, b"done\n", "text/plain")


@pytest.fixture
def listener() -> Iterator[Listener]:
    _Slow.release.clear()
    server = Listener(("127.0.0.1", 0), _Slow, ConnectionLimits(max_connections=3, max_connections_per_peer=2))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    _Slow.release.set()
    server.stop_serving(timeout=5)
    thread.join(5)


def _open(listener: Listener, source: str, request: bytes = b"") -> socket.socket:
    connection = socket.create_connection(listener.server_address[:2], timeout=10, source_address=(source, 0))
    if request:
        connection.sendall(request)
    return connection


def _wait(condition: object) -> None:
    deadline = time.monotonic() + 10
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def test_the_oldest_waiting_connection_makes_room_and_exchanges_are_never_cut(listener: Listener) -> None:
    busy = [_open(listener, "127.0.0.2", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") for _ in range(2)]   # the peer's two
    _wait(lambda: listener.exchanges == 2)
    refused = _open(listener, "127.0.0.2")           # a third from that peer: nothing of its own to close
    assert refused.recv(1024).startswith(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5")
    assert listener.refused == 1 and listener.evicted == 0
    idle = _open(listener, "127.0.0.3")               # another peer: room left
    _wait(lambda: listener.connections == 3)
    newcomer = _open(listener, "127.0.0.4")           # the total is full: the idle one makes room
    _wait(lambda: listener.evicted == 1)
    assert idle.recv(1024) == b"" and listener.connections == 3
    newcomer.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    _Slow.release.set()
    for connection in (*busy, newcomer):
        assert connection.recv(1024).startswith(b"HTTP/1.1 200 OK")
        connection.close()
