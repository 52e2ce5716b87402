"""The data cases of the ``promtool test rules`` document: quality limits, window size and staleness, per model.

Usage::

    from servewatch.alerts.harness import Harness
    from servewatch.alerts.quality_cases import quality_test, stale_test
    from servewatch.alerts.scope import scopes

    harness = Harness(spec, Config())
    groups = [test(harness, scope) for scope in scopes(spec) for test in (quality_test, stale_test)]

Each listed column's missing and out-of-range ratios are fed just over their limit (fires) and at it (quiet),
or far above where the column has no limit (quiet); one violated and three kept rules, a window one sample
short of ``min_samples`` and one with enough. Staleness: a model whose profiles stopped arriving at time 0
is quiet at ``stale_after`` and fires ``ServewatchModelProfilesStale`` once the rule's ``for`` has passed too;
one whose profiles keep arriving never fires. Traffic: a model whose shortest window empties (its rows drop
to 0) fires ``ServewatchModelTrafficStopped`` once the rule's ``for`` has passed, one still serving and one
that never had traffic do not.
"""

from __future__ import annotations

from typing import Any

from .harness import SYNTHETIC, Firing, Harness, series
from .scope import Scope

__all__ = ["quality_test", "stale_test", "traffic_test"]


def quality_test(harness: Harness, scope: Scope) -> dict[str, Any]:
    """The data-quality and window-size test group of ``scope``."""
    hold, _ = harness.hold(scope)
    n = harness.samples(hold + 4 * harness.step)
    base = {**harness.job, **harness.model_labels(scope), "window": scope.model.windows[0].name}
    inputs, checks = [], []
    firing: dict[str, list[Firing]] = {
        "ServewatchMissingValues": [],
        "ServewatchValuesOutOfRange": [],
        "ServewatchDataQualityRuleViolated": [],
        "ServewatchWindowTooFewSamples": [],
    }
    for signal in ("input", "prediction"):
        for column in scope.columns(signal):
            labels = {**base, "signal": signal, "feature": column.name}
            ranged = column.is_numeric and (column.rules.min is not None or column.rules.max is not None)
            for alertname, metric, limit in (
                (
                    "ServewatchMissingValues",
                    "servewatch_quality_missing_ratio",
                    column.rules.max_missing_ratio,
                ),
                (
                    "ServewatchValuesOutOfRange",
                    "servewatch_quality_out_of_range_ratio",
                    column.rules.max_out_of_range_ratio if ranged else None,
                ),
            ):
                cases = (
                    [("over", limit + max(0.01, limit / 2)), ("at", limit)]
                    if limit is not None
                    else [("none", 0.5)]
                )
                for case, value in cases:
                    inputs.append({"series": series(metric, {**labels, "case": case}), "values": f"{value!r}x{n}"})
                    if case == "over":
                        firing[alertname].append(({**labels, "case": case}, "warning", value))
    rule_labels = {**base, "signal": "input", "feature": SYNTHETIC}
    for rule, value in (("allowed", 1), ("constant", 0), ("missing", 1), ("range", 1)):
        inputs.append(
            {
                "series": series("servewatch_quality_rule_violated", {**rule_labels, "rule": rule}),
                "values": f"{value}x{n}",
            }
        )
    firing["ServewatchDataQualityRuleViolated"].append(({**rule_labels, "rule": "allowed"}, "warning", 1.0))
    need = scope.model.min_samples
    for case, value in (("thin", need - 1), ("enough", need)):
        labels = {**base, "signal": "input", "feature": SYNTHETIC, "case": case}
        inputs.append({"series": series("servewatch_window_samples", labels), "values": f"{value}x{n}"})
    firing["ServewatchWindowTooFewSamples"].append(
        ({**base, "signal": "input", "feature": SYNTHETIC, "case": "thin"}, "info", float(need - 1))
    )
    for alertname, alerts in firing.items():
        checks += harness.checks(alertname, [(hold - harness.step, []), (hold + 2 * harness.step, alerts)])
    return harness.group(f"data quality of {scope.title}", inputs, checks)


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
            "series": series("servewatch_detector_last_profile_timestamp_seconds", old),
            "values": f"0x{n}",
        },
        {
            "series": series("servewatch_detector_last_profile_timestamp_seconds", fresh),
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
        {"series": series("servewatch_window_rows", {**base, "signal": signal, "case": case}), "values": values}
        for case, values in rows.items()
        for signal in ("input", "prediction")
    ]
    stopped = {**base, "case": "stopped"}
    evals = [(stop + hold - step, []), (stop + hold + 2 * step, [(stopped, "critical", 0.0)])]
    checks = harness.checks("ServewatchModelTrafficStopped", evals)
    return harness.group(f"traffic of {scope.title} stops", inputs, checks)
