"""The demo's script: timing, what each drift does to the rows, and what the detectors library flags at
each phase's peak (the expectations the live demo checks, verified here with margins)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from servewatch.demo.artifacts import write_spec
from servewatch.demo.phases import LAG, Resample, Seasons, SensorOffset, StuckSensor, UnitChange, schedule
from servewatch.demo.weather import Days, WeatherModel
from servewatch.detectors import compare

from servewatch.profile import Profile
from servewatch.spec import ModelSpec


@pytest.fixture(scope="module")
def days() -> Days:
    return Days.load()


@pytest.fixture(scope="module")
def model(days: Days) -> WeatherModel:
    return WeatherModel.train(days)


@pytest.mark.parametrize("fast, window", [(False, 6.0), (True, 4.0)])
def test_schedule_fits_the_window_and_the_budget(fast: bool, window: float) -> None:
    plan = schedule(window, fast=fast)
    assert [phase.kind for phase in plan.phases] == ["none", "instantaneous", "gradual", "periodic", "temporary"]
    assert plan.phases[0].expected == () and all(phase.expected for phase in plan.phases[1:])
    for phase in plan.phases[1:]:
        assert phase.recovery >= window + LAG  # the window holds only baseline traffic before the next phase
    for phase in plan.phases[1:3]:
        assert phase.seconds >= window + 3  # the window fills with the drift, and stays so for `for` (a window)
    assert plan.phases[-1].seconds < window  # temporary: a burst shorter than the window
    assert plan.seconds <= (70 if fast else 100)


def test_schedule_at() -> None:
    plan = schedule(6.0)
    starts = plan.starts()
    assert plan.at(-0.1) is None and plan.at(plan.seconds) is None
    first = plan.at(0.0)
    assert first is not None and first.index == 0 and first.progress == 0.0
    at = plan.at(starts[1] + 1.0)
    assert at is not None and at.phase.name == "instantaneous" and at.drifting
    assert at.progress == pytest.approx(1.0 / plan.phases[1].seconds)
    recovering = plan.at(starts[1] + plan.phases[1].seconds + 0.5)
    assert recovering is not None and recovering.index == 1 and not recovering.drifting
    assert plan.at(starts[2]).index == 2  # type: ignore[union-attr]


def test_drifts_alter_only_their_column(days: Days) -> None:
    rng = np.random.default_rng(0)
    base = Resample().draw(days, np.random.default_rng(1), 500, 0.0)
    assert base.shape == (500, 4)
    inches = UnitChange("precipitation", 1 / 25.4).draw(days, np.random.default_rng(1), 500, 0.5)
    np.testing.assert_allclose(inches[:, 0], base[:, 0] / 25.4)
    np.testing.assert_array_equal(inches[:, 1:], base[:, 1:])
    offset = SensorOffset("temp_max", 6.0, ramp=0.5)
    assert offset.offset(0.0) == 0.0 and offset.offset(0.25) == pytest.approx(3.0)
    assert offset.offset(0.5) == offset.offset(1.0) == 6.0
    shifted = offset.draw(days, np.random.default_rng(1), 500, 0.25)
    np.testing.assert_allclose(shifted[:, 1], base[:, 1] + 3.0)
    stuck = StuckSensor("wind", 0.0).draw(days, rng, 500, 0.5)
    assert np.all(stuck[:, 3] == 0.0)
    seasons = Seasons()
    warm, cold = seasons.draw(days, rng, 2000, 0.2), seasons.draw(days, rng, 2000, 0.8)
    assert seasons.half(0.2) == "warm" and seasons.half(0.8) == "cold"
    assert warm[:, 1].mean() > cold[:, 1].mean() + 8
    assert {tuple(row) for row in warm} <= {tuple(row) for row in days.features}  # real days, unaltered


def _profiles(rows: np.ndarray, spec: ModelSpec, days: Days, model: WeatherModel) -> dict[str, Profile]:
    return {"input": Profile.from_data(days.rows(rows), model="weather", signal="input", spec=spec),
            "prediction": Profile.from_data(model.predict(rows), model="weather", signal="prediction", spec=spec)}


def _scores(reference: dict[str, Profile], current: dict[str, Profile], spec: ModelSpec) -> dict[str, float]:
    """Per column: the worst statistic over its critical threshold (1.0: critical)."""
    scores = {}
    for signal in ("input", "prediction"):
        report = compare(reference[signal], current[signal], spec)
        for name, column in report.columns.items():
            thresholds = spec.thresholds_for(spec.column(signal, name))
            scores[name] = max(stat.value / thresholds[stat.name].critical for stat in column.statistics.values()
                               if stat.value is not None and stat.name in thresholds
                               and thresholds[stat.name].critical)
            assert (column.severity == "critical") == (scores[name] >= 1.0)
    return scores


def test_each_phase_flags_exactly_its_expected_columns_with_margins(tmp_path: Path, days: Days,
                                                                    model: WeatherModel) -> None:
    """At each drift's peak (a full window of it, as many rows as the demo's window holds), the expected
    columns are well past critical and every other column well below it: the margins that keep the live demo
    stable against sampling and sketch noise."""
    spec = write_spec(tmp_path, 6.0).model("weather")
    reference = _profiles(days.features, spec, days, model)
    plan = schedule(6.0)
    rng = np.random.default_rng(7)
    peaks = {"baseline": [1.0], "instantaneous": [1.0], "gradual": [1.0], "periodic": [0.25, 0.75],
             "temporary": [1.0]}
    for phase in plan.phases:
        for progress in peaks[phase.name]:
            rows = phase.drift.draw(days, rng, 8000, progress)
            if phase.kind == "temporary":  # a burst of half a window: at most half the window is stuck
                rows = np.concatenate([rows[:4000], Resample().draw(days, rng, 4000, 0.0)])
            scores = _scores(reference, _profiles(rows, spec, days, model), spec)
            where = f"{phase.name} at {progress}: {scores}"
            for name, score in scores.items():
                if name in phase.expected:
                    assert score >= 1.25, where
                else:
                    assert score <= 0.9, where
