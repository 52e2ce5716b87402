"""Throughput and latency of one TorchServe model with and without servewatch, measured side by side.

    python bench/torchserve_overhead.py [--rounds 20] [--seconds 3] [--concurrency 4]

Two TorchServe instances serve the example churn model (``examples/torchserve``: one worker, no batching,
``OMP_NUM_THREADS=1`` as usual for CPU serving): one plain, one under ``opentelemetry-instrument`` with the
example's spec, sending profiles and metrics every 10 s to a real ``servewatch detect`` on the same machine. In each round both are loaded at the same time, each by its
own ``--concurrency`` keep-alive clients, for ``--seconds``: whatever else the machine is doing then slows both
alike (on a shared machine, rounds run one after the other differ by more than the effect measured). When the
machine is saturated the two share it, so the instrumented side's extra CPU per request shows as fewer
requests served and longer latencies. Per round: requests per second, p50 and p99 latency of each side;
printed: each side's medians, the median of the per-round ratios with their quartiles, and each side's CPU time
per request in its worker and its Java frontend. Targets: throughput >= 97% of the baseline, p50 within +3%.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from torchserve_harness import EXAMPLE, Detector, TorchServe, build_archive

MODEL = "churn"
SIDES = ("baseline", "servewatch")


def load(servers: dict[str, TorchServe], seconds: float, concurrency: int,
         seed: int) -> dict[str, tuple[float, list[float]]]:
    """``concurrency`` clients per server posting rows for ``seconds``, all servers at once:
    name -> (requests per second, latencies in seconds)."""
    latencies: dict[str, list[list[float]]] = {name: [[] for _ in range(concurrency)] for name in servers}
    failures: list[int] = []
    start = time.perf_counter()
    deadline = start + seconds

    def client(name: str, index: int) -> None:
        host, port = servers[name].inference_url.removeprefix("http://").split(":")
        rng = random.Random(seed * 100 + index)
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        mine = latencies[name][index]
        while True:
            body = json.dumps([rng.gauss(0, 1) for _ in range(3)])
            began = time.perf_counter()
            if began >= deadline:
                break
            connection.request("POST", f"/predictions/{MODEL}", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - began)
            if response.status != 200:
                failures.append(response.status)
        connection.close()

    threads = [threading.Thread(target=client, args=(name, i)) for i in range(concurrency) for name in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed: {sorted(set(failures))}")
    result = {}
    for name, per_client in latencies.items():
        everything = [latency for mine in per_client for latency in mine]
        result[name] = (len(everything) / elapsed, everything)
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def processes(server: TorchServe) -> dict[str, int]:
    """The model's worker process and its parent, the Java frontend."""
    worker = int(server.workers(MODEL)[0]["pid"])
    frontend = int(Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return {"worker": worker, "frontend": frontend}


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="servewatch-bench-ts-") as tmp:
        root = Path(tmp)
        mar = build_archive(root / "store", MODEL)
        models = {MODEL: {"marName": mar.name}}
        with Detector(root / "detector", EXAMPLE / "servewatch.yaml", interval="15s", bucket="10s") as detector:
            common = {"OMP_NUM_THREADS": "1"}  # no OpenMP threads spinning between batches on a 2-core machine
            env = {**common, "SERVEWATCH_SPEC": str(EXAMPLE / "servewatch.yaml"), "SERVEWATCH_PROFILE_INTERVAL": "10",
                   "OTEL_METRIC_EXPORT_INTERVAL": "10000", "OTEL_EXPORTER_OTLP_ENDPOINT": detector.otlp_url}
            servers = {"baseline": TorchServe(root / "plain", models, store=mar.parent, instrumented=False, env=common),
                       "servewatch": TorchServe(root / "instrumented", models, store=mar.parent, instrumented=True,
                                                env=env)}
            try:
                for server in servers.values():
                    server.start()
                load(servers, 10.0, args.concurrency, seed=0)  # warm-up: the JVM JIT, connections, first export
                pids = {name: processes(server) for name, server in servers.items()}
                rounds: dict[str, list[tuple[float, float, float]]] = {name: [] for name in SIDES}
                cpu: dict[str, dict[str, float]] = {name: {"worker": 0.0, "frontend": 0.0} for name in SIDES}
                served = dict.fromkeys(SIDES, 0)
                for index in range(args.rounds):
                    before = {name: {part: cpu_seconds(pid) for part, pid in parts.items()}
                              for name, parts in pids.items()}
                    result = load(servers, args.seconds, args.concurrency, seed=index + 1)
                    line = []
                    for name in SIDES:
                        rate, latencies = result[name]
                        served[name] += len(latencies)
                        for part, pid in pids[name].items():
                            cpu[name][part] += cpu_seconds(pid) - before[name][part]
                        rounds[name].append((rate, quantile(latencies, 0.5), quantile(latencies, 0.99)))
                        line.append(f"{name} {rate:6.1f} req/s p50 {rounds[name][-1][1] * 1e3:5.2f} ms "
                                    f"p99 {rounds[name][-1][2] * 1e3:6.2f} ms")
                    print(f"round {index + 1:2d}: " + "  |  ".join(line), flush=True)
                samples = sum(value for _, value in detector.samples(
                    "servewatch_window_samples", model=MODEL, signal="input", feature="tenure", window="10m"))
            finally:
                for server in servers.values():
                    server.stop()
    report(rounds, cpu, served, args.concurrency, samples)
    return 0


def report(rounds: dict[str, list[tuple[float, float, float]]], cpu: dict[str, dict[str, float]],
           served: dict[str, int], concurrency: int, samples: float) -> None:
    base, ours = rounds["baseline"], rounds["servewatch"]
    for name, side in rounds.items():
        print(f"{name:>10} (median of {len(side)} rounds): {statistics.median(r[0] for r in side):7.1f} req/s  "
              f"p50 {statistics.median(r[1] for r in side) * 1e3:5.2f} ms  "
              f"p99 {statistics.median(r[2] for r in side) * 1e3:6.2f} ms")
    for part in ("worker", "frontend"):
        without, with_ = (cpu[name][part] / served[name] * 1e6 for name in SIDES)
        print(f"{part:>10} CPU per request: {without:6.1f} us without, {with_:6.1f} us with servewatch "
              f"({with_ - without:+.1f} us)")
    print(f"TorchServe with servewatch / without, {concurrency} clients each, per-round ratios, median [quartiles]:")
    for label, index, target, higher in (("throughput", 0, 0.97, True), ("p50", 1, 1.03, False),
                                         ("p99", 2, None, False)):
        ratios = [o[index] / b[index] for o, b in zip(ours, base)]
        median = statistics.median(ratios)
        low, _, high = statistics.quantiles(ratios, n=4)
        verdict = ""
        if target is not None:
            met = median >= target if higher else median <= target
            verdict = f"  target {'>=' if higher else '<='} {target}: {'ok' if met else 'MISSED'}"
        print(f"  {label:>10} {median:.3f}x [{low:.3f} .. {high:.3f}]{verdict}")
    print(f"  (the detector's 10m window holds {samples:.0f} profiled rows of the instrumented side)")


if __name__ == "__main__":
    sys.exit(main())
