"""The demo's data and model: four years of Seattle's daily weather, and a classifier trained on them.

Usage::

    from servewatch.demo.weather import Days, WeatherModel

    days = Days.load()                        # the bundled CSV: 1,461 days, 2012-2015 (public-domain NOAA)
    days.features                             # (1461, 4) float array: precipitation, temp_max, temp_min, wind
    model = WeatherModel.train(days)          # multinomial logistic regression, numpy only, ~0.1 s
    model.predict(days.features[:3])          # [{"weather": "rain", "probability": 0.91}, ...]
    model.accuracy(days)                      # share of days whose weather type it gets right

The model is deliberately small and real: the four measurements (precipitation through ``log1p``, so a
millimetre of rain counts more than the fiftieth) are standardized with the training data's mean and
standard deviation, and a softmax regression with a little L2 is fitted by full-batch gradient descent. Its
answer per day is the most likely weather type and that type's probability, which is what the demo's server
returns and what the instrumentation profiles as predictions. ``to_dict`` / ``from_dict`` carry it to the
server process as JSON.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

__all__ = ["Days", "FEATURES", "MODEL_VARIABLE", "WeatherModel"]

FEATURES = ("precipitation", "temp_max", "temp_min", "wind")
"""The model's inputs, in column order: mm of rain, °C, °C, m/s."""

MODEL_VARIABLE = "SERVEWATCH_DEMO_MODEL"
"""The environment variable naming the model file (``WeatherModel.to_dict`` as JSON) the server loads."""

_DATA = "seattle-weather.csv"


@dataclass(frozen=True)
class Days:
    """Days of weather: ``features`` (n, 4) in :data:`FEATURES` order, ``labels`` (the observed weather type)
    and ``day_of_year`` (1..366, for the seasons)."""

    features: np.ndarray
    labels: np.ndarray
    day_of_year: np.ndarray

    @classmethod
    def load(cls) -> Days:
        """The bundled dataset (package data ``servewatch.demo.data``)."""
        text = (resources.files("servewatch.demo.data") / _DATA).read_text(encoding="utf-8")
        return cls.parse(text)

    @classmethod
    def parse(cls, text: str) -> Days:
        """Days from CSV text with the columns ``date,precipitation,temp_max,temp_min,wind,weather``."""
        import datetime

        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows:
            raise ValueError("the weather data holds no rows")
        features = np.array([[float(row[name]) for name in FEATURES] for row in rows], dtype=np.float64)
        labels = np.array([row["weather"] for row in rows])
        days = np.array([datetime.datetime.strptime(row["date"], "%Y/%m/%d").timetuple().tm_yday for row in rows])
        return cls(features, labels, days)

    def __len__(self) -> int:
        return len(self.labels)

    def warm(self) -> np.ndarray:
        """Indices of the warm half of the year: April to September (day of year 91 to 272)."""
        return np.flatnonzero((self.day_of_year >= 91) & (self.day_of_year <= 272))

    def cold(self) -> np.ndarray:
        """Indices of the cold half: October to March."""
        return np.flatnonzero((self.day_of_year < 91) | (self.day_of_year > 272))

    def rows(self, features: np.ndarray) -> list[dict[str, float | None]]:
        """JSON rows ``{"precipitation": ..., ...}`` of a feature array (NaN becomes None: a missing value)."""
        return [{name: (None if value != value else round(float(value), 3)) for name, value in zip(FEATURES, row)}
                for row in features]


class WeatherModel:
    """A softmax regression from the four measurements to the weather type; see the module docstring."""

    def __init__(self, classes: Sequence[str] | np.ndarray, mean: np.ndarray, scale: np.ndarray, weights: np.ndarray,
                 bias: np.ndarray) -> None:
        self.classes = np.asarray(classes)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.bias = np.asarray(bias, dtype=np.float64)

    @staticmethod
    def _inputs(features: np.ndarray) -> np.ndarray:
        x = np.array(features, dtype=np.float64, copy=True).reshape(-1, len(FEATURES))
        x[:, 0] = np.log1p(np.clip(x[:, 0], 0.0, None))
        return x

    @classmethod
    def train(cls, days: Days, *, steps: int = 400, rate: float = 0.5, l2: float = 1e-3) -> WeatherModel:
        """Fit on ``days`` (deterministic: no randomness involved)."""
        x = cls._inputs(days.features)
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale == 0] = 1.0
        z = (x - mean) / scale
        classes = np.unique(days.labels)
        target = (days.labels[:, None] == classes[None, :]).astype(np.float64)
        weights = np.zeros((z.shape[1], len(classes)))
        bias = np.log(target.mean(axis=0))
        for _ in range(steps):
            p = _softmax(z @ weights + bias)
            error = (p - target) / len(z)
            weights -= rate * (z.T @ error + l2 * weights)
            bias -= rate * error.sum(axis=0)
        return cls(classes, mean, scale, weights, bias)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(n, classes) class probabilities; a missing measurement (NaN) counts as the training mean."""
        z = (self._inputs(features) - self.mean) / self.scale
        return _softmax(np.nan_to_num(z, nan=0.0) @ self.weights + self.bias)

    def predict(self, features: np.ndarray) -> list[dict[str, Any]]:
        """One answer per row: ``{"weather": <most likely type>, "probability": <its probability>}``."""
        p = self.probabilities(features)
        best = p.argmax(axis=1)
        return [{"weather": str(self.classes[i]), "probability": round(float(p[row, i]), 4)}
                for row, i in enumerate(best)]

    def accuracy(self, days: Days) -> float:
        """Share of ``days`` whose observed weather type is the predicted one."""
        best = self.probabilities(days.features).argmax(axis=1)
        return float(np.mean(self.classes[best] == days.labels))

    def to_dict(self) -> dict[str, Any]:
        return {"classes": self.classes.tolist(), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "weights": self.weights.tolist(), "bias": self.bias.tolist()}

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> WeatherModel:
        return cls(document["classes"], np.array(document["mean"]), np.array(document["scale"]),
                   np.array(document["weights"]), np.array(document["bias"]))


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
