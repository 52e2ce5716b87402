"""Throughput and latency of a PyTriton model with and without servewatch, measured side by side.

    python bench/triton_overhead.py [--rounds 10] [--seconds 4] [--concurrency 8] [--batch 1]

Two PyTriton apps (examples/triton/app.py) serve the churn model (dynamic batching, 2 ms queue delay): one
plain, one under ``opentelemetry-instrument`` with the example's spec, exporting profiles and metrics every
10 s to a real ``servewatch detect`` on the same machine (queue and compute time read from Triton's metrics
endpoint too). Both run for the whole benchmark; rounds alternate which is loaded first, each side getting
``--seconds`` of requests from ``--concurrency`` gRPC clients (one ``InferenceServerClient`` per thread, each
request ``--batch`` rows) after a warm-up. Per round: requests per second, p50 and p99 latency, and the CPU
time the server's process group (app, tritonserver, stub) used per request, which neighbours on a shared
machine disturb less than wall-clock figures; printed: each side's medians and the median of the per-round
ratios. First, the hook's own cost per call, measured in this process. Targets: throughput >= 97% of the baseline, p50
within +3%. Needs .venv-triton (PyTriton, numpy<2); run from another interpreter it re-runs itself there.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRITON_PYTHON = ROOT / ".venv-triton" / "bin" / "python"


def _ensure_triton_venv() -> None:
    try:
        import pytriton  # noqa: F401
        import tritonclient.grpc  # noqa: F401
    except ImportError:
        if TRITON_PYTHON.exists() and Path(sys.executable) != TRITON_PYTHON:
            os.execv(str(TRITON_PYTHON), [str(TRITON_PYTHON), __file__, *sys.argv[1:]])
        print("triton_overhead: skipped (needs .venv-triton: make venv-triton)")
        sys.exit(0)


def load(url: str, seconds: float, concurrency: int, batch: int, seed: int) -> tuple[float, list[float], int]:
    """``concurrency`` clients inferring for ``seconds``: (requests per second, latencies in s, failures)."""
    import numpy as np
    import tritonclient.grpc as grpc
    from churn import customers

    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    failures = [0] * concurrency
    barrier = threading.Barrier(concurrency + 1)
    deadline = [0.0]

    def client(index: int) -> None:
        connection = grpc.InferenceServerClient(url)
        rows = [customers(np.random.default_rng(seed * 100 + index + i), batch) for i in range(64)]
        mine = latencies[index]
        barrier.wait()
        i = 0
        while True:
            value = grpc.InferInput("features", [batch, 4], "FP32")
            value.set_data_from_numpy(rows[i % 64])
            began = time.perf_counter()
            if began >= deadline[0]:
                break
            try:
                connection.infer("churn", [value])
                mine.append(time.perf_counter() - began)
            except Exception:
                failures[index] += 1
            i += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    deadline[0] = start + seconds
    barrier.wait()
    for thread in threads:
        thread.join()
    everything = sorted(latency for mine in latencies for latency in mine)
    return len(everything) / seconds, everything, sum(failures)


def hook_cost(batch: int, calls: int = 2000) -> tuple[float, float]:
    """Seconds per call of PyTriton's own adapter around a ``@batch`` model, without and with the servewatch
    hook (best of 7, in this process; profiles spooled to a temporary directory, metrics not exported)."""
    import asyncio

    import numpy as np
    from churn import customers, score
    from pytriton.decorators import batch as batched
    from pytriton.proxy.inference import _AsyncGenForCallableAdapter
    from pytriton.proxy.types import Request
    from servewatch.instrumentation.triton.pytriton import _observed

    sys.path.insert(0, str(Path(__file__).parent))
    from _timing import best

    @batched
    def churn(features: np.ndarray) -> dict[str, np.ndarray]:
        return {"score": score(features)}

    requests = [Request({"features": customers(np.random.default_rng(0), batch)})]
    plain = _AsyncGenForCallableAdapter(churn)
    hooked = _observed(plain, "churn", True)
    loop = asyncio.new_event_loop()

    def drive(adapter):  # type: ignore[no-untyped-def]
        async def many() -> None:
            for _ in range(calls):
                async for _ in adapter(requests):
                    pass
        return lambda: loop.run_until_complete(many())

    try:
        return best(drive(plain)) / calls, best(drive(hooked)) / calls
    finally:
        loop.close()


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of process group ``pgid`` (the app, its
    tritonserver and the python-backend stub)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:            # fields after the command: state, ppid, pgrp, ..., utime, stime
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1, help="rows per request")
    args = parser.parse_args()
    _ensure_triton_venv()
    sys.path.insert(0, str(Path(__file__).parent))
    import triton_harness as harness

    sys.path.insert(0, str(harness.EXAMPLES))
    spec = harness.EXAMPLES / "servewatch.yaml"
    spool = tempfile.mkdtemp(prefix="servewatch-triton-spool-")
    atexit.register(shutil.rmtree, spool, True)          # after the runtime's own exit flush (registered later)
    os.environ.update(SERVEWATCH_SPOOL_DIR=spool, SERVEWATCH_PROFILE_INTERVAL="3600", OTEL_METRICS_EXPORTER="none",
                      SERVEWATCH_SPEC=str(spec))
    plain_call, hooked_call = hook_cost(args.batch)
    print(f"hook cost per call (in process, batch {args.batch}): {(hooked_call - plain_call) * 1e6:.1f} us "
          f"({plain_call * 1e6:.1f} us -> {hooked_call * 1e6:.1f} us for PyTriton's adapter and the model)")
    with tempfile.TemporaryDirectory(prefix="servewatch-triton-bench-") as folder, \
            harness.Processes(Path(folder)) as processes:
        detector = harness.start_detector(processes, spec)
        env = harness.serving_environment(detector, spec, {"SERVEWATCH_PROFILE_INTERVAL": "10",
                                                           "OTEL_METRIC_EXPORT_INTERVAL": "10000"})
        plain_app, plain = harness.start_pytriton_app(processes, harness.environment(), instrumented=False,
                                                      name="plain")
        watched_app, watched = harness.start_pytriton_app(processes, env, name="instrumented")
        sides = {"baseline": f"127.0.0.1:{plain.grpc}", "servewatch": f"127.0.0.1:{watched.grpc}"}
        groups = {"baseline": plain_app.popen.pid, "servewatch": watched_app.popen.pid}
        for url in sides.values():                                           # warm-up
            load(url, 2.0, args.concurrency, args.batch, 0)
        results: dict[str, list[tuple[float, float, float, float]]] = {side: [] for side in sides}
        print(f"PyTriton churn model, {args.concurrency} concurrent gRPC clients, batch {args.batch}, "
              f"{args.seconds:g}s per side per round")
        for index in range(args.rounds):
            order = list(sides) if index % 2 == 0 else list(reversed(sides))
            line = []
            for side in order:
                cpu = group_cpu(groups[side])
                throughput, latencies, failed = load(sides[side], args.seconds, args.concurrency, args.batch, index + 1)
                cpu = (group_cpu(groups[side]) - cpu) / max(1, len(latencies))
                if failed:
                    raise SystemExit(f"{side}: {failed} requests failed\n{processes.tails()}")
                p50, p99 = quantile(latencies, 0.5), quantile(latencies, 0.99)
                results[side].append((throughput, p50, p99, cpu))
                line.append(f"{side} {throughput:7.1f} req/s p50 {p50 * 1e3:5.2f} ms p99 {p99 * 1e3:6.2f} ms "
                            f"cpu {cpu * 1e6:4.0f} us/req")
            print(f"round {index + 1}: " + " | ".join(line), flush=True)
        base, ours = results["baseline"], results["servewatch"]
        ratios = [[o[i] / b[i] for b, o in zip(base, ours)] for i in range(4)]
        for i, (name, target, better) in enumerate((("throughput", 0.97, "higher"), ("p50 latency", 1.03, "lower"),
                                                     ("p99 latency", None, "lower"),
                                                     ("server CPU per request", None, "lower"))):
            ratio = statistics.median(ratios[i])
            scale, unit = ((1.0, "req/s") if i == 0 else (1e3, "ms") if i < 3 else (1e6, "us"))
            verdict = "" if target is None else (
                "  [ok]" if (ratio >= target if better == "higher" else ratio <= target) else f"  [MISSES {target}]")
            print(f"{name}: servewatch {statistics.median(o[i] for o in ours) * scale:.2f} vs baseline "
                  f"{statistics.median(b[i] for b in base) * scale:.2f} {unit} -> median ratio {ratio:.3f}{verdict}")


if __name__ == "__main__":
    main()
