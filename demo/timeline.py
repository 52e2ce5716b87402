"""What the detector said, evaluation after evaluation: the demo's record of the run.

Usage::

    timeline = Timeline(spec.model("weather"))
    if timeline.record(detector.results()):      # True when the detector evaluated again since last time
        timeline.latest["precipitation"].ks      # the newest reading of each column
    timeline.critical(since, until)              # {column: first time it was critical} in that span
    timeline.worst(since, until)                 # {column: the reading furthest past its critical level}

A :class:`Reading` is one column at one evaluation: its severity, the headline statistics (KS with its sketch
error bound for numeric columns, L-infinity for categorical ones, D1, PSI) and how far the worst statistic is
from its critical threshold (``score``: 1.0 at the threshold). "Flagged" in the demo means critical: what
pages (the generated alert rules page on critical drift; warnings open tickets).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..detectors.service import WindowResult
from ..spec import ModelSpec

__all__ = ["Reading", "Timeline"]

_HEADLINE = ("ks", "linf", "d1", "psi")


@dataclass(frozen=True)
class Reading:
    """One column at one evaluation (statistics are None while the window holds too few values)."""

    signal: str
    column: str
    samples: int
    severity: str
    ks: float | None = None
    bound: float | None = None
    linf: float | None = None
    d1: float | None = None
    psi: float | None = None
    score: float = 0.0
    """max over the statistics with a critical threshold of value / critical (>= 1: critical)."""
    worst: str = ""
    """The statistic giving ``score``."""
    worst_value: float = 0.0
    """Its value."""

    @property
    def critical(self) -> bool:
        return self.severity == "critical"


class Timeline:
    """Readings per evaluation; see the module docstring."""

    def __init__(self, model: ModelSpec) -> None:
        self.model = model
        self.evaluations: list[tuple[float, dict[str, Reading]]] = []
        self._seen: float | None = None

    @property
    def latest(self) -> dict[str, Reading]:
        return self.evaluations[-1][1] if self.evaluations else {}

    @property
    def latest_time(self) -> float | None:
        return self.evaluations[-1][0] if self.evaluations else None

    def record(self, results: Mapping[tuple[str, str, str], WindowResult]) -> bool:
        """Add the detector's latest results of the model's shortest window; True when they are new."""
        window = min(self.model.windows, key=lambda w: w.seconds).name
        mine = [r for (model, _signal, name), r in results.items() if model == self.model.name and name == window]
        if not mine:
            return False
        at = max(result.evaluated_at for result in mine)
        if self._seen is not None and at <= self._seen:
            return False
        self._seen = at
        readings: dict[str, Reading] = {}
        for result in sorted(mine, key=lambda r: r.signal != "input"):
            readings.update(self._readings(result))
        self.evaluations.append((at, readings))
        return True

    def _readings(self, result: WindowResult) -> dict[str, Reading]:
        readings = {}
        if result.report is None:
            for feature, samples in result.samples.items():
                readings[feature] = Reading(result.signal, feature, samples, "ok")
            return readings
        for name, column in result.report.columns.items():
            values = {stat: column.statistics[stat].value for stat in _HEADLINE if stat in column.statistics}
            thresholds = self.model.thresholds_for(self.model.column(result.signal, name))
            score, worst, worst_value = 0.0, "", 0.0
            for stat, statistic in column.statistics.items():
                level = thresholds[stat].critical if stat in thresholds else None
                if statistic.value is not None and level and statistic.value / level > score:
                    score, worst, worst_value = statistic.value / level, stat, statistic.value
            ks = column.statistics.get("ks")
            readings[name] = Reading(result.signal, name, column.samples, column.severity, values.get("ks"),
                                     ks.bound if ks is not None else None, values.get("linf"), values.get("d1"),
                                     values.get("psi"), score, worst, worst_value)
        return readings

    def between(self, since: float, until: float) -> list[tuple[float, dict[str, Reading]]]:
        """The evaluations made in ``[since, until)``."""
        return [(at, readings) for at, readings in self.evaluations if since <= at < until]

    def critical(self, since: float, until: float) -> dict[str, float]:
        """Columns critical at some evaluation in ``[since, until)``: column -> first such time."""
        first: dict[str, float] = {}
        for at, readings in self.between(since, until):
            for name, reading in readings.items():
                if reading.critical and name not in first:
                    first[name] = at
        return first

    def worst(self, since: float, until: float) -> dict[str, tuple[float, Reading]]:
        """Per column, the reading with the highest ``score`` in ``[since, until)`` and its time."""
        best: dict[str, tuple[float, Reading]] = {}
        for at, readings in self.between(since, until):
            for name, reading in readings.items():
                if name not in best or reading.score > best[name][1].score:
                    best[name] = (at, reading)
        return best
