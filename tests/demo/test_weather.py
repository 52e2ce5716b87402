"""The demo's data and model: the bundled dataset, a deterministic and useful classifier, its JSON form."""

from __future__ import annotations

import json

import numpy as np
import pytest
from servewatch.demo.weather import FEATURES, Days, WeatherModel


@pytest.fixture(scope="module")
def days() -> Days:
    return Days.load()


def test_the_bundled_dataset_is_four_years_of_days(days: Days) -> None:
    assert len(days) == 1461
    assert days.features.shape == (1461, len(FEATURES))
    assert set(days.labels) == {"drizzle", "fog", "rain", "snow", "sun"}
    assert np.all(days.features[:, 0] >= 0)  # precipitation in mm
    assert 10 < days.features[:, 1].mean() < 25  # temp_max in °C
    warm, cold = days.warm(), days.cold()
    assert len(warm) + len(cold) == len(days) and not set(warm) & set(cold)
    assert days.features[warm, 1].mean() > days.features[cold, 1].mean() + 8  # real seasons


def test_rows_are_json_with_missing_values_as_null(days: Days) -> None:
    features = days.features[:2].copy()
    features[1, 3] = np.nan
    rows = days.rows(features)
    assert rows[0] == {"precipitation": 0.0, "temp_max": 12.8, "temp_min": 5.0, "wind": 4.7}
    assert rows[1]["wind"] is None
    json.dumps(rows)


def test_parse_refuses_empty_data() -> None:
    with pytest.raises(ValueError):
        Days.parse("date,precipitation,temp_max,temp_min,wind,weather\n")


def test_the_model_learns_and_is_deterministic(days: Days) -> None:
    model = WeatherModel.train(days)
    majority = max(np.mean(days.labels == label) for label in set(days.labels))
    assert model.accuracy(days) > majority + 0.1
    again = WeatherModel.train(days)
    np.testing.assert_array_equal(model.weights, again.weights)
    answers = model.predict(days.features[:5])
    assert [set(answer) for answer in answers] == [{"weather", "probability"}] * 5
    assert all(answer["weather"] in model.classes for answer in answers)
    assert all(1 / len(model.classes) <= answer["probability"] <= 1 for answer in answers)


def test_the_model_reacts_to_its_inputs(days: Days) -> None:
    model = WeatherModel.train(days)
    dry = model.probabilities(days.features)
    inches = days.features.copy()
    inches[:, 0] /= 25.4
    assert model.probabilities(inches).argmax(axis=1).tolist() != dry.argmax(axis=1).tolist()


def test_a_missing_measurement_counts_as_the_training_mean(days: Days) -> None:
    model = WeatherModel.train(days)
    row = days.features[:1].copy()
    row[0, 3] = np.nan
    probabilities = model.probabilities(row)
    assert np.all(np.isfinite(probabilities)) and probabilities.sum() == pytest.approx(1.0)


def test_json_round_trip(days: Days) -> None:
    model = WeatherModel.train(days)
    copy = WeatherModel.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_allclose(copy.probabilities(days.features), model.probabilities(days.features))
