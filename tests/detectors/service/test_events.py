"""The operator's log of a real DetectorService on simulated time: one line per change (a reference that
counts down, a severity that stays critical: one line each), and rejections at most once a minute per reason
with their count."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from servewatch.detectors.service import DetectorService
from servewatch.detectors.service.events import Events, Throttle

from servewatch.spec import Spec, parse_spec

from .conftest import make_profile

T0 = 1_800_000_000.0
SPEC = {"models": [{"name": "fraud", "features": [{"name": "amount"}, {"name": "age"},
                                                  {"name": "country", "type": "categorical"}],
                    "reference": {"warmup": "10s"}, "windows": ["5s"], "min_samples": 50}]}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def detector(tmp_path: Path, clock: Clock) -> Iterator[DetectorService]:
    service = DetectorService(parse_spec(SPEC), state_dir=tmp_path / "state", listen="127.0.0.1:0",
                              metrics_listen="127.0.0.1:0", interval="1h", bucket="1s", clock=clock)
    service.events.throttle.clock = clock
    yield service.start()
    service.stop()


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "servewatch.detect"]


def _feed(detector: DetectorService, clock: Clock, seconds: int, shift: float, start: int) -> None:
    for second in range(start, start + seconds):
        clock.now = T0 + second + 1
        detector.submit([make_profile(end=clock.now, rows=200, shift=shift, seed=second, sequence=second)])
        if second % 2:
            detector.evaluate()


def test_each_change_is_logged_once(detector: DetectorService, clock: Clock,
                                    caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="servewatch.detect"):
        _feed(detector, clock, 14, 0.0, 0)            # the warm-up, then its grace: the reference is built
        _feed(detector, clock, 10, 4.0, 14)           # amount shifts by 4 sd and stays there
        _feed(detector, clock, 10, 0.0, 24)           # and comes back
    lines = _lines(caplog)
    assert [line for line in lines if line.startswith("model fraud")] == [
        "model fraud: first profiles (input); windows 5s against first 10s of traffic"]
    waiting = [line for line in lines if "reference not ready" in line]
    assert len(waiting) == 1 and "ready in" in waiting[0], lines     # the countdown changes; its state does not
    assert [line for line in lines if "reference ready" in line] == [
        "fraud/input: reference ready (first 10s of traffic); evaluating windows 5s"]
    amount = [line for line in lines if "amount" in line]
    assert len(amount) == 2, lines
    assert amount[0].startswith("fraud/input 5s: amount ok -> critical (ks ") and "psi" in amount[0]
    assert amount[1].startswith("fraud/input 5s: amount critical -> ok (ks ")
    changes: dict[str, list[tuple[str, str]]] = {}
    for line in lines:
        found = re.match(r"fraud/input 5s: (\w+) (\w+) -> (\w+)", line)
        if found:
            changes.setdefault(found.group(1), []).append((found.group(2), found.group(3)))
    for column, steps in changes.items():     # every line is a change from the state the previous line left
        assert all(before != after for before, after in steps), (column, steps)
        assert [before for before, _ in steps] == ["ok"] + [after for _, after in steps[:-1]], (column, steps)


def test_an_unknown_model_is_introduced_as_such(detector: DetectorService, clock: Clock,
                                                caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="servewatch.detect"):
        detector.submit([make_profile("churn", end=clock.now)])
        detector.evaluate()
        detector.evaluate()
    assert [line for line in _lines(caplog) if line.startswith("model churn")] == [
        "model churn: first profiles (input); windows 5m, 1h, 1d against first 1h of traffic; not in the spec: "
        "automatic columns, default windows"]


def test_a_missing_reference_file_is_a_warning_at_start_and_once_per_window_state(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    missing = tmp_path / "nowhere" / "fraud.pb"
    spec = parse_spec({"models": [{"name": "fraud", "reference": str(missing), "windows": ["5s", "1m"]}]})
    with caplog.at_level(logging.INFO, logger="servewatch.detect"), DetectorService(
            spec, state_dir=tmp_path / "state", listen="127.0.0.1:0", metrics_listen="127.0.0.1:0",
            interval="1h", bucket="1s") as detector:
        detector.submit([make_profile(end=detector.clock())])
        for _ in range(3):
            detector.evaluate()
    warnings = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warnings[0] == (f"model fraud: reference file {missing}: no such file; its windows are not evaluated "
                           "until it can be read")
    assert warnings[1:] == [f"fraud/input: no reference (cannot read reference file {missing}: No such file or "
                            "directory); windows 5s, 1m are not evaluated"]


def test_rejections_are_counted_and_logged_at_most_once_a_minute_per_reason(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    events = Events(Spec(), clock=clock)
    with caplog.at_level(logging.INFO, logger="servewatch.detect"):
        for _ in range(5):
            events.rejected("malformed", "profile 1: not a number")
        events.rejected("too_old", "profile is older than the retention", count=3)
        clock.now += 30
        events.rejected("malformed", "profile 2: not a number", count=2)
        events.evaluated({})                          # the minute is not over: nothing more
        clock.now += 31
        events.evaluated({})                          # now it is: what waited is logged, with its count
        events.evaluated({})
    assert _lines(caplog) == [
        "rejected 1 profile (malformed) in the last 1m: profile 1: not a number",
        "rejected 3 profiles (too_old) in the last 1m: profile is older than the retention",
        "rejected 6 profiles (malformed) in the last 1m: profile 2: not a number",
    ]


def test_rejected_profiles_reach_the_log_through_the_service(detector: DetectorService, clock: Clock,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="servewatch.detect"):
        detector.submit([make_profile(end=clock.now - 30 * 86400.0)] * 3)     # older than the retention
    assert _lines(caplog) == ["rejected 1 profile (too_old) in the last 1m: profile fraud/input: profile is older "
                              "than the retention"]


def test_throttle() -> None:
    clock = Clock()
    throttle = Throttle(10.0, clock)
    assert throttle.add("a") == 1 and throttle.add("a") is None and throttle.add("b", 4) == 4
    assert throttle.due() == []
    clock.now += 10
    assert throttle.due() == [("a", 1)] and throttle.due() == []


def test_a_missing_reference_that_changes_its_reason_is_logged_again(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "fraud.pb"
    spec = parse_spec({"models": [{"name": "fraud", "reference": str(path), "windows": ["5s"]}]})
    with caplog.at_level(logging.INFO, logger="servewatch.detect"), DetectorService(
            spec, state_dir=tmp_path / "state", listen="127.0.0.1:0", metrics_listen="127.0.0.1:0",
            interval="1h", bucket="1s") as detector:
        detector.submit([make_profile(end=detector.clock())])
        detector.evaluate()
        path.write_bytes(b"not a profile")
        detector.evaluate()
        detector.evaluate()
    lines = [line for line in _lines(caplog) if line.startswith("fraud/input: no reference")]
    assert len(lines) == 2 and "No such file" in lines[0] and "cannot be used" in lines[1], lines
