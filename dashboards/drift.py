"""Panels of a model's inputs and predictions: drift statistics against the spec's thresholds, data quality.

Usage::

    from servewatch.dashboards.drift import column_panels, signal_panels

    Row("Inputs", signal_panels(scope, "input"))
    Row("Input drift by feature", column_panels(scope, "input"), collapsed=True)

Each listed column gets one time series per statistic that has a threshold for it (the column's own
thresholds over the model's, :meth:`ModelSpec.thresholds_for`), one line per window, the warning and
critical levels drawn dashed: the values ``servewatch alerts`` writes into the rules. A model without listed
columns (automatic columns) gets one panel per statistic with a line per feature, at the model's levels.
The signal's overview: a table of the current statistics per column, a heat map of drift severity across
columns over time, the quality ratios and the rule violations.
"""

from __future__ import annotations

from servewatch.alerts.drift import STATISTIC_NAMES, statistics_of
from servewatch.alerts.promql import Matcher, selector
from servewatch.alerts.scope import Scope

from servewatch.spec import CATEGORICAL_STATISTICS, NUMERIC_STATISTICS

from .panel import Panel, Step, Target, tiers

__all__ = ["SEVERITY_MAPPINGS", "column_panels", "quality_panels", "signal_panels"]

SEVERITY_MAPPINGS = ((0.0, "ok", "green"), (1.0, "warning", "orange"), (2.0, "critical", "red"))
"""``servewatch_drift_severity`` values as Grafana shows them."""
_NOUN = {"input": "feature", "prediction": "prediction"}
_ALERT = {"input": "ServewatchInputDrift", "prediction": "ServewatchPredictionDrift"}
_FEATURES = Matcher("=~", "$feature")


def _metric(statistic: str, signal: str, feature: str | Matcher, window: str | None = None) -> str:
    return selector(
        f"servewatch_drift_{statistic}", model="$model", signal=signal, feature=feature, window=window
    )


def column_panels(scope: Scope, signal: str) -> tuple[Panel, ...]:
    """One panel per column and statistic (listed columns), or per statistic (automatic columns)."""
    panels = []
    columns = scope.columns(signal)
    for column in columns:
        levels = scope.model.thresholds_for(column)
        applicable = NUMERIC_STATISTICS if column.is_numeric else CATEGORICAL_STATISTICS
        for statistic in (s for s in statistics_of(scope, signal) if s in applicable and s in levels):
            level = levels[statistic]
            targets = [Target(_metric(statistic, signal, column.name), "{{window}}")]
            if statistic == "ks":
                targets.append(
                    Target(
                        selector(
                            "servewatch_drift_ks_bound", model="$model", signal=signal, feature=column.name
                        ),
                        "{{window}} sketch error bound",
                    )
                )
            panels.append(
                Panel(
                    f"{column.name} · {STATISTIC_NAMES[statistic]}",
                    f"{STATISTIC_NAMES[statistic]} of {_NOUN[signal]} {column.name} against the reference, "
                    f"per window. Dashed lines: warning {_level(level.warning)} and critical "
                    f"{_level(level.critical)} "
                    f"({_ALERT[signal]}).",
                    "none",
                    tuple(targets),
                    thresholds=tiers(level.warning, level.critical),
                    min=0,
                )
            )
    if not columns:
        for statistic in statistics_of(scope, signal):
            level = scope.model.thresholds[statistic]
            panels.append(
                Panel(
                    f"{STATISTIC_NAMES[statistic]} by {_NOUN[signal]}",
                    f"{STATISTIC_NAMES[statistic]} of each {_NOUN[signal]} over the $window window. Dashed "
                    f"lines: warning {_level(level.warning)} and critical {_level(level.critical)} "
                    f"({_ALERT[signal]}).",
                    "none",
                    (Target(_metric(statistic, signal, _FEATURES, "$window"), "{{feature}}"),),
                    thresholds=tiers(level.warning, level.critical),
                    min=0,
                )
            )
    return tuple(panels)


