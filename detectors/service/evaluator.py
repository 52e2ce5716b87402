"""One evaluation of every window of every model and signal the store holds, against its reference.

Usage::

    evaluator = Evaluator(spec, store)
    results = evaluator.evaluate(now=time.time())      # {(model, signal, window): WindowResult}
    print(format_table(results.values()))

For each (model, signal) with data and each window of its spec, the window's buckets are merged
(:mod:`~servewatch.detectors.service.windows`), its reference resolved
(:mod:`~servewatch.detectors.service.references`) and the two compared with
:func:`servewatch.detectors.compare` (statistics, rules, severities; ``window_seconds`` turns on the volume
rule). A window whose buckets and reference did not change since the last evaluation keeps its report (its
``evaluated_at`` moves on).
Without a reference yet, a window gets its sample counts only.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from ...profile import Profile
from ...spec import ModelSpec, Spec
from ...spec import Window as WindowSpec
from ..report import Report, compare
from .buckets import BucketIndex
from .references import References
from .store import Series, Store
from .windows import Loader, Windows

__all__ = ["Evaluator", "WindowResult", "format_table"]

_log = logging.getLogger("servewatch.detect")


@dataclass(frozen=True)
class WindowResult:
    """The latest evaluation of one (model, signal, window).

    ``samples``: values per column in the window (what ``servewatch_window_samples`` exports); ``report``:
    the comparison with the reference, None while there is none (``reason`` says why).
    """

    model: str
    signal: str
    window: WindowSpec
    rows: int
    samples: Mapping[str, int]
    reference: str
    report: Report | None = None
    reason: str | None = None
    evaluated_at: float = 0.0
    signature: Hashable = field(default=None, compare=False, repr=False)

    @property
    def severity(self) -> str:
        return self.report.severity if self.report is not None else "ok"


class Evaluator:
    """Evaluates the windows of a store's series under ``spec``; keeps what it needs between runs."""

    def __init__(self, spec: Spec, store: Store) -> None:
        self.spec = spec
        self.store = store
        self.windows = Windows(store)
        self.references = References(store, self.windows)
        self._last: dict[tuple[str, str, str], WindowResult] = {}
        self.compared = 0
        """Comparisons actually computed (the rest reused an unchanged result)."""

    def evaluate(self, now: float) -> dict[tuple[str, str, str], WindowResult]:
        """Merge sealed buckets upwards (:meth:`Store.maintain`: the windows rely on it), then evaluate
        everything at ``now``. A model whose roll-up or evaluation fails is recorded in the store's
        ``failures`` (counted, logged once, tried again next time) and has no results until it works again
        (its gauges go away rather than stand still); a maintenance failure of the whole store (disk full)
        is recorded too, and the windows are evaluated on what the store holds."""
        failures = self.store.failures
        try:
            self.store.maintain(now)
            failures.clear("maintain", "", "")
        except Exception as error:
            failures.record("maintain", "", "", error)
        results: dict[tuple[str, str, str], WindowResult] = {}
        for series in self.store.series():
            try:
                results.update(self._series(series, now))
                failures.clear("evaluate", series.model, series.signal)
            except Exception as error:  # one series' trouble must not stop the others' evaluation
                failures.record("evaluate", series.model, series.signal, error)
        self.windows.sweep()
        self._last = results
        return results

    def _series(self, series: Series, now: float) -> dict[tuple[str, str, str], WindowResult]:
        spec = self.spec.model(series.model)
        since = min(self._oldest(spec, window, now) for window in spec.windows)
        index = self.store.index(series.model, series.signal, since - self.store.layout.tiers[-1].size)
        if not index:
            return {}
        loader = Loader(self.store, series.model, series.signal)
        return {(series.model, series.signal, window.name): self._window(series, spec, window, loader, index, now)
                for window in spec.windows}

    def _oldest(self, spec: ModelSpec, window: WindowSpec, now: float) -> float:
        offset = spec.reference.offset if spec.reference.kind == "offset" else 0.0
        return now - window.seconds - (offset or 0.0)

    def _window(self, series: Series, spec: ModelSpec, window: WindowSpec, loader: Loader,
                index: BucketIndex, now: float) -> WindowResult:
        name = (series.model, series.signal, window.name)
        current = self.windows.profile(name, loader, index, now - window.seconds, now, now)
        reference = self.references.get(series, spec, window, loader, index, now)
        signature = (current.signature, reference.token, reference.reason)
        previous = self._last.get(name)
        if previous is not None and previous.signature == signature and previous.window == window:
            return replace(previous, evaluated_at=now)
        profile = current.profile if current.profile is not None else Profile(series.model, series.signal)
        report = None
        if reference.profile is not None:
            report = compare(reference.profile, profile, spec, window_seconds=window.seconds)
            self.compared += 1
            samples = {column: result.samples for column, result in report.columns.items()}
        else:
            names = [column.name for column in spec.columns(series.signal)] or list(profile.columns)
            samples = {column: profile.columns[column].valid if column in profile.columns else 0
                       for column in names}
        return WindowResult(series.model, series.signal, window, profile.rows, samples, reference.description,
                            report, reference.reason, now, signature)


def format_table(results: Iterable[WindowResult]) -> str:
    """A fixed-width table of results, one line per (model, signal, window), worst statistic first."""
    results = list(results)
    if not results:
        return "no profiles stored yet"
    header = ["model", "signal", "window", "rows", "severity", "worst", "drifted / status"]
    lines = [header]
    for result in sorted(results, key=lambda r: (r.model, r.signal, r.window.seconds)):
        worst, status = "", result.reason or ""
        if result.report is not None:
            stats = [(stat.value, f"{column}.{stat.name}") for column, report in result.report.columns.items()
                     for stat in report.statistics.values() if stat.name in ("ks", "linf") and stat.value is not None]
            if stats:
                value, label = max(stats)
                worst = f"{label}={value:.3f}"
            status = ", ".join(result.report.drifted) or "-"
        lines.append([result.model, result.signal, result.window.name, str(result.rows), result.severity, worst,
                      status])
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text)
