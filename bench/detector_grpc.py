"""Detector ingest over OTLP/gRPC against OTLP/HTTP: one detector process, the same payloads, in one run.

    .venv/bin/python bench/detector_grpc.py [--profiles 400]

Payloads as in ``detector_ingest.py`` (one OTLP log request per profile, 20 numeric features of 1,000 rows,
about 90 KB). One ``servewatch detect`` process listens on both; each protocol sends its own half of the
payloads (distinct profiles: none is a duplicate) one request at a time, on one connection / channel, in
alternating rounds. Measured: the detector process's CPU time per profile (user + system, from /proc) and the
wall time per request, per protocol; printed as the ratio gRPC / HTTP (target: gRPC <= 1.5x HTTP).
"""

from __future__ import annotations

import argparse
import http.client
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from detector_ingest import cpu_seconds, payloads

LOGS = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def measure(data: list[bytes], state: str, rounds: int = 4) -> dict[str, tuple[float, float]]:
    """protocol -> (detector CPU seconds per profile, wall seconds per profile)."""
    command = [str(Path(sys.executable).with_name("servewatch")), "detect", "--listen", "127.0.0.1:0",
               "--grpc-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--state", state,
               "--interval", "1h", "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        found = re.search(r"on http://([\d.]+):(\d+) .*OTLP/gRPC on ([\d.]+:\d+)", line)
        assert found is not None, line
        connection = http.client.HTTPConnection(found.group(1), int(found.group(2)))
        channel = grpc.insecure_channel(found.group(3))
        export = channel.unary_unary(LOGS)

        def over_http(body: bytes) -> None:
            connection.request("POST", "/v1/logs", body, {"Content-Type": "application/x-protobuf"})
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200, answer.status

        def over_grpc(body: bytes) -> None:
            export(body, timeout=30)

        senders: dict[str, Callable[[bytes], None]] = {"http": over_http, "grpc": over_grpc}
        halves = {"http": data[0::2], "grpc": data[1::2]}
        for name, send in senders.items():  # warm up: first bucket, caches, connections
            for body in halves[name][:10]:
                send(body)
        totals = {name: [0.0, 0.0, 0] for name in senders}
        size = (len(data) // 2 - 10) // rounds
        for round_ in range(rounds):
            for name, send in senders.items():
                chunk = halves[name][10 + round_ * size:10 + (round_ + 1) * size]
                cpu, wall = cpu_seconds(process.pid), time.perf_counter()
                for body in chunk:
                    send(body)
                totals[name][0] += cpu_seconds(process.pid) - cpu
                totals[name][1] += time.perf_counter() - wall
                totals[name][2] += len(chunk)
        channel.close()
        return {name: (cpu / count, wall / count) for name, (cpu, wall, count) in totals.items()}
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=400)
    args = parser.parse_args()
    data = payloads(args.profiles)
    with tempfile.TemporaryDirectory() as state:
        results = measure(data, state)
    for name, (cpu, wall) in results.items():
        print(f"{name:5s} detector CPU {cpu * 1e6:7.0f} us/profile, wall {wall * 1e6:7.0f} us/request (sequential)")
    ratio = results["grpc"][0] / results["http"][0]
    verdict = "ok" if ratio <= 1.5 else "OVER target 1.5x"
    print(f"gRPC / HTTP, detector CPU: {ratio:5.2f}x  [{verdict}]")
    print(f"gRPC / HTTP, wall:         {results['grpc'][1] / results['http'][1]:5.2f}x")


if __name__ == "__main__":
    main()
