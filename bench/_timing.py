"""Shared timing helper for the benchmarks: best-of-N wall time, so noisy neighbours inflate both sides alike."""

from __future__ import annotations

import time
from collections.abc import Callable


def best(function: Callable[[], object], repeat: int = 7, number: int = 1) -> float:
    """The fastest of ``repeat`` runs of ``number`` calls, in seconds per call."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            function()
        times.append((time.perf_counter() - start) / number)
    return min(times)


def ratio_line(name: str, ours: float, baseline: float, target: float | None, unit: str = "") -> str:
    ratio = ours / baseline
    verdict = "" if target is None else ("  [ok]" if ratio <= target else f"  [OVER target {target}x]")
    return f"{name}: {ours * 1e9:,.1f} vs {baseline * 1e9:,.1f} ns{unit} -> {ratio:.2f}x{verdict}"
