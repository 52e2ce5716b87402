"""Helpers for the detector service tests: profiles from known data, a spec on a compressed time scale."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from servewatch.detectors.service import Layout, Store

from servewatch.profile import Profile
from servewatch.spec import ModelSpec, Spec, parse_spec

SPEC = {
    "models": [{
        "name": "fraud",
        "features": [{"name": "amount"}, {"name": "age"}, {"name": "country", "type": "categorical"}],
        "predictions": [{"name": "score"}],
        "reference": {"warmup": "10s"},
        "windows": ["5s", "30s"],
        "min_samples": 50,
    }],
}


@pytest.fixture
def spec() -> Spec:
    return parse_spec(SPEC)


def make_profile(model: str = "fraud", signal: str = "input", *, end: float, rows: int = 200, shift: float = 0.0,
                 seed: int = 0, producer: str = "p", sequence: int = 0, length: float = 1.0,
                 spec: ModelSpec | None = None) -> Profile:
    """A profile of ``rows`` rows of known data: amount ~ N(shift, 1), age ~ N(40, 5), country in 3 values
    (counted against ``spec``'s rules when given, as the instrumentation does)."""
    rng = np.random.default_rng(seed)
    profile = Profile(model, signal, spec=spec, start=end - length, end=end, producer=producer, sequence=sequence)
    if signal == "input":
        profile.update({"amount": rng.normal(shift, 1.0, rows), "age": rng.normal(40.0, 5.0, rows),
                        "country": rng.choice(["US", "DE", "FR"], rows)})
    else:
        profile.update({"score": rng.uniform(0.0, 1.0, rows)})
    return profile


@pytest.fixture
def store_factory(tmp_path: Path) -> Iterator[Callable[..., Store]]:
    opened: list[Store] = []

    def factory(bucket: float = 60.0, retention: float = 8 * 86400.0, **options: object) -> Store:
        store = Store(tmp_path / "state", Layout(bucket, retention), **options)  # type: ignore[arg-type]
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def profile() -> Callable[..., Profile]:
    """The profile factory (:func:`make_profile`)."""
    return make_profile
