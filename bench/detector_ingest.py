"""Detector ingest: what one profile costs end to end, against decoding the same payloads, in one run.

    .venv/bin/python bench/detector_ingest.py [--profiles 400]

Payloads: one OTLP log request per profile, 20 numeric features of 1,000 rows each (about 90 KB), as a serving
replica sends every interval. Measured:

1. end to end: ``servewatch detect`` in its own process receives the payloads over HTTP on one keep-alive
   connection; cost per profile = the detector process's CPU time (user + system, from /proc) over the run,
   divided by the profiles. It includes HTTP parsing, the strict decode, the group-commit write to SQLite
   (WAL, synchronous=FULL), the merge into its bucket and the answer.
2. baselines, in this process on the same payloads (CPU time too, best of several runs):
   a. bare decode: protobuf parse + ``kll_doubles_sketch.deserialize`` of every column (target: e2e <= 2x);
   b. the strict decode the detector must run on untrusted bytes, ``servewatch.wire.decode_profiles``
      (protobuf parse, field checks, the structural KLL check, deserialize).

Also printed: the in-process split (``DetectorService.submit``, no HTTP) and the wall-clock rate.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import datasketches as ds
import numpy as np
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from servewatch.profile import Profile
from servewatch.wire import decode_profiles, encode_profiles

FEATURES, ROWS = 20, 1000


def payloads(count: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    base = time.time()
    out = []
    for i in range(count):
        end = base + i * 0.001
        profile = Profile("bench", "input", start=end - 60, end=end, producer=f"replica-{i % 8}", sequence=i)
        out.append(encode_profiles([profile.update(rng.normal(size=(ROWS, FEATURES)))]))
    return out


def bare_decode(data: bytes) -> None:
    request = ExportLogsServiceRequest.FromString(data)
    for resource in request.resource_logs:
        for scope in resource.scope_logs:
            for record in scope.log_records:
                columns = next(kv.value for kv in record.body.kvlist_value.values if kv.key == "columns")
                for column in columns.kvlist_value.values:
                    for field in column.value.kvlist_value.values:
                        if field.key == "kll":
                            ds.kll_doubles_sketch.deserialize(field.value.bytes_value)


def best_cpu(function: Callable[[], object], repeat: int = 5) -> float:
    """The least CPU time (this process) of ``repeat`` calls: the same clock as the detector's side."""
    times = []
    for _ in range(repeat):
        started = time.process_time()
        function()
        times.append(time.process_time() - started)
    return min(times)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def end_to_end(data: list[bytes], state: str) -> tuple[float, float]:
    """(detector CPU seconds per profile, wall seconds per profile) for ``data`` sent over HTTP."""
    command = [str(Path(sys.executable).with_name("servewatch")), "detect", "--listen", "127.0.0.1:0",
               "--metrics-listen", "127.0.0.1:0", "--state", state, "--interval", "1h", "--log-level", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        host, port = re.search(r"on http://([\d.]+):(\d+)", line).groups()  # type: ignore[union-attr]
        connection = http.client.HTTPConnection(host, int(port))

        def send(body: bytes) -> None:
            connection.request("POST", "/v1/logs", body, {"Content-Type": "application/x-protobuf"})
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200, answer.status

        for body in data[:20]:  # warm up: first bucket, caches, connection
            send(body)
        cpu, wall = cpu_seconds(process.pid), time.perf_counter()
        for body in data[20:]:
            send(body)
        count = len(data) - 20
        return (cpu_seconds(process.pid) - cpu) / count, (time.perf_counter() - wall) / count
    finally:
        process.terminate()
        process.wait(30)


def in_process(data: list[bytes], state: str) -> float:
    """Seconds per profile through DetectorService.submit after decoding (the store path, no HTTP)."""
    from servewatch.detectors.service import DetectorService

    profiles = [decode_profiles(body)[0] for body in data]
    with DetectorService(state_dir=state, listen="127.0.0.1:0", metrics_listen="127.0.0.1:0",
                         interval="1h") as detector:
        detector.submit(profiles[:20])
        started = time.process_time()
        for profile in profiles[20:]:
            detector.submit([profile])
        return (time.process_time() - started) / (len(profiles) - 20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=400)
    args = parser.parse_args()
    data = payloads(args.profiles)
    print(f"{len(data)} payloads of {FEATURES} features x {ROWS} rows, {sum(map(len, data)) / len(data) / 1024:.0f} "
          f"KiB each")
    bare = best_cpu(lambda: [bare_decode(body) for body in data[:100]]) / 100
    strict = best_cpu(lambda: [decode_profiles(body) for body in data[:100]]) / 100
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        cpu, wall = end_to_end(data, first)
        store = in_process(data, second)
    print(f"bare decode (protobuf parse + deserialize):  {bare * 1e6:8.0f} us/profile")
    print(f"strict decode (servewatch.wire):             {strict * 1e6:8.0f} us/profile")
    print(f"store path, no HTTP (submit: merge + commit): {store * 1e6:8.0f} us/profile")
    print(f"end to end, detector CPU:                    {cpu * 1e6:8.0f} us/profile "
          f"(wall {wall * 1e6:.0f} us/profile sequential, {1 / wall:.0f} profiles/s)")
    verdict = "ok" if cpu / bare <= 2 else "OVER target 2x"
    print(f"end to end / bare decode:   {cpu / bare:5.2f}x  [{verdict}]")
    print(f"end to end / strict decode: {cpu / strict:5.2f}x")


if __name__ == "__main__":
    main()
