"""The demo's script: a baseline, then the four kinds of drift, each followed by a recovery.

Usage::

    from servewatch.demo.phases import schedule

    plan = schedule(window=6.0)               # or fast=True: shorter phases (and the demo's shorter window)
    plan.seconds                              # 97.0: how long the replay runs
    at = plan.at(31.5)                        # what is sent 31.5 s into the replay
    at.phase.name, at.drifting, at.progress   # "instantaneous", False (recovering), None
    rows = at.phase.drift.draw(days, rng, 50, at.progress or 0.0)   # (50, 4) measurements to send

Every request carries real days of Seattle's weather drawn at random from the four years the model was
trained on; what a phase changes is how they are drawn or altered on the way to the server:

=================  ========================================================  ===================================
phase              what happens                                              flagged (critical)
=================  ========================================================  ===================================
``baseline``       days drawn from all four years, as in training            nothing
``instantaneous``  precipitation arrives in inches instead of mm (an         precipitation, and the predicted
                   upstream unit change): from one request to the next       weather type (dry days look sunny)
``gradual``        the temp_max sensor drifts: an offset ramping up to       temp_max, and the model's
                   +6 °C                                                     probability
``periodic``       the seasons: April-September days, then                   temp_max, temp_min, and the
                   October-March days (real seasonality, no alteration)      model's probability
``temporary``      the anemometer freezes at 0.0 m/s for a few seconds,      wind
                   then recovers
=================  ========================================================  ===================================

The expectations were measured with the detectors library on these very draws (``tests/demo`` keeps
checking them, with margins): seasonality moves the temperatures far past the critical KS of 0.2 (about
0.35) and the model's confidence with them (about 0.27), while precipitation, wind and the predicted type
move less (0.10 to 0.16: warnings at most). Each drift phase is followed by ``recovery`` seconds of
baseline traffic, longer than one window plus the pipeline's lag, so its flags clear before the next begins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .weather import FEATURES, Days

__all__ = [
    "At",
    "Drift",
    "LAG",
    "Phase",
    "Resample",
    "Schedule",
    "Seasons",
    "SensorOffset",
    "StuckSensor",
    "UnitChange",
    "schedule",
]

LAG = 4.0
"""Seconds a recovery lasts beyond one window. A drifted row leaves the window one window after its 1 s
bucket ends, and the next evaluation (1 s apart) sees it gone: measured, the last flag clears 0.2 to 2.3 s
after that window (PSI and D1 stay critical while even a few percent of the window is out of the reference's
range); the rest is a margin for a loaded machine."""


class Drift(Protocol):
    """How a phase draws the days it sends; ``progress`` runs from 0 to 1 over the phase."""

    def draw(self, days: Days, rng: np.random.Generator, n: int, progress: float) -> np.ndarray: ...


def _column(name: str) -> int:
    return FEATURES.index(name)


@dataclass(frozen=True)
class Resample:
    """Days drawn at random from all four years: the training distribution."""

    def draw(self, days: Days, rng: np.random.Generator, n: int, progress: float) -> np.ndarray:
        return days.features[rng.integers(0, len(days), n)]


@dataclass(frozen=True)
class UnitChange:
    """``column`` multiplied by ``factor`` from the first request on (e.g. mm reported as inches)."""

    column: str
    factor: float

    def draw(self, days: Days, rng: np.random.Generator, n: int, progress: float) -> np.ndarray:
        rows = Resample().draw(days, rng, n, progress)
        rows[:, _column(self.column)] *= self.factor
        return rows


@dataclass(frozen=True)
class SensorOffset:
    """``column`` offset by ``to`` × ramp: the ramp rises linearly over the first ``ramp`` of the phase, then
    holds (a sensor drifting out of calibration)."""

    column: str
    to: float
    ramp: float = 0.7

    def offset(self, progress: float) -> float:
        return self.to * min(max(progress, 0.0) / self.ramp, 1.0)

    def draw(self, days: Days, rng: np.random.Generator, n: int, progress: float) -> np.ndarray:
        rows = Resample().draw(days, rng, n, progress)
        rows[:, _column(self.column)] += self.offset(progress)
        return rows


@dataclass(frozen=True)
class Seasons:
    """Days of the warm half of the year (April-September) for the first half of the phase, then days of the
    cold half (October-March): real seasonality, nothing altered."""

    def half(self, progress: float) -> str:
        return "warm" if progress < 0.5 else "cold"

    def draw(self, days: Days, rng: np.random.Generator, n: int, progress: float) -> np.ndarray:
        pool = days.warm() if self.half(progress) == "warm" else days.cold()
        return days.features[pool[rng.integers(0, len(pool), n)]]


@dataclass(frozen=True)
class StuckSensor:
    """``column`` stuck at ``value`` for the whole phase (a frozen sensor)."""

    column: str
    value: float

    def draw(self, days: Days, rng: np.random.Generator, n: int, progress: float) -> np.ndarray:
        rows = Resample().draw(days, rng, n, progress)
        rows[:, _column(self.column)] = self.value
        return rows


@dataclass(frozen=True)
class Phase:
    """One step of the script: ``drift`` for ``seconds``, then ``recovery`` seconds of baseline traffic.

    ``expected``: the columns (features and predictions) that must be flagged during the phase or its
    recovery; no other column may be."""

    name: str
    kind: str
    title: str
    drift: Drift
    seconds: float
    recovery: float
    expected: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        return self.seconds + self.recovery


@dataclass(frozen=True)
class At:
    """Where the replay is: ``phase`` (its ``index``), ``elapsed`` seconds into it, and ``progress`` (0..1)
    while its drift runs, None during its recovery."""

    index: int
    phase: Phase
    elapsed: float
    progress: float | None

    @property
    def drifting(self) -> bool:
        return self.progress is not None


@dataclass(frozen=True)
class Schedule:
    """The phases in order; times are seconds since the replay began."""

    phases: tuple[Phase, ...]
    window: float

    @property
    def seconds(self) -> float:
        return sum(phase.total for phase in self.phases)

    def starts(self) -> list[float]:
        """When each phase begins."""
        starts, t = [], 0.0
        for phase in self.phases:
            starts.append(t)
            t += phase.total
        return starts

    def at(self, t: float) -> At | None:
        """The phase at ``t`` seconds into the replay, None once the replay is over."""
        for index, (start, phase) in enumerate(zip(self.starts(), self.phases)):
            if start <= t < start + phase.total:
                elapsed = t - start
                progress = elapsed / phase.seconds if elapsed < phase.seconds else None
                return At(index, phase, elapsed, progress)
        return None


def schedule(window: float = 6.0, *, fast: bool = False) -> Schedule:
    """The demo's script for a detector window of ``window`` seconds; ``fast`` shortens every phase.

    A drift lasts long enough for its window to fill with it (and for the alert's ``for`` of one window to
    pass); each recovery lasts one window plus :data:`LAG`, so the window holds only baseline traffic again
    before the next phase."""
    recovery = window + LAG
    extra = 3.0 if fast else 4.0
    phases = (
        Phase("baseline", "none", "days drawn from all four years, as in training", Resample(),
              (1.5 if fast else 2.0) * window, 0.0),
        Phase("instantaneous", "instantaneous", "precipitation arrives in inches instead of mm (upstream unit change)",
              UnitChange("precipitation", 1 / 25.4), window + extra, recovery, ("precipitation", "weather")),
        Phase("gradual", "gradual", "the temp_max sensor drifts: an offset ramping up to +6 °C",
              SensorOffset("temp_max", 6.0), window + 2 * extra, recovery, ("temp_max", "probability")),
        Phase("periodic", "periodic", "the seasons: April-September days, then October-March days",
              Seasons(), 2 * (window + extra - 1.0), recovery, ("temp_max", "temp_min", "probability")),
        Phase("temporary", "temporary", "the anemometer freezes at 0.0 m/s, then recovers",
              StuckSensor("wind", 0.0), window / 2, recovery, ("wind",)),
    )
    return Schedule(phases, window)
