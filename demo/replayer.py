"""The traffic replayer: real days of weather POSTed to the model server, phase by phase.

Usage::

    from servewatch.demo.phases import schedule
    from servewatch.demo.replayer import Replayer

    replayer = Replayer("http://127.0.0.1:8000/predict", Days.load(), schedule(6.0), rate=40).start()
    replayer.at()                    # the phase being sent now (None before the start and after the end)
    replayer.requests, replayer.rows, replayer.failures
    replayer.phase_started(2)        # wall-clock time phase 2 began
    replayer.join(); replayer.stop()

One thread, one keep-alive HTTP connection, ``rate`` requests a second (fewer if the server is slower: it
never queues a backlog), each a batch of ``batch`` days (a random size in that range, as real clients send).
The schedule's clock starts with the first request; ``started`` is that wall-clock time, so the phases can
be matched with the detector's evaluations. Seeded, so two runs send the same days.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse

import numpy as np

from .phases import At, Resample, Schedule
from .weather import Days

__all__ = ["Replayer"]

_BASELINE = Resample()


class Replayer(threading.Thread):
    """Sends the schedule's traffic; see the module docstring."""

    def __init__(self, url: str, days: Days, plan: Schedule, *, rate: float = 40.0,
                 batch: tuple[int, int] = (20, 80), seed: int = 2012, timeout: float = 10.0) -> None:
        super().__init__(name="servewatch-demo-replayer", daemon=True)
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = parsed.hostname or "127.0.0.1", parsed.port or 80, parsed.path
        self.days = days
        self.plan = plan
        self.rate = rate
        self.batch = batch
        self.timeout = timeout
        self.rng = np.random.default_rng(seed)
        self.requests = 0
        self.rows = 0
        self.failures = 0
        self.last_error: str | None = None
        self.started: float | None = None
        """Wall-clock time of the first request (the schedule's zero)."""
        self._stopping = threading.Event()

    def start(self) -> Replayer:  # type: ignore[override]
        super().start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout)

    def elapsed(self, now: float | None = None) -> float:
        """Seconds into the schedule (0 before the start)."""
        return 0.0 if self.started is None else (time.time() if now is None else now) - self.started

    def at(self, now: float | None = None) -> At | None:
        """The phase at ``now`` (wall clock; default now)."""
        return None if self.started is None else self.plan.at(self.elapsed(now))

    def phase_started(self, index: int) -> float | None:
        """Wall-clock time phase ``index`` began (None before the replay started)."""
        return None if self.started is None else self.started + self.plan.starts()[index]

    @property
    def done(self) -> bool:
        return self.started is not None and not self.is_alive()

    def run(self) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        period = 1.0 / self.rate
        try:
            self.started = time.time()
            tick = time.monotonic()
            while not self._stopping.is_set():
                at = self.plan.at(time.time() - self.started)
                if at is None:
                    break
                n = int(self.rng.integers(self.batch[0], self.batch[1] + 1))
                drift = at.phase.drift if at.drifting else None
                rows = (drift or _BASELINE).draw(self.days, self.rng, n, at.progress or 0.0)
                self._send(connection, json.dumps(self.days.rows(rows)).encode(), n)
                tick = max(tick + period, time.monotonic())
                self._stopping.wait(max(0.0, tick - time.monotonic()))
        finally:
            connection.close()

    def _send(self, connection: http.client.HTTPConnection, body: bytes, n: int) -> None:
        try:
            # bytes in one request() call: headers and body leave in one packet (no Nagle / delayed-ACK stall)
            connection.request("POST", self.path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status == 200:
                self.requests += 1
                self.rows += n
                return
            self.last_error = f"HTTP {response.status}"
        except (OSError, http.client.HTTPException) as error:
            self.last_error = f"{type(error).__name__}: {error}"
            connection.close()  # reconnects on the next request
        self.failures += 1
