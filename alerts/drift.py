"""Drift and data-quality alerts of one model (or of the unlisted ones), from the spec's thresholds and rules.

Usage::

    from servewatch.alerts.drift import drift_alerts, quality_alerts, threshold_clauses

    for alert in drift_alerts(scope, timing):
        print(alert.name, alert.severity, alert.expr)

One alert name per signal, ``ServewatchInputDrift`` and ``ServewatchPredictionDrift``, with a rule per
statistic, tier and threshold value: labels ``statistic`` and ``severity`` tell them apart. A rule covers the
columns sharing one threshold value: the model-level value for every column that does not override it, one
rule per distinct column override; the comparison is ``>=``, as the detector's own severity. Data quality:
``ServewatchMissingValues`` and ``ServewatchValuesOutOfRange`` carry the ratio against each column's limit
(``max_missing_ratio``, ``max_out_of_range_ratio`` where ``min``/``max`` are set);
``ServewatchDataQualityRuleViolated`` covers the other rules the detector checks (invalid, allowed,
new_category, constant, volume); ``ServewatchWindowTooFewSamples`` (info) says a window has too few values
for drift statistics. ``for`` and ``keep_firing_for`` come from :class:`~servewatch.alerts.config.Timing`.

The drift and data-quality alerts read a recording rule per gauge, :func:`held`
(``feature:servewatch_drift_ks:held``), not the gauge itself: what the detector decided on, and while the
column's verdict is unknown (``servewatch_verdict_unknown``: no traffic, too few values, no reference) its
last such value. Decided on: a statistic above the level sampling noise alone reaches
(``servewatch_drift_<statistic>_noise``, where the detector exports one); a missing or out-of-range ratio
where the detector finds its rule violated (``servewatch_quality_rule_violated``: a ratio of a handful of
values over its limit is not a violation); a rule's own 0/1. So an alert does not resolve because traffic
stopped; it resolves once a known verdict says the drift ended (or the column is gone). The rule holds by
reading its own previous value, so the hold lasts as long as the verdict stays unknown and the rule keeps
being evaluated (within Prometheus' lookback of five minutes).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypedDict

from servewatch import metrics
from servewatch.metrics import CATEGORICAL_STATISTICS, NUMERIC_STATISTICS, STATISTIC_NAMES
from servewatch.monitoring import Matcher, Scope, Timing, none_of, one_of, selector, statistics_of
from servewatch.spec import Column

from .rule import Alert, Recording

__all__ = [
    "DRIFT_ALERTS",
    "RATIO_RULES",
    "Clause",
    "drift_alerts",
    "held",
    "held_records",
    "quality_alerts",
    "threshold_clauses",
]

DRIFT_ALERTS = {"input": "ServewatchInputDrift", "prediction": "ServewatchPredictionDrift"}
_NOUN = {"input": "input feature", "prediction": "prediction"}
_SUMMARY = {
    "input": "An input feature's distribution drifted away from the reference.",
    "prediction": "A prediction's distribution drifted away from the reference.",
}

RATIO_RULES = {
    "missing": ("ServewatchMissingValues", metrics.quality("missing_ratio")),
    "range": ("ServewatchValuesOutOfRange", metrics.quality("out_of_range_ratio")),
}
"""Rules alerted on with their own ratio (the rest go through ``servewatch_quality_rule_violated``)."""


@dataclass(frozen=True)
class Clause:
    """A set of columns of one signal sharing one threshold value (``features`` None: every column that
    does not override it; ``excluded`` lists those)."""

    signal: str
    value: float
    features: tuple[str, ...] | None = None
    excluded: tuple[str, ...] = ()

    def feature_matcher(self) -> str | Matcher | None:
        if self.features is not None:
            return one_of(self.features)
        return none_of(self.excluded) if self.excluded else None


def threshold_clauses(scope: Scope, signal: str, statistic: str, tier: str) -> list[Clause]:
    """The threshold values of one statistic and tier (``warning``/``critical``) over ``signal``'s columns."""
    overrides: dict[float | None, list[str]] = defaultdict(list)
    for column in scope.columns(signal):
        if statistic in column.thresholds and _applies(statistic, column):
            overrides[getattr(column.thresholds[statistic], tier)].append(column.name)
    overridden = tuple(sorted(name for names in overrides.values() for name in names))
    clauses = []
    model_level = scope.model.thresholds.get(statistic)
    if model_level is not None and getattr(model_level, tier) is not None:
        clauses.append(Clause(signal, getattr(model_level, tier), excluded=overridden))
    for value in sorted(value for value in overrides if value is not None):
        clauses.append(Clause(signal, value, features=tuple(sorted(overrides[value]))))
    return clauses


def held(metric: str) -> str:
    """The recording rule the alerts read for the detector's gauge ``metric`` (see the module docstring)."""
    return f"feature:{metric}:held"


def held_records(alerts: Iterable[Alert]) -> list[Recording]:
    """The :func:`held` recording rule of every gauge ``alerts`` read held, in order of first use."""
    held_pattern = re.escape(held("@")).replace("@", r"(\w+)")
    gauges = dict.fromkeys(m for alert in alerts for m in re.findall(held_pattern, alert.expr))
    records = []
    for metric in gauges:
        rule = next((r for r, (_, ratio) in RATIO_RULES.items() if ratio == metric), None)
        if metric.startswith(metrics.drift("")):
            known = f"{metric}\n  unless\n  {metric} <= {metric}_noise"
        elif rule is not None:
            violated = selector(metrics.QUALITY_RULE_VIOLATED, rule=rule)
            known = f"{metric}\n  and ignoring (rule)\n  {violated} == 1"
        else:
            known = metric
        kept = f"{held(metric)}\n  and ignoring (reason, rule)\n  {metrics.VERDICT_UNKNOWN} == 1"
        records.append(Recording(held(metric), f"(\n  {known}\n)\nor\n(\n  {kept}\n)"))
    return records