def _level(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def signal_panels(scope: Scope, signal: str) -> tuple[Panel, ...]:
    """The table of current drift, the severity heat map, quality ratios and rule violations of ``signal``."""
    statistics = statistics_of(scope, signal)
    noun = _NOUN[signal]
    table = Panel(
        f"Current drift by {noun}",
        f"Latest value of each statistic per {noun} over the $window window, and "
        "the severity the detector derives from the spec's thresholds.",
        "none",
        tuple(Target(_metric(s, signal, _FEATURES, "$window"), instant=True) for s in statistics)
        + (Target(_metric("severity", signal, _FEATURES, "$window"), instant=True),),
        kind="table",
        width=12,
        height=9,
        columns=tuple(STATISTIC_NAMES[s] for s in statistics) + ("severity",),
        mappings=SEVERITY_MAPPINGS,
        thresholds=tiers(1.0, 2.0),
    )
    heatmap = Panel(
        f"Drift severity across {noun}s",
        f"Severity per {noun} over time, $window window: 0 ok, 1 warning, "
        "2 critical (the detector's, from the spec's thresholds).",
        "none",
        (Target(f"max by (feature) ({_metric('severity', signal, _FEATURES, '$window')})", "{{feature}}"),),
        kind="heatmap",
        width=12,
        height=9,
    )
    return (table, heatmap, *quality_panels(scope, signal))


def quality_panels(scope: Scope, signal: str) -> tuple[Panel, ...]:
    """Missing, out-of-range and new-category ratios per column; rule violations over time."""
    noun = _NOUN[signal]

    def ratio(metric: str) -> Target:
        return Target(
            selector(
                f"servewatch_quality_{metric}",
                model="$model",
                signal=signal,
                feature=_FEATURES,
                window="$window",
            ),
            "{{feature}}",
        )

    violated = selector(
        "servewatch_quality_rule_violated", model="$model", signal=signal, feature=_FEATURES, window="$window"
    )
    columns = scope.columns(signal)
    missing = tuple(
        (c.name, _above(c.rules.max_missing_ratio)) for c in columns if c.rules.max_missing_ratio is not None
    )
    ranged = tuple(
        (c.name, _above(c.rules.max_out_of_range_ratio))
        for c in columns
        if c.is_numeric and (c.rules.min is not None or c.rules.max is not None)
    )
    panels = [
        Panel(
            f"Missing values by {noun}",
            f"Share of None/NaN values per {noun}, $window window; a column's "
            "max_missing_ratio colours it (ServewatchMissingValues).",
            "percentunit",
            (ratio("missing_ratio"),),
            overrides=missing,
            min=0,
        ),
        Panel(
            f"Out-of-range values by {noun}",
            f"Share of values outside the spec's [min, max] per {noun}, "
            "$window window (ServewatchValuesOutOfRange).",
            "percentunit",
            (ratio("out_of_range_ratio"),),
            overrides=ranged,
            min=0,
        ),
    ]
    if not columns or any(not c.is_numeric for c in columns):
        panels.append(
            Panel(
                f"New categories by {noun}",
                f"Share of values in categories the reference never saw, "
                f"per categorical {noun}, $window window.",
                "percentunit",
                (ratio("new_category_ratio"),),
                min=0,
            )
        )
    panels.append(
        Panel(
            "Rule violations",
            f"Data-quality rules of each {noun} over time, $window window: violated or ok "
            "(ServewatchDataQualityRuleViolated, ServewatchMissingValues, ServewatchValuesOutOfRange).",
            "none",
            (
                Target(
                    f"max by (feature, rule) ({violated})",
                    "{{feature}} {{rule}}",
                ),
            ),
            kind="state-timeline",
            mappings=((0.0, "ok", "green"), (1.0, "violated", "red")),
            width=8 if len(panels) == 3 else 16,
        )
    )
    return tuple(panels)


def _above(limit: float) -> tuple[Step, ...]:
    """Green up to ``limit``, red above it (the rule is ``ratio > limit``; a limit of 0: red at any value)."""
    return (Step("green", None), Step("red", limit if limit > 0 else 1e-9))
