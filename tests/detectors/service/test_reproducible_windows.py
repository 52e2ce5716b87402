"""The same stored profiles give the same window statistics: in two detectors, and after a restart."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from servewatch.detectors.service import Layout, Store
from servewatch.detectors.service.evaluator import Evaluator, WindowResult

from servewatch.profile import Profile
from servewatch.spec import Spec

T0 = 1_700_002_800.0


def _statistics(results: dict[tuple[str, str, str], WindowResult]) -> dict[tuple[object, ...], float | None]:
    found: dict[tuple[object, ...], float | None] = {}
    for key, result in results.items():
        if result.report is not None:
            for name, column in result.report.columns.items():
                for statistic, value in column.statistics.items():
                    found[(*key, name, statistic)] = value.value
    return found


def test_window_statistics_depend_only_on_the_stored_profiles(tmp_path: Path, spec: Spec,
                                                               profile: Callable[..., Profile]) -> None:
    stores = [Store(tmp_path / name, Layout(1.0, 3600.0)) for name in ("a", "b")]
    running = Evaluator(spec, stores[0])  # evaluates as the data comes: its windows are merged incrementally
    for second in range(1, 60):
        batch = [profile(end=T0 + second, rows=300, seed=second, sequence=second, shift=0.4 * (second > 30)),
                 profile(signal="prediction", end=T0 + second, rows=300, seed=second, sequence=second)]
        for store in stores:
            store.write(batch, now=T0 + second + 0.2)
            if second % 3 == 0:
                store.maintain(T0 + second + 0.5)
        if second % 3 == 0:
            running.evaluate(T0 + second + 0.5)
    now = T0 + 59.5
    live = _statistics(running.evaluate(now))
    restarted = _statistics(Evaluator(spec, stores[0]).evaluate(now))  # fresh caches: every window merged anew
    elsewhere = _statistics(Evaluator(spec, stores[1]).evaluate(now))
    assert len(live) >= 40 and any(value for value in live.values())
    assert live == restarted == elsewhere
    for store in stores:
        store.close()
