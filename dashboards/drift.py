"""Panels of a model's inputs and predictions: drift statistics against the spec's thresholds, data quality.

Usage::

    from servewatch.dashboards.drift import column_panels, signal_panels

    Row("Inputs", signal_panels(scope, "input"))
    Row("Input drift by feature", column_panels(scope, "input"), collapsed=True)

Each listed column gets one time series per statistic that has a threshold for it (the column's own
thresholds over the model's, :meth:`ModelSpec.thresholds_for`), one line per window, the warning and
critical levels drawn dashed: the values ``servewatch alerts`` writes into the rules, and beside each
statistic the level sampling noise alone reaches at the window's counts (below it the statistic decides
nothing). A model without listed columns (automatic columns) gets one panel per statistic with a line per
feature, at the model's levels. The signal's overview: a table of the current statistics per column with
their noise levels, the state of each window over time (ok, warning, critical or unknown), a heat map of
drift severity across columns over time (a gap: the verdict is unknown), the quality ratios and the rule
violations.
"""

from __future__ import annotations

from servewatch import metrics
from servewatch.metrics import CATEGORICAL_STATISTICS, NUMERIC_STATISTICS, STATISTIC_NAMES
from servewatch.monitoring import Matcher, Scope, selector, statistics_of

from .panel import Panel, Step, Target, tiers

__all__ = ["SEVERITY_MAPPINGS", "STATE_MAPPINGS", "column_panels", "quality_panels", "signal_panels"]

SEVERITY_MAPPINGS = ((0.0, "ok", "green"), (1.0, "warning", "orange"), (2.0, "critical", "red"))
"""``servewatch_drift_severity`` values as Grafana shows them."""
STATE_MAPPINGS = (*SEVERITY_MAPPINGS, (3.0, "unknown", "text"))
"""The window states (``servewatch_window_state``, coded 0 to 3 by the state panel's query)."""
_STATES = ("warning", "critical", "unknown")
_NOUN = {"input": "feature", "prediction": "prediction"}
_ALERT = {"input": "ServewatchInputDrift", "prediction": "ServewatchPredictionDrift"}
_FEATURES = Matcher("=~", "$feature")


def _metric(statistic: str, signal: str, feature: str | Matcher, window: str | None = None) -> str:
    return selector(
        metrics.drift(statistic), model="$model", signal=signal, feature=feature, window=window
    )


def _state(signal: str) -> str:
    """The window state coded 0 ok, 1 warning, 2 critical, 3 unknown, per window (one state is 1 at a time)."""
    parts = [
        f"{code} * max by (window) "
        f"({selector(metrics.WINDOW_STATE, model='$model', signal=signal, state=state)})"
        for code, state in enumerate(_STATES, 1)
    ]
    return "\n+ ".join(parts)


def column_panels(scope: Scope, signal: str) -> tuple[Panel, ...]:
    """One panel per column and statistic (listed columns), or per statistic (automatic columns)."""
    panels = []
    columns = scope.columns(signal)
    for column in columns:
        levels = scope.model.thresholds_for(column)
        applicable = NUMERIC_STATISTICS if column.is_numeric else CATEGORICAL_STATISTICS
        for statistic in (s for s in statistics_of(scope, signal) if s in applicable and s in levels):
            level = levels[statistic]
            targets = [
                Target(_metric(statistic, signal, column.name), "{{window}}"),
                Target(_metric(f"{statistic}_noise", signal, column.name), "{{window}} noise level"),
            ]
            if statistic == "ks":
                targets.append(
                    Target(
                        selector(
                            metrics.DRIFT_KS_BOUND, model="$model", signal=signal, feature=column.name
                        ),
                        "{{window}} sketch error bound",
                    )
                )
            panels.append(
                Panel(
                    f"{column.name} · {STATISTIC_NAMES[statistic]}",
                    f"{STATISTIC_NAMES[statistic]} of {_NOUN[signal]} {column.name} against the reference, "
                    f"per window, and the level sampling noise alone reaches (below it the statistic "
                    f"decides nothing). Dashed lines: warning {_level(level.warning)} and critical "
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
                    f"{STATISTIC_NAMES[statistic]} of each {_NOUN[signal]} over the $window window, and "
                    "the level sampling noise alone reaches. Dashed "
                    f"lines: warning {_level(level.warning)} and critical {_level(level.critical)} "
                    f"({_ALERT[signal]}).",
                    "none",
                    (
                        Target(_metric(statistic, signal, _FEATURES, "$window"), "{{feature}}"),
                        Target(
                            _metric(f"{statistic}_noise", signal, _FEATURES, "$window"),
                            "{{feature}} noise level",
                        ),
                    ),
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
    shown = [name for s in statistics for name in (s, f"{s}_noise")]
    table = Panel(
        f"Current drift by {noun}",
        f"Latest value of each statistic per {noun} over the $window window, the level sampling noise alone "
        "reaches at its counts (below it the statistic decides nothing), and "
        "the severity the detector derives from the spec's thresholds (empty while the verdict is unknown).",
        "none",
        tuple(Target(_metric(s, signal, _FEATURES, "$window"), instant=True) for s in shown)
        + (Target(_metric("severity", signal, _FEATURES, "$window"), instant=True),),
        kind="table",
        width=12,
        height=9,
        columns=tuple(
            name for s in statistics for name in (STATISTIC_NAMES[s], f"{STATISTIC_NAMES[s]} noise")
        )
        + ("severity",),
        mappings=SEVERITY_MAPPINGS,
        thresholds=tiers(1.0, 2.0),
    )
    state = Panel(
        "Window state",
        f"State of each window of the {signal} over time: its worst known verdict, or unknown (no traffic, "
        "too few values, reference not ready: the drift alerts hold their last value meanwhile).",
        "none",
        (Target(_state(signal), "{{window}}"),),
        kind="state-timeline",
        mappings=STATE_MAPPINGS,
        width=12,
        height=9,
    )
    heatmap = Panel(
        f"Drift severity across {noun}s",
        f"Severity per {noun} over time, $window window: 0 ok, 1 warning, "
        "2 critical (the detector's, from the spec's thresholds); a gap while the verdict is unknown.",
        "none",
        (Target(f"max by (feature) ({_metric('severity', signal, _FEATURES, '$window')})", "{{feature}}"),),
        kind="heatmap",
        width=12,
        height=9,
    )
    return (table, state, heatmap, *quality_panels(scope, signal))


def quality_panels(scope: Scope, signal: str) -> tuple[Panel, ...]:
    """Missing, out-of-range and new-category ratios per column; rule violations over time."""
    noun = _NOUN[signal]

    def ratio(metric: str) -> Target:
        return Target(
            selector(
                metrics.quality(metric),
                model="$model",
                signal=signal,
                feature=_FEATURES,
                window="$window",
            ),
            "{{feature}}",
        )

    violated = selector(
        metrics.QUALITY_RULE_VIOLATED, model="$model", signal=signal, feature=_FEATURES, window="$window"
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
