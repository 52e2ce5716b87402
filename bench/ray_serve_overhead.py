"""Throughput and latency of the same Ray Serve deployments with and without servewatch, measured side by side.

    python bench/ray_serve_overhead.py [--rounds 10] [--seconds 3] [--concurrency 8]

One local cluster (``serve run``, no ``opentelemetry-instrument``) serves the example's ``fraud`` (plain) and
``fraud_batched`` (``@serve.batch``) deployments twice: as applications ``plain`` and ``plain_batched``, and as
``watched`` and ``watched_batched``, whose replicas get servewatch through the runtime_env recipe
(:func:`servewatch.instrumentation.ray_serve.runtime_env`) with the example's spec, exporting profiles and
metrics every 10 s to a real ``servewatch detect``. Same code, same proxy, same cluster: only servewatch
differs. Rounds alternate which side is loaded first; each side gets ``--seconds`` of requests (one
transaction each) from ``--concurrency`` keep-alive clients after a warm-up. Per round: requests per second,
p50 and p99 latency; printed: each side's medians and the median of the per-round ratios. Targets:
throughput >= 97% of the baseline, p50 within +3%.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from ray_serve_harness import EXAMPLE, Detector, ServeApp, free_port, serve_config

sys.path.insert(0, str(EXAMPLE))
from traffic import transaction  # noqa: E402  (the example's traffic generator)

from servewatch.instrumentation.ray_serve import runtime_env  # noqa: E402

SIDES = {"plain": ("/plain", "/plain-batched"), "watched": ("/watched", "/watched-batched")}


def load(port: int, path: str, seconds: float, concurrency: int, seed: int) -> tuple[float, list[float]]:
    """``concurrency`` clients posting one transaction per request for ``seconds``: (requests per second,
    latencies in seconds)."""
    rng = random.Random(seed)
    bodies = [json.dumps(transaction(rng)).encode() for _ in range(512)]
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    failures: list[int] = []
    start = time.perf_counter()
    deadline = start + seconds

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = latencies[index]
        i = index
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
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{len(failures)} requests to {path} failed: {failures[:5]}")
    merged = [value for values in latencies for value in values]
    return len(merged) / elapsed, merged


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="servewatch-bench-ray-"))
    spec = EXAMPLE / "servewatch.yaml"
    with Detector(work / "detector", spec) as detector:
        settings = {"OTEL_EXPORTER_OTLP_ENDPOINT": detector.otlp_url, "SERVEWATCH_SPEC": str(spec),
                    "SERVEWATCH_PROFILE_INTERVAL": "10", "OTEL_METRIC_EXPORT_INTERVAL": "10000"}
        code = {"working_dir": f"local://{EXAMPLE}"}
        port = free_port()
        config = serve_config({"plain": ("app:scorer", "/plain"), "plain_batched": ("app:batched", "/plain-batched"),
                               "watched": ("app:scorer", "/watched"),
                               "watched_batched": ("app:batched", "/watched-batched")}, port=port)
        for app in config["applications"]:
            app["runtime_env"] = {**code, **(runtime_env(settings) if app["name"].startswith("watched") else {})}
        probe = transaction(random.Random(0))
        probes = {path: probe for paths in SIDES.values() for path in paths}
        print(f"starting Ray Serve (4 applications) in {work} ...", flush=True)
        with ServeApp(work / "serve", config, instrumented=False, probes=probes) as app:
            for paths in SIDES.values():  # warm-up: first requests, JIT-free but caches, pools, batch queues
                for path in paths:
                    load(port, path, 2.0, args.concurrency, seed=99)
            results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
            for round_ in range(args.rounds):
                order = list(SIDES) if round_ % 2 == 0 else list(reversed(SIDES))
                for kind in (0, 1):
                    for side in order:
                        rate, latencies = load(port, SIDES[side][kind], args.seconds, args.concurrency, seed=round_)
                        results.setdefault((side, "batched" if kind else "plain"), []).append(
                            (rate, quantile(latencies, 0.5), quantile(latencies, 0.99)))
                print(f"round {round_ + 1}/{args.rounds} done", flush=True)
            samples = sum(1 for _ in detector.samples("servewatch_inference_requests_total"))
            if not samples:
                raise RuntimeError("the watched replicas sent no metrics to the detector: not measuring servewatch\n"
                                   + app.log_tail())

    print(f"\nRay Serve, {args.concurrency} concurrent clients, {args.rounds} rounds of {args.seconds:g}s per side"
          " (medians over rounds)")
    for kind in ("plain", "batched"):
        base, ours = results[("plain", kind)], results[("watched", kind)]
        for side, rows in (("without servewatch", base), ("with servewatch", ours)):
            print(f"  {kind:8} {side:19} {statistics.median(r[0] for r in rows):8.1f} req/s   "
                  f"p50 {statistics.median(r[1] for r in rows) * 1e3:7.2f} ms   "
                  f"p99 {statistics.median(r[2] for r in rows) * 1e3:7.2f} ms")
        throughput = statistics.median(o[0] / b[0] for o, b in zip(ours, base))
        p50 = statistics.median(o[1] / b[1] for o, b in zip(ours, base))
        p99 = statistics.median(o[2] / b[2] for o, b in zip(ours, base))
        ok = throughput >= 0.97 and p50 <= 1.03
        print(f"  {kind:8} ratio (with / without): throughput {throughput:.3f} (target >= 0.97), "
              f"p50 {p50:.3f} (target <= 1.03), p99 {p99:.3f}  [{'ok' if ok else 'OFF TARGET'}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
