"""Connections to a real DetectorService from peers who send little: idle and trickling sockets, one peer
holding many, requests that never finish, keep-alive reaping, and the Authorization scheme.

Every socket here is real (loopback; the crowds come from their own 127.x.y.z source addresses, as distinct
peers would). Nothing asserts on time: a deadline that works closes the connection, one that does not never
does within the generous bound the loops allow.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from servewatch.detectors.service import DetectorService, ReceiverLimits

from servewatch.profile import Profile
from servewatch.wire import encode_profiles

PROTOBUF = {"Content-Type": "application/x-protobuf"}
HEAD = b"POST /v1/logs HTTP/1.1\r\nHost: detector\r\nContent-Type: application/x-protobuf\r\n"


def _profile(sequence: int, producer: str = "p") -> bytes:
    end = time.time()
    profile = Profile("fraud", "input", start=end - 1, end=end, producer=producer, sequence=sequence)
    return encode_profiles([profile.update(np.random.default_rng(sequence).normal(size=(50, 2)))])


@pytest.fixture
def detector(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DetectorService]:
    options = getattr(request, "param", {})
    service = DetectorService(state_dir=tmp_path / "state", listen="127.0.0.1:0", metrics_listen="127.0.0.1:0",
                              interval="1h", **options)
    with service:
        yield service


def _connect(detector: DetectorService, source: str) -> socket.socket:
    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    connection.bind((source, 0))
    connection.connect(detector.listen_address)
    return connection


def _closed_by_peer(connection: socket.socket, trickle: bytes, seconds: float) -> bytes | None:
    """Send ``trickle`` one byte every 0.2 s for up to ``seconds``; what the server answered once it closed the
    connection (b"" when it answered nothing), or None if it was still open."""
    connection.settimeout(0.2)
    answer = b""
    stop = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < stop:
        try:
            connection.sendall(trickle[sent % len(trickle):][:1])
            sent += 1
        except OSError:
            return answer
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return answer
        if not chunk:
            return answer
        answer += chunk
    return None


def test_a_producer_gets_its_200_while_256_idle_and_trickling_sockets_are_open(detector: DetectorService) -> None:
    listener = detector.receiver.server if detector.receiver is not None else None
    assert listener is not None
    crowd: list[socket.socket] = []
    trickling: list[socket.socket] = []
    for index in range(256):                                  # 256 peers: the whole connection budget
        connection = _connect(detector, f"127.0.{2 + index // 128}.{1 + index % 128}")
        if index % 2:
            connection.sendall(HEAD + b"X-Pad: ")
            trickling.append(connection)
        crowd.append(connection)
    for _ in range(80):                                       # and one peer opening more than its share
        crowd.append(_connect(detector, "127.0.1.1"))
    stop = threading.Event()

    def trickle() -> None:                                    # one byte every 0.5 s on each: headers never end
        while not stop.wait(0.5):
            for connection in trickling:
                try:
                    connection.sendall(b"a")
                except OSError:
                    pass

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while listener.evicted < 80 and time.monotonic() < deadline:   # every newcomer made room
            time.sleep(0.05)
        assert listener.evicted >= 80 and listener.connections <= 256
        session = requests.Session()
        for sequence in range(3):                             # a producer, keep-alive, from its own address
            started = time.perf_counter()
            answer = session.post(detector.endpoint + "/v1/logs", data=_profile(sequence), headers=PROTOBUF,
                                  timeout=10)
            print(f"\nack {sequence} with {listener.connections} connections open: "
                  f"{(time.perf_counter() - started) * 1e3:.1f} ms")
            assert answer.status_code == 200
        assert listener.refused == 0
        page = session.get(detector.metrics_url, timeout=10).text
        assert f'servewatch_detector_connections_closed_total{{reason="evicted"}} {float(listener.evicted)}' in page
    finally:
        stop.set()
        thread.join()
        for connection in crowd:
            connection.close()


@pytest.mark.parametrize("detector", [{"limits": ReceiverLimits(timeout=1.0, idle_timeout=1.0)}], indirect=True)
def test_a_trickled_byte_does_not_extend_the_request_deadline(detector: DetectorService) -> None:
    headers = _connect(detector, "127.0.0.1")                 # headers one byte at a time, never ending
    headers.sendall(HEAD)
    assert _closed_by_peer(headers, b"X-Pad: " + b"a" * 1000, seconds=15.0) is not None
    body = _connect(detector, "127.0.0.1")                    # a body one byte at a time
    body.sendall(HEAD + b"Content-Length: 100000\r\n\r\n")
    answer = _closed_by_peer(body, b"\0" * 100000, seconds=15.0)
    assert answer is not None and answer.startswith(b"HTTP/1.1 408"), answer
    idle = _connect(detector, "127.0.0.1")                    # a keep-alive connection left idle is reaped
    idle.settimeout(15.0)
    idle.sendall(HEAD + f"Content-Length: {len(_profile(1))}\r\n\r\n".encode() + _profile(1))
    answer = b""
    while chunk := idle.recv(65536):
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and b"Connection: close" not in answer
    for connection in (headers, body, idle):
        connection.close()
    session = requests.Session()                              # the producer never noticed
    assert session.post(detector.endpoint + "/v1/logs", data=_profile(2), headers=PROTOBUF, timeout=10).ok


@pytest.mark.parametrize("detector", [{"token": "s3cret"}], indirect=True)
def test_the_authorization_scheme_is_case_insensitive(detector: DetectorService) -> None:
    logs = detector.endpoint + "/v1/logs"
    for sequence, (value, status) in enumerate([("bearer s3cret", 200), ("BEARER  s3cret ", 200),
                                                ("Bearer s3cret", 200), ("Bearer wrong", 401), ("Basic s3cret", 401),
                                                ("s3cret", 401), ("", 401)]):
        answer = requests.post(logs, data=_profile(sequence), headers={**PROTOBUF, "Authorization": value},
                               timeout=10)
        assert answer.status_code == status, value


def test_an_answer_with_a_body_arrives_in_one_piece_on_keep_alive(detector: DetectorService) -> None:
    """Headers and body in one write: the first read holds the whole answer (with two writes, Nagle holds the
    body back until the client's delayed ACK of the headers, some 40 ms on Linux)."""
    connection = _connect(detector, "127.0.0.1")
    connection.settimeout(10)
    for _ in range(5):                                        # a 400 with a google.rpc.Status body, kept alive
        connection.sendall(HEAD + b"Content-Length: 5\r\n\r\nxxxxx")
        first = connection.recv(65536)
        head, _, body = first.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        assert head.startswith(b"HTTP/1.1 400") and length > 0 and len(body) == length, first
    connection.close()


@pytest.mark.parametrize("detector", [{"limits": ReceiverLimits(max_bytes_in_flight_per_peer=100_000)}],
                         indirect=True)
def test_one_peer_cannot_hold_every_byte_in_flight(detector: DetectorService) -> None:
    listener = detector.receiver.server if detector.receiver is not None else None
    assert listener is not None
    slow = _connect(detector, "127.0.0.2")                    # declares 90 kB, sends them slowly
    slow.sendall(HEAD + b"Content-Length: 90000\r\n\r\n" + b"\0" * 10)
    deadline = time.monotonic() + 10
    while listener.exchanges < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    greedy = _connect(detector, "127.0.0.2")                  # 20 kB more from the same peer: over its share
    greedy.settimeout(10)
    greedy.sendall(HEAD + b"Content-Length: 20000\r\n\r\n")
    answer = greedy.recv(65536)
    assert answer.startswith(b"HTTP/1.1 503") and b"from this address" in answer, answer
    body = _profile(1)                                        # another peer is served
    assert requests.post(detector.endpoint + "/v1/logs", data=body, headers=PROTOBUF, timeout=10).status_code == 200
    for connection in (slow, greedy):
        connection.close()
