"""Rule-based data-quality checks on a column (and on a model's volume).

Usage::

    from servewatch.detectors import check_rules, quality_ratios

    ratios = quality_ratios(column)            # {"missing_ratio": 0.002, "invalid_ratio": 0.0, ...}
    for result in check_rules(column, spec_column.rules, reference=reference_column).values():
        if result.violated:
            print(result.rule, result.value, ">", result.limit)

The rules, each from the spec's ``rules`` of the column:

- ``missing``: share of None/NaN values above ``max_missing_ratio`` (no limit unless given);
- ``invalid``: share of values of the wrong type or not finite above ``max_invalid_ratio`` (default 0);
- ``range``: share of numbers outside ``[min, max]`` above ``max_out_of_range_ratio`` (default 0);
- ``allowed``: share of categories outside ``allowed`` above ``max_not_allowed_ratio`` (default 0);
- ``new_category``: share of categories the reference never saw above ``max_new_category_ratio``;
- ``constant``: the column holds one value throughout (with at least ``min_samples`` values) while the
  reference did not (``not_constant``, on by default);
- ``volume`` (per model, :func:`check_volume`): rows per ``per`` seconds outside ``[min, max]``.

Ratios are of the values counted in the window; a window with no values violates nothing. A ratio rule with
a limit above 0 is violated only where the window holds at least ``min_samples`` values and the one-sided
Clopper-Pearson lower confidence bound of the ratio at the false-alarm rate ``alpha`` (``bound``) exceeds the
limit: 1 missing value in 8 is not a 12% missing ratio, and on undrifted data whose true ratio is within the
limit the rule fires in at most ``alpha`` of windows. A limit of 0 trips on one bad value at any count: that
is a fact, not noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import betaincinv

from ..column import ColumnProfile
from ..spec import DEFAULT_MIN_SAMPLES, Rules, Volume
from .distribution import Categories, Distribution
from .noise import DEFAULT_ALPHA

__all__ = ["RuleResult", "check_rules", "check_volume", "lower_bound", "quality_ratios", "ratio_limits"]


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome: the observed ``value`` (a ratio, or rows for volume), the ``limit`` it is held to;
    ``bound`` is the lower confidence bound of a ratio that was held to its limit (None where none was)."""

    rule: str
    value: float | None
    limit: float | None
    violated: bool
    bound: float | None = None

    def to_dict(self) -> dict[str, float | bool | None]:
        result: dict[str, float | bool | None] = {"value": self.value, "limit": self.limit, "violated": self.violated}
        if self.bound is not None:
            result["bound"] = self.bound
        return result


def lower_bound(part: float, whole: int, alpha: float = DEFAULT_ALPHA) -> float:
    """The one-sided Clopper-Pearson lower bound of a ratio ``part / whole`` at level ``1 - alpha``."""
    if part <= 0 or whole <= 0:
        return 0.0
    part = min(part, whole)
    return float(betaincinv(part, whole - part + 1, alpha))


def ratio_limits(rules: Rules, numeric: bool) -> dict[str, float]:
    """The ratio rules that apply to a column of this kind under ``rules``, with their limits."""
    limits: dict[str, float | None] = {"missing": rules.max_missing_ratio, "invalid": rules.max_invalid_ratio}
    if numeric and (rules.min is not None or rules.max is not None):
        limits["range"] = rules.max_out_of_range_ratio
    if not numeric and rules.allowed is not None:
        limits["allowed"] = rules.max_not_allowed_ratio
    if not numeric:
        limits["new_category"] = rules.max_new_category_ratio
    return {rule: limit for rule, limit in limits.items() if limit is not None}


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole > 0 else None


