"""The replayer against a real HTTP server: batches of JSON days, phase by phase, paced, counting failures."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from servewatch.demo.phases import Phase, Resample, Schedule, StuckSensor, UnitChange
from servewatch.demo.replayer import Replayer
from servewatch.demo.weather import FEATURES, Days


class Recorder(ThreadingHTTPServer):
    def __init__(self, status: int = 200) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = status
        self.bodies: list[tuple[float, list[dict[str, Any]]]] = []


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_POST(self) -> None:  # noqa: N802
        rows = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append((time.time(), rows))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"[]")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def plan(seconds: float = 1.0) -> Schedule:
    return Schedule((
        Phase("baseline", "none", "", Resample(), seconds, 0.0),
        Phase("inches", "instantaneous", "", UnitChange("precipitation", 0.0), seconds, seconds, ("precipitation",)),
        Phase("stuck", "temporary", "", StuckSensor("wind", 42.0), seconds, 0.0, ("wind",)),
    ), window=1.0)


def test_replays_every_phase_in_order(recorder: Recorder) -> None:
    days = Days.load()
    replayer = Replayer(f"http://127.0.0.1:{recorder.server_address[1]}/predict", days, plan(), rate=50,
                        batch=(3, 5)).start()
    replayer.join(10)
    assert replayer.done and replayer.failures == 0
    assert replayer.requests == len(recorder.bodies) and 20 <= replayer.requests <= 4 * 50 * 1.05  # <= 50 a second
    assert replayer.rows == sum(len(rows) for _, rows in recorder.bodies)
    assert all(3 <= len(rows) <= 5 and set(rows[0]) == set(FEATURES) for _, rows in recorder.bodies)
    started = replayer.started
    assert started is not None

    def sent(lo: float, hi: float) -> list[dict[str, Any]]:  # arrival times, a margin for a loaded machine
        return [row for at, rows in recorder.bodies if started + lo + 0.2 <= at < started + hi - 0.2 for row in rows]

    assert any(row["precipitation"] > 0 for row in sent(0.0, 1.0))
    assert all(row["precipitation"] == 0 for row in sent(1.0, 2.0))  # the unit change, multiplied by 0 here
    assert any(row["precipitation"] > 0 for row in sent(2.0, 3.0))  # recovery: baseline days again
    assert all(row["wind"] == 42.0 for row in sent(3.0, 4.0))
    assert not any(row["wind"] == 42.0 for row in sent(0.0, 3.0))
    assert replayer.phase_started(1) == pytest.approx(started + 1.0)
    assert replayer.at(started + 2.5).phase.name == "inches"  # type: ignore[union-attr]


def test_counts_failures_and_keeps_going() -> None:
    server = Recorder(status=503)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        replayer = Replayer(f"http://127.0.0.1:{server.server_address[1]}/predict", Days.load(), plan(0.3), rate=20)
        replayer.start().join(10)
        assert replayer.requests == 0 and replayer.failures > 5 and replayer.last_error == "HTTP 503"
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_that_is_not_there_counts_as_failures() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    replayer = Replayer(f"http://127.0.0.1:{port}/predict", Days.load(), plan(0.3), rate=20).start()
    replayer.join(10)
    assert replayer.done and replayer.requests == 0 and replayer.failures > 5
    assert "ConnectionRefused" in (replayer.last_error or "")


def test_stop_ends_the_replay_early(recorder: Recorder) -> None:
    replayer = Replayer(f"http://127.0.0.1:{recorder.server_address[1]}/predict", Days.load(), plan(),
                        rate=20).start()
    time.sleep(0.3)
    replayer.stop()
    assert not replayer.is_alive() and replayer.elapsed() < 3.0
