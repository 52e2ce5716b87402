"""The drift cases of the ``promtool test rules`` document: every statistic's tiers and timing, per model.

Usage::

    from servewatch.alerts.drift_cases import drift_tests
    from servewatch.alerts.harness import Harness
    from servewatch.monitoring import scopes

    harness = Harness(spec, Config())
    groups = [group for scope in scopes(spec) for group in drift_tests(harness, scope)]

One test group per signal and statistic with a threshold. For every column the statistic applies to, the
detector's gauge is fed at each tier's threshold (both tiers must fire where the value reaches them, ``>=``)
and just below the lowest (nothing may fire), the thresholds read with ``ModelSpec.thresholds_for``; a model
with no listed columns gets one automatic column (feature ``f0``, of unknown type). One more series checks the
timing: nothing fires before ``for``, the alert keeps firing ``keep_firing_for`` after the value drops, and
resolves after. Beside it, the unknown verdict: a series that stops while ``servewatch_verdict_unknown``
says why keeps firing long after ``keep_firing_for`` (the drift is not known to have ended), one that stops
without it resolves like the dropped one; and the noise level: the same value at or below
``servewatch_drift_<statistic>_noise`` fires nothing, above it fires.
"""

from __future__ import annotations

from typing import Any

from servewatch import metrics
from servewatch.metrics import CATEGORICAL_STATISTICS, NUMERIC_STATISTICS, STATISTICS
from servewatch.monitoring import Scope
from servewatch.spec import Column, Threshold

from .harness import SYNTHETIC, Firing, Harness, series

__all__ = ["drift_tests"]

_TIERS = ("warning", "critical")
_ALERTS = (("input", "ServewatchInputDrift"), ("prediction", "ServewatchPredictionDrift"))


def drift_tests(harness: Harness, scope: Scope) -> list[dict[str, Any]]:
    """The drift test groups of ``scope``: inputs, then predictions, each statistic in the spec's order."""
    return [
        _drift_test(harness, scope, signal, alertname, statistic)
        for signal, alertname in _ALERTS
        for statistic in _statistics(scope, signal)
    ]


def _statistics(scope: Scope, signal: str) -> list[str]:
    named = set(scope.model.thresholds) | {s for column in scope.columns(signal) for s in column.thresholds}
    return [s for s in STATISTICS if s in named and any(_applies(s, column) for column in _columns(scope, signal))]


def _columns(scope: Scope, signal: str) -> list[Column | None]:
    """The listed columns, or one automatic column (None: of unknown type) when none are listed."""
    return list(scope.columns(signal)) or [None]


def _drift_test(harness: Harness, scope: Scope, signal: str, alertname: str, statistic: str) -> dict[str, Any]:
    step = harness.step
    hold, keep = harness.hold(scope)
    inputs, constant, timing_case = [], [], None
    base = {
        **harness.job,
        **harness.model_labels(scope),
        "signal": signal,
        "window": scope.model.windows[0].name,
    }
    for column in _columns(scope, signal):
        if not _applies(statistic, column):
            continue
        threshold = (scope.model.thresholds_for(column) if column else scope.model.thresholds).get(statistic)
        labels = {**base, "feature": column.name if column else SYNTHETIC}
        for case, value in _cases(threshold):
            case_labels = {**labels, "case": case}
            tiers = [
                t
                for t in _TIERS
                if threshold and getattr(threshold, t) is not None and value >= getattr(threshold, t)
            ]
            inputs.append(
                {
                    "series": series(metrics.drift(statistic), case_labels),
                    "values": f"{value!r}x{harness.samples(2 * (hold + keep) + 12 * step)}",
                }
            )
            constant += [(case_labels, tier, value) for tier in tiers]
            if case == "top" and timing_case is None and tiers:
                timing_case = (labels, tiers, value)
    evals: list[tuple[float, list[Firing]]] = [(hold - step, [])]
    evals.append((hold + 2 * step, constant))
    if timing_case is not None:
        labels, tiers, value = timing_case
        timed = {**labels, "case": "timing"}
        drop = harness.aligned(hold + 4 * step)
        up = int(drop // step)
        inputs.append(
            {
                "series": series(metrics.drift(statistic), timed),
                "values": f"{value!r}x{up - 1} 0x{harness.samples(keep + 12 * step)}",
            }
        )
        fired = [(timed, tier, value) for tier in tiers]
        later = harness.samples(2 * (hold + keep) + 12 * step)
        metric = metrics.drift(statistic)
        stopped = {}
        for case in ("unknown", "gone"):
            stopped[case] = {**labels, "case": case}
            inputs.append({"series": series(metric, stopped[case]), "values": f"{value!r}x{up - 1} stale _x{later}"})
        inputs.append(
            {
                "series": series(metrics.VERDICT_UNKNOWN, {**stopped["unknown"], "reason": "no_traffic"}),
                "values": f"_x{up} 1x{later}",
            }
        )
        for case, noise in (("noisy", value), ("clear", value / 2)):
            noisy = {**labels, "case": case}
            inputs.append({"series": series(metric, noisy), "values": f"{value!r}x{later}"})
            inputs.append({"series": series(f"{metric}_noise", noisy), "values": f"{noise!r}x{later}"})
        clear = [({**labels, "case": "clear"}, tier, value) for tier in tiers]
        held = [(stopped["unknown"], tier, value) for tier in tiers]
        gone = [(stopped["gone"], tier, value) for tier in tiers]
        evals[1] = (hold + 2 * step, constant + fired + held + gone + clear)
        evals.append((drop + keep / 2, constant + fired + held + gone + clear))
        evals.append((drop + keep + 2 * step, constant + held + clear))
        evals.append((drop + 2 * keep + hold, constant + held + clear))
    checks = harness.checks(alertname, evals, {"statistic": statistic})
    return harness.group(f"{alertname} {statistic} of {scope.title}", inputs, checks)


def _applies(statistic: str, column: Column | None) -> bool:
    if column is None:
        return True
    return statistic in (NUMERIC_STATISTICS if column.is_numeric else CATEGORICAL_STATISTICS)


def _cases(threshold: Threshold | None) -> list[tuple[str, float]]:
    """Values to feed: each tier's threshold exactly, and just below the lowest (or far above: no tier)."""
    if threshold is None:
        return [("none", 1.0)]
    levels = sorted({v for v in (threshold.warning, threshold.critical) if v is not None})
    cases = [("top" if level == levels[-1] else "low", level) for level in levels]
    if levels[0] > 0:
        cases.append(("below", levels[0] - max(levels[0] * 0.01, 1e-9)))
    return cases
