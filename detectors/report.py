"""``compare``: every statistic and rule between a reference profile and a current one, with severities.

Usage::

    from servewatch.detectors import compare

    report = compare(reference, current, spec.model("fraud"))
    report.severity                     # "unknown" | "ok" | "warning" | "critical": the worst column
    report.drifted                      # names of the columns at warning or worse
    report.columns["amount"].statistics["ks"].value
    print(report.table())
    json.dumps(report.to_dict())

Severities come from the spec's thresholds on effect sizes (KS, D1, PSI, ...; never p-values: on large
windows every test rejects on noise): a statistic at or over ``critical`` makes its column critical, at or
over ``warning`` a warning, but only where it also exceeds its ``noise``, what sampling alone gives at
these counts (:mod:`servewatch.detectors.noise`; on small windows the thresholds alone would page on noise).
The column's false-alarm rate (:data:`~servewatch.detectors.noise.FALSE_ALARM_RATE`, 0.1% per evaluation)
is split evenly over its decisions: the statistics with thresholds and the ratio rules with a limit above 0.
A violated data-quality rule makes its column a warning at least. A statistic with too few values
(``min_samples``, default 100, on either side) or no reference column has no value and decides nothing; a
column where nothing decided is ``"unknown"``, not ``"ok"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..column import ColumnProfile
from ..profile import Profile
from ..spec import CATEGORICAL_STATISTICS, NUMERIC_STATISTICS, Column, ModelSpec, Rules
from .binned import DEFAULT_BINS, FORMULAS, d1, hellinger, js, psi, shares
from .categorical import chi2, cramers_v, linf, new_category_ratio
from .noise import alpha_for, pair_noise
from .numeric import ks, wasserstein
from .rules import RuleResult, check_rules, check_volume, quality_ratios, ratio_limits
from .statistic import Statistic, too_few

__all__ = ["ColumnReport", "Report", "SEVERITIES", "compare", "worst_severity"]

SEVERITIES = ("unknown", "ok", "warning", "critical")
"""Verdicts in rank order: ``unknown`` (nothing could be judged: too few values, no reference) ranks lowest."""

_NUMERIC: dict[str, Callable[..., Statistic]] = {
    "ks": ks, "d1": d1, "psi": psi, "js": js, "hellinger": hellinger, "wasserstein": wasserstein,
}
_CATEGORICAL: dict[str, Callable[..., Statistic]] = {
    "linf": linf, "d1": d1, "psi": psi, "js": js, "hellinger": hellinger, "chi2": chi2, "cramers_v": cramers_v,
}
_BINNED = {"d1", "psi", "js", "hellinger"}
assert tuple(_NUMERIC) == NUMERIC_STATISTICS and tuple(_CATEGORICAL) == CATEGORICAL_STATISTICS


def worst_severity(severities: Sequence[str]) -> str:
    """The most severe of ``severities`` ("ok" for none): critical over warning over ok over unknown."""
    return max(severities, key=SEVERITIES.index, default="ok")


def _at_least_warning(severity: str) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index("warning")


@dataclass
class ColumnReport:
    """What ``compare`` found for one column."""

    name: str
    signal: str
    kind: str
    samples: int
    reference_samples: int
    statistics: dict[str, Statistic] = field(default_factory=dict)
    rules: dict[str, RuleResult] = field(default_factory=dict)
    quality: dict[str, float | None] = field(default_factory=dict)
    severity: str = "unknown"

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"signal": self.signal, "type": self.kind, "samples": self.samples,
                                  "reference_samples": self.reference_samples}
        result.update((name, stat.to_dict()) for name, stat in self.statistics.items())
        result["quality"] = dict(self.quality)
        result["rules"] = {name: rule.to_dict() for name, rule in self.rules.items()}
        result["severity"] = self.severity
        return result


@dataclass
class Report:
    """The outcome of one comparison of a (model, signal)."""

    model: str
    signal: str
    rows: int
    columns: dict[str, ColumnReport] = field(default_factory=dict)
    rules: dict[str, RuleResult] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        model_level = ["warning" for rule in self.rules.values() if rule.violated]
        return worst_severity([column.severity for column in self.columns.values()] + model_level)

    @property
    def drifted(self) -> list[str]:
        """Columns at warning or worse."""
        return [name for name, column in self.columns.items() if _at_least_warning(column.severity)]

    @property
    def drift_detected(self) -> bool:
        return self.severity == "critical"

    @property
    def warning_detected(self) -> bool:
        return _at_least_warning(self.severity)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "signal": self.signal, "rows": self.rows, "severity": self.severity,
            "rules": {name: rule.to_dict() for name, rule in self.rules.items()},
            "columns": {name: column.to_dict() for name, column in self.columns.items()},
        }

    def table(self, statistics: Sequence[str] = ("ks", "d1", "psi", "linf")) -> str:
        """A fixed-width text table: one line per column, its main statistics each with its noise level
        (``0.110 (noise 0.140)``: below its noise a value decides nothing), broken rules and severity."""
        shown = [name for name in statistics if any(name in c.statistics for c in self.columns.values())]
        header = ["column", "signal", "n", *shown, "rules", "severity"]
        lines = [header]
        for column in self.columns.values():
            cells = [column.name, column.signal, str(column.samples)]
            for name in shown:
                stat = column.statistics.get(name)
                if stat is None:
                    cells.append("")
                else:
                    cells.append(stat.text())
            broken = [name for name, rule in column.rules.items() if rule.violated]
            cells += [",".join(broken) or "-", column.severity]
            lines.append(cells)
        widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
        text = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in lines]
        text.insert(1, "  ".join("-" * width for width in widths))
        model_rules = [f"{rule.rule}: {rule.value:.3g} outside limit {rule.limit}" for rule in self.rules.values()
                       if rule.violated and rule.value is not None]
        return "\n".join(text + model_rules)


def compare(reference: Profile, current: Profile, spec: ModelSpec | None = None, *,
            statistics: Sequence[str] | None = None, bins: int = DEFAULT_BINS, min_samples: int | None = None,
            window_seconds: float | None = None) -> Report:
    """Compare ``current`` against ``reference`` (profiles of the same signal) column by column.

    ``spec`` gives the columns, their thresholds and rules (default: every column either profile has, the
    default thresholds); ``statistics`` limits which statistics are computed (default: all that apply to the
    column's kind); ``window_seconds`` turns on the model's volume rule for a window of that length.
    """
    spec = spec or ModelSpec(name=current.model)
    limit = min_samples if min_samples is not None else spec.min_samples
    listed = spec.columns(current.signal)
    names = [column.name for column in listed] or list(dict.fromkeys([*current.columns, *reference.columns]))
    report = Report(model=current.model, signal=current.signal, rows=current.rows)
    for name in names:
        column_spec = spec.column(current.signal, name)
        ref_column = reference.columns.get(name)
        cur_column = current.columns.get(name)
        kind = column_spec.type if column_spec else (cur_column or ref_column).kind  # type: ignore[union-attr]
        if cur_column is None:
            cur_column = ColumnProfile(name, kind, k=spec.k)
        report.columns[name] = _compare_column(name, current.signal, ref_column, cur_column, spec, column_spec,
                                               statistics, bins, limit)
    if window_seconds:
        volume = check_volume(current.rows, window_seconds, spec.volume)
        if volume is not None:
            report.rules["volume"] = volume
    return report


def _compare_column(name: str, signal: str, reference: ColumnProfile | None, current: ColumnProfile,
                    spec: ModelSpec, column_spec: Column | None, statistics: Sequence[str] | None, bins: int,
                    min_samples: int) -> ColumnReport:
    table = _NUMERIC if current.is_numeric else _CATEGORICAL
    wanted = [stat for stat in table if statistics is None or stat in statistics]
    result = ColumnReport(name, signal, current.kind, current.valid, reference.valid if reference else 0)
    rules = column_spec.rules if column_spec is not None else Rules()
    thresholds = spec.thresholds_for(column_spec)
    tested = [rule for rule, limit in ratio_limits(rules, current.is_numeric).items() if limit > 0]
    alpha = alpha_for(sum(stat in thresholds for stat in wanted) + len(tested))
    binned: tuple[Any, Any] | None = None
    levels: Mapping[str, float] | None = None
    refused = too_few("", reference, current, min_samples) if reference is not None else \
        Statistic("", None, reason="no reference for this column")
    for stat in wanted:
        if refused is not None:
            result.statistics[stat] = Statistic(stat, None, reason=refused.reason)
        elif stat in _BINNED:  # one binning, and one set of noise levels, serves every binned statistic
            assert reference is not None  # else refused
            binned = binned or shares(reference, current, bins)
            levels = levels or pair_noise(reference, current, binned[0], alpha)
            result.statistics[stat] = Statistic(stat, FORMULAS[stat](*binned), noise=levels[stat])
        else:
            result.statistics[stat] = table[stat](reference, current, min_samples=min_samples, alpha=alpha)
    result.quality = quality_ratios(current, rules)
    new_ratio = None
    if not current.is_numeric and reference is not None and reference.kind == current.kind:
        new_ratio = new_category_ratio(reference, current).value
        result.quality["new_category_ratio"] = new_ratio
    result.rules = check_rules(current, rules, reference, new_category_ratio=new_ratio, min_samples=min_samples,
                               alpha=alpha)
    severities = [value.severity(thresholds[stat]) for stat, value in result.statistics.items()
                  if stat in thresholds]
    severities += ["warning" for rule in result.rules.values() if rule.violated]
    result.severity = worst_severity(severities)
    return result
