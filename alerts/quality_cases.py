"""The data cases of the ``promtool test rules`` document: quality limits, window size and staleness, per model.

Usage::

    from servewatch.alerts.harness import Harness
    from servewatch.alerts.quality_cases import quality_test, stale_test
    from servewatch.monitoring import scopes

    harness = Harness(spec, Config())
    groups = [test(harness, scope) for scope in scopes(spec) for test in (quality_test, stale_test)]

Each listed column's missing and out-of-range ratios are fed just over their limit with the detector's rule
violated (fires), at the limit (quiet), over it with the rule kept (quiet: the detector's bound found a few
values' ratio no violation), or far above where the column has no limit (quiet); one violated and three kept
rules, a window one sample short of ``min_samples`` and one with enough. A ratio and a violated rule whose
series stop while ``servewatch_verdict_unknown`` says why keep firing past ``keep_firing_for``. Staleness: a model whose profiles stopped arriving at time 0
is quiet at ``stale_after`` and fires ``ServewatchModelProfilesStale`` once the rule's ``for`` has passed too;
one whose profiles keep arriving never fires. Traffic: a model whose shortest window empties (its rows drop
to 0) fires ``ServewatchModelTrafficStopped`` once the rule's ``for`` has passed, one still serving and one
that never had traffic do not.
"""

from __future__ import annotations

from typing import Any

from servewatch import metrics
from servewatch.monitoring import Scope

from .harness import SYNTHETIC, Firing, Harness, series

__all__ = ["quality_test", "stale_test", "traffic_test"]


