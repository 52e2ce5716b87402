"""In-process DetectorService: one model's bad data (or a failing store) stops no other model's evaluation."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from servewatch.detectors.service import DetectorService, Layout, Store

from servewatch.profile import Profile

T0 = 1_700_002_800.0


def _overflowing(end: float, sequence: int) -> Profile:
    profile = Profile("hostile", "input", start=end - 1, end=end, producer="h", sequence=sequence)
    profile.update({"x": [1.0]})
    profile.rows = 2**63 - 1
    return profile


def test_an_overflowing_model_and_a_failing_maintain_stop_no_evaluation(tmp_path: Path,
                                                                        profile: Callable[..., Profile],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    now = [T0 + 100.0]
    detector = DetectorService(state_dir=tmp_path / "state", listen="127.0.0.1:0", metrics_listen="127.0.0.1:0",
                               bucket="1s", interval="1h", clock=lambda: now[0]).start()
    try:
        assert detector.submit([_overflowing(T0 + 3.5, 1), _overflowing(T0 + 4.5, 2)]) == ["accepted"] * 2
        assert detector.submit([profile(model="good", end=T0 + 90)]) == ["accepted"]
        assert {key[0] for key in detector.evaluate()} >= {"good"}
        assert detector.store is not None
        assert set(detector.store.failures.counts) == {("hostile", "maintain")}

        def full(now: float, batch: int = 64) -> int:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(detector.store, "maintain", full)
        now[0] += 5
        assert {key[0] for key in detector.evaluate()} >= {"good"}   # evaluated on what the store holds
        assert detector.store.failures.counts[("", "maintain")] == 1
    finally:
        detector.stop()


def test_a_failing_model_is_counted_in_the_exposition(tmp_path: Path, profile: Callable[..., Profile]) -> None:
    store = Store(tmp_path / "state", Layout(1.0, 86400.0))
    store.write([_overflowing(T0 + 3.5, 1), _overflowing(T0 + 4.5, 2), profile(model="good", end=T0 + 90)],
                now=T0 + 91)
    store.close()
    detector = DetectorService(state_dir=tmp_path / "state", listen="127.0.0.1:0", metrics_listen="127.0.0.1:0",
                               bucket="1s", interval="1h", clock=lambda: T0 + 100).start()
    try:
        detector.evaluate()   # (the loop evaluates at start too)
        text = requests.get(detector.metrics_url, timeout=10).text
        failures = re.search(r'model_failures_total\{model="hostile",stage="maintain"\} (\S+)', text)
        assert failures is not None and float(failures.group(1)) >= 1
        assert 'servewatch_window_samples{' in text and 'model="good"' in text
    finally:
        detector.stop()
