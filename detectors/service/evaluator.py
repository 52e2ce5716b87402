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

Verdicts. A column's verdict is its severity (``ok``, ``warning``, ``critical``) or ``unknown``, with one of
:data:`UNKNOWN_REASONS`: ``no_traffic`` (the window holds none of its values, whatever the reference),
``too_few_values`` (fewer than ``min_samples`` in the window or the reference: an ``ok`` there is no promise),
``reference_not_ready`` (the reference is not complete yet, see
:mod:`~servewatch.detectors.service.references`) or ``reference_unavailable`` (it will not become ready on
its own: a file that cannot be read, a range the detector does not hold, a reference without the column). A
window's state (:data:`STATES`) is the worst verdict among its known columns and
model-level rules, ``unknown`` when none is known. A series that stopped receiving profiles keeps being
evaluated (its windows empty, their verdicts ``no_traffic``) for as long as the store holds any of its buckets.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ...profile import Profile
from ...spec import ModelSpec, Spec
from ...spec import Window
from ..report import Report, compare, worst_severity
from .buckets import BucketIndex
from .references import Found, References
from .store import Series, Store
from .windows import Loader, Windows

__all__ = ["Evaluator", "STATES", "UNKNOWN_REASONS", "WindowResult", "format_table"]

STATES = ("ok", "warning", "critical", "unknown")
"""A window's state: its worst known verdict, or unknown."""
UNKNOWN_REASONS = ("no_traffic", "too_few_values", "reference_not_ready", "reference_unavailable")
"""Why a column's verdict is unknown (a bounded label set: ``servewatch_verdict_unknown{reason}``)."""

_log = logging.getLogger("servewatch.detect")


@dataclass(frozen=True)
class WindowResult:
    """The latest evaluation of one (model, signal, window).

    ``samples``: values per column in the window (what ``servewatch_window_samples`` exports); ``report``:
    the comparison with the reference, None while there is none (``reason`` says why); ``unknown``: the
    columns whose verdict is unknown, and why (one of :data:`UNKNOWN_REASONS`).
    """

    model: str
    signal: str
    window: Window
    rows: int
    samples: Mapping[str, int]
    reference: str
    report: Report | None = None
    reason: str | None = None
    evaluated_at: float = 0.0
    signature: Hashable = field(default=None, compare=False, repr=False)
    unknown: Mapping[str, str] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        """The window's state (:data:`STATES`): the worst known verdict, ``unknown`` when none is known."""
        if self.report is None:
            return "unknown"
        known = [column.severity for name, column in self.report.columns.items() if name not in self.unknown]
        known += ["warning" for rule in self.report.rules.values() if rule.violated]
        return worst_severity(known) if known else "unknown"

    def verdict(self, column: str) -> str:
        """The column's verdict: its severity, or ``unknown``."""
        if column in self.unknown or self.report is None or column not in self.report.columns:
            return "unknown"
        return self.report.columns[column].severity

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data: the state, why it is unknown where it is, and the report."""
        result: dict[str, Any] = {"model": self.model, "signal": self.signal, "window": self.window.name,
                                  "rows": self.rows, "state": self.severity, "reference": self.reference}
        if self.reason is not None:
            result["reason"] = self.reason
        result["unknown"] = dict(self.unknown)
        result["samples"] = dict(self.samples)
        if self.report is not None:
            result["report"] = self.report.to_dict()
        return result


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
        if not index and not self.store.index(series.model, series.signal, -math.inf):
            return {}  # nothing left of it in the store: gone, not silent
        loader = Loader(self.store, series.model, series.signal)
        return {(series.model, series.signal, window.name): self._window(series, spec, window, loader, index, now)
                for window in spec.windows}

    def _oldest(self, spec: ModelSpec, window: Window, now: float) -> float:
        offset = spec.reference.offset if spec.reference.kind == "offset" else 0.0
        return now - window.seconds - (offset or 0.0)

    def _window(self, series: Series, spec: ModelSpec, window: Window, loader: Loader,
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
                            report, reference.reason, now, signature,
                            unknown=_unknown(report, reference, samples, spec.min_samples))


def _unknown(report: Report | None, reference: Found, samples: Mapping[str, int],
             min_samples: int) -> dict[str, str]:
    """column -> why its verdict is unknown, for the columns whose verdict is (see the module docstring)."""
    if report is None:  # no traffic says more than the reference's state
        why = "reference_not_ready" if reference.pending else "reference_unavailable"
        return {name: why if count else "no_traffic" for name, count in samples.items()}
    unknown = {}
    for name, column in report.columns.items():
        thin = column.samples < min_samples or column.reference_samples < min_samples
        if column.severity == "unknown" or (thin and column.severity == "ok"):
            unknown[name] = ("no_traffic" if column.samples == 0 else
                             "reference_unavailable" if column.reference_samples == 0 else "too_few_values")
    return unknown


def format_table(results: Iterable[WindowResult]) -> str:
    """A fixed-width table of results, one line per (model, signal, window): its state, worst statistic, drifted
    columns (or why there is no reference) and how many columns are unknown, and why."""
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
            drifted = [name for name in result.report.columns if result.verdict(name) in ("warning", "critical")]
            status = ", ".join(drifted) or "-"
        if result.unknown:
            reasons = sorted(set(result.unknown.values()))
            status += f"; unknown: {len(result.unknown)} columns ({', '.join(reasons)})"
        lines.append([result.model, result.signal, result.window.name, str(result.rows), result.severity, worst,
                      status])
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text)