def drift_alerts(scope: Scope, timing: Timing) -> list[Alert]:
    """Warning and critical drift alerts of every statistic with a threshold, for both signals."""
    alerts = []
    for signal, name in DRIFT_ALERTS.items():
        for statistic in statistics_of(scope, signal):
            for tier in ("warning", "critical"):
                clauses = threshold_clauses(scope, signal, statistic, tier)
                if not clauses:
                    continue
                metric = held(metrics.drift(statistic))
                expr = _union(
                    f"{selector(metric, model=scope.label, signal=signal, feature=c.feature_matcher())} "
                    f">= {c.value:g}"
                    for c in clauses
                )
                alerts.append(
                    Alert(
                        name,
                        expr,
                        tier,
                        _SUMMARY[signal],
                        f"{STATISTIC_NAMES[statistic]} of {_NOUN[signal]} {{{{ $labels.feature }}}} of model "
                        f"{{{{ $labels.model }}}} over the {{{{ $labels.window }}}} window is "
                        f'{{{{ printf "%.3g" $value }}}}, at or above its {tier} threshold '
                        f"{_limits(clauses)}.",
                        for_=timing.drift_for(scope.model),
                        keep_firing_for=timing.drift_keep_firing(scope.model),
                        labels={"statistic": statistic, **scope.labels},
                    )
                )
    return alerts


class _Timed(TypedDict):
    """The timing arguments every quality alert of one scope shares."""

    for_: float
    keep_firing_for: float
    labels: Mapping[str, str]


def quality_alerts(scope: Scope, timing: Timing) -> list[Alert]:
    """Missing and out-of-range ratios over their limits, other violated rules, and thin windows."""
    timed: _Timed = {
        "for_": timing.drift_for(scope.model),
        "keep_firing_for": timing.drift_keep_firing(scope.model),
        "labels": scope.labels,
    }
    alerts = []
    for rule, (name, metric) in RATIO_RULES.items():
        clauses = [
            clause for signal in ("input", "prediction") for clause in _ratio_clauses(scope, signal, rule)
        ]
        if not clauses:
            continue
        expr = _union(
            f"{selector(held(metric), model=scope.label, signal=c.signal, feature=c.feature_matcher())} "
            f"> {c.value:g}"
            for c in clauses
        )
        what = "missing" if rule == "missing" else "out of range"
        alerts.append(
            Alert(
                name,
                expr,
                "warning",
                "Values of a column are missing more often than its rules allow."
                if rule == "missing"
                else "Values of a column fall outside the range its rules allow more often than allowed.",
                f"{{{{ $value | humanizePercentage }}}} of the values of {{{{ $labels.signal }}}} column "
                f"{{{{ $labels.feature }}}} of model {{{{ $labels.model }}}} are {what} over the "
                f"{{{{ $labels.window }}}} window; the spec allows {_limits(clauses)}.",
                **timed,
            )
        )
    violated = selector(held(metrics.QUALITY_RULE_VIOLATED), model=scope.label, rule=none_of(RATIO_RULES))
    alerts.append(
        Alert(
            "ServewatchDataQualityRuleViolated",
            f"{violated} == 1",
            "warning",
            "A data-quality rule of the spec is violated.",
            "Rule {{ $labels.rule }} is violated for {{ $labels.signal }} column {{ $labels.feature }} of "
            "model "
            "{{ $labels.model }} over the {{ $labels.window }} window.",
            **timed,
        )
    )
    samples = selector(metrics.WINDOW_SAMPLES, model=scope.label)
    alerts.append(
        Alert(
            "ServewatchWindowTooFewSamples",
            f"{samples} < {scope.model.min_samples}",
            "info",
            "A window holds too few values for drift statistics.",
            "The {{ $labels.window }} window of {{ $labels.signal }} {{ $labels.feature }} of model "
            '{{ $labels.model }} holds {{ printf "%.0f" $value }} values, fewer than the '
            f"{scope.model.min_samples} needed: its drift is not computed.",
            for_=timing.drift_for(scope.model),
            labels=scope.labels,
        )
    )
    return alerts


def _ratio_clauses(scope: Scope, signal: str, rule: str) -> list[Clause]:
    if rule == "missing":
        columns = [c for c in scope.columns(signal) if c.rules.max_missing_ratio is not None]
        limit = "max_missing_ratio"
    else:
        columns = [
            c
            for c in scope.columns(signal)
            if c.is_numeric and (c.rules.min is not None or c.rules.max is not None)
        ]
        limit = "max_out_of_range_ratio"
    groups: dict[float, list[str]] = defaultdict(list)
    for column in columns:
        groups[getattr(column.rules, limit)].append(column.name)
    return [Clause(signal, value, features=tuple(sorted(names))) for value, names in sorted(groups.items())]


def _union(clauses: Iterable[str]) -> str:
    return "\nor\n".join(clauses)


def _limits(clauses: list[Clause]) -> str:
    """The threshold values of ``clauses`` for a description: ``0.1`` or ``0.1 (amount, age: 0.2)``."""
    general = [c for c in clauses if c.features is None]
    specific = "; ".join(
        f"{', '.join(c.features or ())}: {c.value:g}" for c in clauses if c.features is not None
    )
    if general and specific:
        return f"{general[0].value:g} ({specific})"
    if general:
        return f"{general[0].value:g}"
    return specific if len(clauses) > 1 else f"{clauses[0].value:g}"


def _applies(statistic: str, column: Column) -> bool:
    return statistic in (NUMERIC_STATISTICS if column.is_numeric else CATEGORICAL_STATISTICS)