def quality_test(harness: Harness, scope: Scope) -> dict[str, Any]:
    """The data-quality and window-size test group of ``scope``."""
    hold, keep = harness.hold(scope)
    step = harness.step
    drop = harness.aligned(hold + 4 * step)
    up = int(drop // step)
    n = harness.samples(drop + keep + 4 * step)
    base = {**harness.job, **harness.model_labels(scope), "window": scope.model.windows[0].name}
    inputs: list[dict[str, str]] = []
    firing: dict[str, list[Firing]] = {
        "ServewatchMissingValues": [],
        "ServewatchValuesOutOfRange": [],
        "ServewatchDataQualityRuleViolated": [],
        "ServewatchWindowTooFewSamples": [],
    }
    held: dict[str, list[Firing]] = {name: [] for name in firing}

    def stopping(labels: dict[str, str], metric: str, value: float) -> None:
        """A series that stops at ``drop`` while the column's verdict turns unknown."""
        inputs.append({"series": series(metric, labels), "values": f"{value!r}x{up - 1} stale _x{n}"})

    for signal in ("input", "prediction"):
        for column in scope.columns(signal):
            labels = {**base, "signal": signal, "feature": column.name}
            ranged = column.is_numeric and (column.rules.min is not None or column.rules.max is not None)
            for alertname, metric, rule, limit in (
                (
                    "ServewatchMissingValues",
                    metrics.quality("missing_ratio"),
                    "missing",
                    column.rules.max_missing_ratio,
                ),
                (
                    "ServewatchValuesOutOfRange",
                    metrics.quality("out_of_range_ratio"),
                    "range",
                    column.rules.max_out_of_range_ratio if ranged else None,
                ),
            ):
                if limit is None:
                    inputs.append({"series": series(metric, {**labels, "case": "none"}), "values": f"0.5x{n}"})
                    continue
                over = limit + max(0.01, limit / 2)
                # the detector's rule decides (its bound on a few values); the ratio says how much
                for case, value, violated in (("over", over, 1), ("at", limit, 0), ("noise", over, 0)):
                    case_labels = {**labels, "case": case}
                    inputs.append({"series": series(metric, case_labels), "values": f"{value!r}x{n}"})
                    inputs.append(
                        {
                            "series": series(metrics.QUALITY_RULE_VIOLATED, {**case_labels, "rule": rule}),
                            "values": f"{violated}x{n}",
                        }
                    )
                    if violated:
                        firing[alertname].append((case_labels, "warning", value))
                if not held[alertname]:
                    unknown = {**labels, "case": "unknown"}
                    stopping(unknown, metric, over)
                    stopping({**unknown, "rule": rule}, metrics.QUALITY_RULE_VIOLATED, 1.0)
                    _unknown(inputs, unknown, up, n)
                    held[alertname].append((unknown, "warning", over))
    rule_labels = {**base, "signal": "input", "feature": SYNTHETIC}
    for rule, value in (("allowed", 1), ("constant", 0), ("missing", 1), ("range", 1)):
        inputs.append(
            {
                "series": series(metrics.QUALITY_RULE_VIOLATED, {**rule_labels, "rule": rule}),
                "values": f"{value}x{n}",
            }
        )
    firing["ServewatchDataQualityRuleViolated"].append(({**rule_labels, "rule": "allowed"}, "warning", 1.0))
    unknown = {**rule_labels, "case": "unknown"}
    stopping({**unknown, "rule": "allowed"}, metrics.QUALITY_RULE_VIOLATED, 1.0)
    _unknown(inputs, unknown, up, n)
    held["ServewatchDataQualityRuleViolated"].append(({**unknown, "rule": "allowed"}, "warning", 1.0))
    need = scope.model.min_samples
    for case, value in (("thin", need - 1), ("enough", need)):
        labels = {**base, "signal": "input", "feature": SYNTHETIC, "case": case}
        inputs.append({"series": series(metrics.WINDOW_SAMPLES, labels), "values": f"{value}x{n}"})
    firing["ServewatchWindowTooFewSamples"].append(
        ({**base, "signal": "input", "feature": SYNTHETIC, "case": "thin"}, "info", float(need - 1))
    )
    checks = []
    for alertname, alerts in firing.items():
        evals = [(hold - step, []), (hold + 2 * step, alerts + held[alertname])]
        if held[alertname]:  # long after they stopped, the series whose verdict is unknown still fire
            evals.append((drop + keep + 2 * step, alerts + held[alertname]))
        checks += harness.checks(alertname, evals)
    return harness.group(f"data quality of {scope.title}", inputs, checks)


def _unknown(inputs: list[dict[str, str]], labels: dict[str, str], up: int, n: int) -> None:
    """``servewatch_verdict_unknown`` of ``labels``' column from sample ``up`` on."""
    unknown = {**labels, "reason": "no_traffic"}
    inputs.append({"series": series(metrics.VERDICT_UNKNOWN, unknown), "values": f"_x{up} 1x{n}"})


def stale_test(harness: Harness, scope: Scope) -> dict[str, Any]:
    """The test group of ``scope``'s profiles that stop arriving."""
    hold, _ = harness.hold(scope)
    stale = harness.timing.stale_after(scope.model)
    when = stale + hold + 3 * harness.step
    n = harness.samples(when + harness.step)
    old = {**harness.job, **harness.model_labels(scope), "case": "stopped"}
    fresh = {**harness.job, **harness.model_labels(scope), "case": "arriving"}
    inputs = [
        {
            "series": series(metrics.LAST_PROFILE_TIMESTAMP, old),
            "values": f"0x{n}",
        },
        {
            "series": series(metrics.LAST_PROFILE_TIMESTAMP, fresh),
            "values": f"0+{harness.step!r}x{n}",
        },
    ]
    evals = [(stale, []), (when, [(old, "warning", harness.aligned(when))])]
    checks = harness.checks("ServewatchModelProfilesStale", evals)
    return harness.group(f"profiles of {scope.title} stop arriving", inputs, checks)


def traffic_test(harness: Harness, scope: Scope) -> dict[str, Any]:
    """The test group of ``scope``'s traffic that stops."""
    hold, _ = harness.hold(scope)
    step = harness.step
    stop = harness.aligned(hold)
    n = harness.samples(stop + 2 * hold + 4 * step)
    shortest = min(scope.model.windows, key=lambda window: window.seconds).name
    base = {**harness.job, **harness.model_labels(scope), "window": shortest}
    rows = {"stopped": f"100x{int(stop // step) - 1} 0x{n}", "serving": f"100x{n}", "idle": f"0x{n}"}
    inputs = [
        {"series": series(metrics.WINDOW_ROWS, {**base, "signal": signal, "case": case}), "values": values}
        for case, values in rows.items()
        for signal in ("input", "prediction")
    ]
    stopped = {**base, "case": "stopped"}
    evals = [(stop + hold - step, []), (stop + hold + 2 * step, [(stopped, "critical", 0.0)])]
    checks = harness.checks("ServewatchModelTrafficStopped", evals)
    return harness.group(f"traffic of {scope.title} stops", inputs, checks)