def quality_ratios(column: ColumnProfile, rules: Rules | None = None) -> dict[str, float | None]:
    """The column's quality ratios: missing, invalid, out-of-range (numeric), not-allowed (categorical). None
    where the column has no values to divide.

    The range and allowed-value counts are exact when the producer profiled with the spec's rules. A producer
    that ran without them counted nothing; then, given ``rules``, the ratios are read from the sketches: exactly
    0 when the sketch's exact min and max lie within the range, else the sketched share beyond it (within the
    sketch's rank error); for categories, the share of tracked categories outside ``allowed``."""
    ratios = {
        "missing_ratio": _ratio(column.missing, column.count),
        "invalid_ratio": _ratio(column.invalid + column.non_finite, column.count),
    }
    if column.is_numeric:
        counted = column.below_min + column.above_max
        ratios["out_of_range_ratio"] = _ratio(counted, column.valid)
        if not counted and rules is not None and column.valid and (rules.min is not None or rules.max is not None):
            ratios["out_of_range_ratio"] = _sketched_out_of_range(column, rules)
    else:
        ratios["not_allowed_ratio"] = _ratio(column.not_allowed, column.valid)
        if not column.not_allowed and rules is not None and rules.allowed is not None and column.valid:
            view = Categories.of(column)
            outside = sum(count for name, count in view.counts.items() if name not in rules.allowed)
            ratios["not_allowed_ratio"] = outside / max(view.n, 1)
    return ratios


def _sketched_out_of_range(column: ColumnProfile, rules: Rules) -> float:
    view = Distribution.of(column)
    share = 0.0
    if rules.min is not None and view.low is not None and view.low < rules.min:
        share += float(max(view.cdf_below(np.array([rules.min]))[0], 1.0 / column.valid))
    if rules.max is not None and view.high is not None and view.high > rules.max:
        share += float(max(1.0 - view.cdf_at(np.array([rules.max]))[0], 1.0 / column.valid))
    return min(share, 1.0)


def check_rules(current: ColumnProfile, rules: Rules, reference: ColumnProfile | None = None, *,
                new_category_ratio: float | None = None, min_samples: int = DEFAULT_MIN_SAMPLES,
                alpha: float = DEFAULT_ALPHA) -> dict[str, RuleResult]:
    """Every rule that applies to ``current`` under ``rules``, by rule name (ratio rules held to their limit
    by a lower confidence bound at false-alarm rate ``alpha``, see the module docstring)."""
    ratios = quality_ratios(current, rules)
    observed = {"missing": (ratios["missing_ratio"], current.count),
                "invalid": (ratios["invalid_ratio"], current.count),
                "range": (ratios.get("out_of_range_ratio"), current.valid),
                "allowed": (ratios.get("not_allowed_ratio"), current.valid),
                "new_category": (new_category_ratio, current.valid)}
    results: dict[str, RuleResult] = {}
    for rule, limit in ratio_limits(rules, current.is_numeric).items():
        value, whole = observed[rule]
        if value is None:
            results[rule] = RuleResult(rule, None, limit, False)
        elif limit <= 0:
            results[rule] = RuleResult(rule, value, limit, value > 0)
        else:
            bound = lower_bound(value * whole, whole, alpha)
            results[rule] = RuleResult(rule, value, limit, whole >= min_samples and bound > limit, bound)
    if rules.not_constant and current.valid >= max(min_samples, 2):
        constant = _is_constant(current)
        was_constant = reference is not None and reference.kind == current.kind and reference.valid >= 2 \
            and _is_constant(reference)
        results["constant"] = RuleResult("constant", 1.0 if constant else 0.0, 0.0, constant and not was_constant)
    return results


def check_volume(rows: int, seconds: float, volume: Volume) -> RuleResult | None:
    """The model-level volume rule over a window of ``seconds`` holding ``rows`` rows (None: no bounds set)."""
    if volume.min is None and volume.max is None:
        return None
    rate = rows * volume.per / seconds
    low = volume.min if volume.min is not None else 0.0
    high = volume.max if volume.max is not None else float("inf")
    violated = not low <= rate <= high
    limit = volume.min if volume.min is not None and rate < low else volume.max
    return RuleResult("volume", rate, limit, violated)


def _is_constant(column: ColumnProfile) -> bool:
    if column.is_numeric:
        view = Distribution.of(column)
        return view.items.size == 1
    return len(Categories.of(column).counts) == 1 and Categories.of(column).exact
