"""What servewatch's entry points cost every Python process started under ``opentelemetry-instrument``.

    .venv/bin/python bench/instrumentation_startup.py [--runs 15]

TorchServe runs its metric collector in a new interpreter every minute and Ray starts many helper processes;
each loads every ``opentelemetry_instrumentor`` entry point of an installed distribution. Two measurements,
each side by side with its baseline in one run (rounds alternate the candidates, the median is printed):

1. ``opentelemetry-instrument python -c pass`` with the servewatch entry points loaded and instrumented (all
   four, then each alone), against the same with ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` naming all of them:
   the CPU time (user + system) they add to a process that never serves (target: a few milliseconds, no numpy /
   datasketches / OpenTelemetry SDK; numpy alone costs about 0.1 s of CPU, its BLAS starting threads).
2. ``python -c "import <entry module>"`` for each entry-point module, against ``python -c "import opentelemetry
   .instrumentation.instrumentor"`` (what ``opentelemetry-instrument`` has loaded anyway).

Also lists which heavy modules (numpy, datasketches, the OpenTelemetry SDK, the framework packages) the
instrumented no-op process ended up importing: there should be none.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ENTRY_POINTS = ("servewatch_torchserve", "servewatch_pytriton", "servewatch_tritonclient", "servewatch_ray_serve")
ENTRY_MODULES = ("servewatch.instrumentation.torchserve", "servewatch.instrumentation.triton",
                 "servewatch.instrumentation.ray_serve", "servewatch.instrumentation.instrumentor")
HEAVY = ("numpy", "datasketches", "opentelemetry.sdk", "torch", "ts", "ray", "pytriton", "tritonclient", "yaml")
_BIN = Path(sys.executable).parent
_REPORT = ("import sys; heavy = {heavy!r}; "
           "print(','.join(sorted(h for h in heavy if h in sys.modules)))")


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, str]:
    """CPU time (user + system) of one child process, and its standard output."""
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{argv} exited with status {process.returncode}")
    return usage.ru_utime + usage.ru_stime, output.strip()


def median_cpu(candidates: dict[str, tuple[list[str], dict[str, str]]], runs: int) -> dict[str, tuple[float, str]]:
    times: dict[str, list[float]] = {name: [] for name in candidates}
    outputs: dict[str, str] = {}
    for _ in range(runs):
        for name, (argv, env) in candidates.items():
            seconds, outputs[name] = measure(argv, env)
            times[name].append(seconds)
    return {name: (statistics.median(values), outputs[name]) for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="rounds per measurement (default 15)")
    args = parser.parse_args()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "SERVEWATCH_"))}
    env.pop("PYTHONPATH", None)
    report = _REPORT.format(heavy=HEAVY)
    instrument = [str(_BIN / "opentelemetry-instrument"), sys.executable, "-c", report]
    candidates = {"none": (instrument, {**env, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": ",".join(ENTRY_POINTS)}),
                  "all four": (instrument, env)}
    for name in ENTRY_POINTS:
        others = ",".join(other for other in ENTRY_POINTS if other != name)
        candidates[name] = (instrument, {**env, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": others})
    results = median_cpu(candidates, args.runs)
    baseline = results["none"][0]
    print(f"opentelemetry-instrument python -c pass, CPU per process (median of {args.runs}); "
          f"without the servewatch entry points {baseline * 1e3:.1f} ms:")
    for name in candidates:
        if name != "none":
            seconds, heavy = results[name]
            print(f"  {name:25s} loaded: added {(seconds - baseline) * 1e3:6.1f} ms   heavy: {heavy or 'none'}")
    base = [sys.executable, "-c", "import opentelemetry.instrumentation.instrumentor"]
    candidates = {"baseline": (base, env)}
    for module in ENTRY_MODULES:
        candidates[module] = ([sys.executable, "-c", f"import opentelemetry.instrumentation.instrumentor, {module}; "
                               + report], env)
    results = median_cpu(candidates, args.runs)
    reference = results["baseline"][0]
    print(f"python -c 'import <module>', CPU added to 'import opentelemetry.instrumentation.instrumentor' "
          f"({reference * 1e3:.1f} ms):")
    for module in ENTRY_MODULES:
        seconds, heavy = results[module]
        print(f"  {module:45s} {(seconds - reference) * 1e3:6.1f} ms   heavy: {heavy or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
