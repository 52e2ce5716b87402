"""Throughput and latency of the same Ray Serve deployments with and without servewatch, measured side by side.

    python bench/ray_serve_overhead.py [--rounds 20] [--seconds 1.5] [--concurrency 8]

One local cluster (``serve run``, no ``opentelemetry-instrument``) serves the example's ``fraud`` (plain) and
``fraud_batched`` (``@serve.batch``) deployments twice: as applications ``plain`` and ``plain_batched``, and as
``watched`` and ``watched_batched``, whose replicas get servewatch through the runtime_env recipe
(:func:`servewatch.instrumentation.ray_serve.runtime_env`) with the example's spec, exporting profiles and
metrics every 10 s to a real ``servewatch detect``. Same code, same proxy, same cluster: only servewatch
differs. Each round loads the two sides in the order A B B A (B A A B the next round), ``--seconds`` each,
with ``--concurrency`` keep-alive clients sending one transaction per request, so a load that drifts during
the round weighs on both sides alike. Per round and side: requests per second, p50 and p99 latency, and the
CPU time the side's replica process used per request (from /proc, immune to other processes' load).
Printed: each side's medians and the median of the per-round ratios. Targets: throughput >= 97% of the
baseline, p50 within +3%.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from ray_serve_harness import EXAMPLE, Detector, ServeApp, free_port, serve_config

sys.path.insert(0, str(EXAMPLE))
from servewatch.instrumentation.ray_serve import runtime_env  # noqa: E402
from traffic import transaction  # noqa: E402  (the example's traffic generator)

SIDES = ("plain", "watched")
KINDS = {"plain": ("app:scorer", ""), "batched": ("app:batched", "-batched")}
TICK = os.sysconf("SC_CLK_TCK")


class Run:
    """What one side got in one round: requests, seconds, latencies, replica CPU seconds."""

    def __init__(self) -> None:
        self.requests, self.seconds, self.cpu = 0, 0.0, 0.0
        self.latencies: list[float] = []

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load(port: int, path: str, seconds: float, concurrency: int, bodies: list[bytes], run: Run) -> None:
    """``concurrency`` clients posting ``bodies`` in turn to ``path`` for ``seconds``, added to ``run``."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    failures: list[int] = []
    start = time.perf_counter()
    deadline = start + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, i = latencies[index], index
        while True:
            sent = time.perf_counter()
            if sent >= deadline:
                break
            connection.request("POST", path, bodies[i % len(bodies)], {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                failures.append(response.status)
            mine.append(time.perf_counter() - sent)
            i += concurrency
        connection.close()

    threads = [threading.Thread(target=client, args=(index,)) for index in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{len(failures)} requests to {path} failed: {failures[:5]}")
    run.seconds += time.perf_counter() - start
    for values in latencies:
        run.requests += len(values)
        run.latencies.extend(values)


def replica_pids(session: int) -> dict[str, int]:
    """Application name -> pid of its replica, among the processes of the ``serve run`` session."""
    pids = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().split(b"\0")[0].decode(errors="replace")
            with open(f"/proc/{entry}/stat", "rb") as handle:
                in_session = int(handle.read().rsplit(b")", 1)[1].split()[3]) == session
        except (OSError, ValueError, IndexError):
            continue
        if in_session and command.startswith("ray::ServeReplica:"):  # ray::ServeReplica:<app>:<deployment>
            pids[command.removeprefix("ray::ServeReplica:").split(":")[0]] = int(entry)
    return pids


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        fields = handle.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime, after "pid (comm)"


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the cluster and the detector on the way out
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="servewatch-bench-ray-"))
    spec = EXAMPLE / "servewatch.yaml"
    rng = random.Random(1)
    bodies = [json.dumps(transaction(rng)).encode() for _ in range(512)]
    results: dict[tuple[str, str], list[Run]] = {}
    with Detector(work / "detector", spec) as detector:
        settings = {"OTEL_EXPORTER_OTLP_ENDPOINT": detector.otlp_url, "SERVEWATCH_SPEC": str(spec),
                    "SERVEWATCH_PROFILE_INTERVAL": "10", "OTEL_METRIC_EXPORT_INTERVAL": "10000"}
        code = {"working_dir": f"local://{EXAMPLE}"}
        apps = {f"{side}{suffix.replace('-', '_')}": (import_path, f"/{side}{suffix}")
                for side in SIDES for import_path, suffix in KINDS.values()}
        port = free_port()
        config = serve_config(apps, port=port)
        for app in config["applications"]:
            app["runtime_env"] = {**code, **(runtime_env(settings) if app["name"].startswith("watched") else {})}
        probes = {route: json.loads(bodies[0]) for _, route in apps.values()}
        print(f"starting Ray Serve ({len(apps)} applications) in {work} ...", flush=True)
        with ServeApp(work / "serve", config, instrumented=False, probes=probes) as serve:
            assert serve.process is not None
            pids = replica_pids(serve.process.pid)
            for _, route in apps.values():  # warm-up: connections, pools, batch queues
                load(port, route, 2.0, args.concurrency, bodies, Run())
            for round_ in range(args.rounds):
                for kind, (_, suffix) in KINDS.items():
                    runs = {side: Run() for side in SIDES}
                    first, second = SIDES if round_ % 2 == 0 else SIDES[::-1]
                    for side in (first, second, second, first):
                        pid = pids[f"{side}{suffix.replace('-', '_')}"]
                        before = cpu_seconds(pid)
                        load(port, f"/{side}{suffix}", args.seconds, args.concurrency, bodies, runs[side])
                        runs[side].cpu += cpu_seconds(pid) - before
                    for side in SIDES:
                        results.setdefault((side, kind), []).append(runs[side])
                print(f"round {round_ + 1}/{args.rounds} done", flush=True)
            if not detector.samples("servewatch_inference_requests_total"):
                raise RuntimeError("the watched replicas sent no metrics to the detector: not measuring servewatch\n"
                                   + serve.log_tail())
    shutil.rmtree(work, ignore_errors=True)  # kept when something failed: the logs are there

    print(f"\nRay Serve, {args.concurrency} concurrent clients, {args.rounds} rounds of A B B A x "
          f"{args.seconds:g}s (medians over rounds)")
    for kind in KINDS:
        base, ours = results[("plain", kind)], results[("watched", kind)]
        for side, runs in (("without servewatch", base), ("with servewatch", ours)):
            print(f"  {kind:8} {side:19} {statistics.median(r.rate for r in runs):7.1f} req/s   "
                  f"p50 {statistics.median(r.quantile(0.5) for r in runs) * 1e3:7.2f} ms   "
                  f"p99 {statistics.median(r.quantile(0.99) for r in runs) * 1e3:7.2f} ms   "
                  f"replica CPU {statistics.median(r.cpu / r.requests for r in runs) * 1e6:6.0f} us/request")
        throughput = statistics.median(o.rate / b.rate for o, b in zip(ours, base))
        p50 = statistics.median(o.quantile(0.5) / b.quantile(0.5) for o, b in zip(ours, base))
        p99 = statistics.median(o.quantile(0.99) / b.quantile(0.99) for o, b in zip(ours, base))
        cpu = statistics.median((o.cpu / o.requests) / (b.cpu / b.requests) for o, b in zip(ours, base))
        verdict = "ok" if throughput >= 0.97 and p50 <= 1.03 else "OFF TARGET"
        print(f"  {kind:8} ratio (with / without): throughput {throughput:.3f} (target >= 0.97), "
              f"p50 {p50:.3f} (target <= 1.03), p99 {p99:.3f}, replica CPU {cpu:.3f}  [{verdict}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
