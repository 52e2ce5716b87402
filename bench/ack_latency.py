"""Ack latency on a keep-alive connection: answers in one write against the old headers-then-body writes.

    .venv/bin/python bench/ack_latency.py [--requests 200]

A ``DetectorService`` in this process answers requests sent one after another on one keep-alive
``http.client`` connection, as an OTLP exporter sends them. Three answers are timed (median and p90 of
``--requests`` each): an empty 200 (every profile stored), a partial success (one profile from the future:
a 200 whose body says why it was rejected) and a 400 (a truncated body). Each is measured twice in the same
run, on the same detector, in four interleaved rounds:

- ``before``: the receiver as it was: the status line and headers in one write, the body in a second,
  Nagle's algorithm on (the harness swaps the old writes back in and leaves ``TCP_NODELAY`` unset);
- ``after``: the receiver as it is: one write, ``TCP_NODELAY``.

With the two writes, the body waits for the ACK of the headers, and the client delays its ACK (about 40 ms
on Linux): every answer with a body pays it. Expect ``after`` to be a small fraction of ``before`` for the
partial success and the 400, and about equal for the empty 200.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from servewatch.detectors.service import DetectorService
from servewatch.detectors.service.listener import Exchange, Listener
from servewatch.profile import Profile
from servewatch.wire import encode_profiles


def _profile(sequence: int, end: float) -> bytes:
    profile = Profile("bench", "input", start=end - 1, end=end, producer="bench", sequence=sequence)
    return encode_profiles([profile.update(np.random.default_rng(sequence).normal(size=(50, 4)))])


@contextmanager
def _two_writes() -> Iterator[None]:
    """The receiver's old answer path: headers, then body, in two writes, with Nagle on."""
    transmit, tune = Exchange._transmit, Listener.tune

    def old_transmit(self: Exchange, head: bytes, payload: bytes) -> None:
        self.wfile.write(head)
        if payload:
            self.wfile.write(payload)

    Exchange._transmit = old_transmit  # type: ignore[method-assign]
    Listener.tune = lambda self, connection: None  # type: ignore[method-assign]
    try:
        yield
    finally:
        Exchange._transmit, Listener.tune = transmit, tune  # type: ignore[method-assign]


def _latencies(address: tuple[str, int], bodies: Callable[[int], bytes], count: int, status: int) -> list[float]:
    connection = http.client.HTTPConnection(*address, timeout=30)
    times = []
    for index in range(count + 3):
        body = bodies(index)
        started = time.perf_counter()
        connection.request("POST", "/v1/logs", body=body, headers={"Content-Type": "application/x-protobuf"})
        answer = connection.getresponse()
        answer.read()
        elapsed = time.perf_counter() - started
        assert answer.status == status, (answer.status, status)
        if index >= 3:  # the first requests open the connection and warm up
            times.append(elapsed)
    connection.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    logging.getLogger("servewatch.detect").setLevel(logging.ERROR)  # the 400s are refused on purpose
    future = time.time() + 3600
    counter = iter(range(10**9))
    cases: dict[str, tuple[Callable[[int], bytes], int]] = {
        "empty 200": (lambda _: _profile(next(counter), time.time()), 200),
        "partial success": (lambda _: _profile(next(counter), future), 200),
        "400": (lambda _: _profile(0, time.time())[:-7], 400),
    }
    with tempfile.TemporaryDirectory() as state, DetectorService(
            state_dir=state, listen="127.0.0.1:0", metrics_listen="127.0.0.1:0", interval="1h") as detector:
        address = detector.listen_address
        print(f"ack latency, {args.requests} requests each on one keep-alive connection, median (p90) in ms:")
        print(f"{'answer':<18}{'before (2 writes)':>22}{'after (1 write)':>22}{'after/before':>14}")
        for name, (bodies, status) in cases.items():
            before: list[float] = []
            after: list[float] = []
            for _ in range(4):  # interleaved, so a store that grows or a noisy neighbour weighs on both alike
                with _two_writes():
                    before += _latencies(address, bodies, args.requests // 4, status)
                after += _latencies(address, bodies, args.requests // 4, status)

            def cell(times: list[float]) -> str:
                return f"{statistics.median(times) * 1e3:.2f} ({np.percentile(times, 90) * 1e3:.2f})"

            ratio = statistics.median(after) / statistics.median(before)
            print(f"{name:<18}{cell(before):>22}{cell(after):>22}{ratio:>13.2f}x")


if __name__ == "__main__":
    main()
