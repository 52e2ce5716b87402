"""The verdict: readings of the detector's results, per-phase outcomes, pages and their phases, and the
webhook that receives them (real HTTP, Alertmanager's payload)."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest
from servewatch.demo.phases import Phase, Resample, Schedule, StuckSensor
from servewatch.demo.stack import Notification, Webhook, _timestamp
from servewatch.demo.summary import format_summary, grouped, outcomes, pages, summary_document
from servewatch.demo.timeline import Reading, Timeline
from servewatch.detectors import compare
from servewatch.detectors.service import WindowResult

from servewatch.profile import Profile
from servewatch.spec import Window, parse_spec

SPEC = parse_spec({"models": [{"name": "m", "windows": ["4s"], "features": [
    {"name": "a", "source": {"key": "a"}}, {"name": "b", "source": {"key": "b"}}]}]}).model("m")
PLAN = Schedule((Phase("baseline", "none", "", Resample(), 10.0, 0.0),
                 Phase("burst", "temporary", "", StuckSensor("wind", 0.0), 5.0, 10.0, ("a",))), window=4.0)
T0 = 1_000_000.0


def result(at: float, shift_a: float = 0.0, shift_b: float = 0.0) -> dict[tuple[str, str, str], WindowResult]:
    rng = np.random.default_rng(int(at))
    reference = Profile.from_data({"a": rng.normal(0, 1, 2000), "b": rng.normal(0, 1, 2000)}, model="m", spec=SPEC)
    current = Profile.from_data({"a": rng.normal(shift_a, 1, 2000), "b": rng.normal(shift_b, 1, 2000)},
                                model="m", spec=SPEC)
    report = compare(reference, current, SPEC)
    return {("m", "input", "4s"): WindowResult("m", "input", Window("4s", 4.0), 2000,
                                               {"a": 2000, "b": 2000}, "file", report, None, at)}


def timeline(evaluations: list[tuple[float, float, float]]) -> Timeline:
    line = Timeline(SPEC)
    for at, a, b in evaluations:
        assert line.record(result(T0 + at, a, b))
    return line


def test_timeline_reads_severities_and_scores() -> None:
    line = timeline([(1.0, 0.0, 0.0), (2.0, 2.0, 0.0)])
    assert not line.record(result(T0 + 2.0, 2.0, 0.0))  # the same evaluation again: not new
    calm, drifted = line.evaluations[0][1], line.latest
    assert not calm["a"].critical and calm["a"].score < 0.5 and calm["a"].ks is not None
    assert drifted["a"].critical and drifted["a"].score >= 1.0 and drifted["a"].worst in ("ks", "d1", "psi")
    assert drifted["a"].bound is not None and drifted["a"].worst_value > 0.2
    assert line.critical(T0, T0 + 10) == {"a": T0 + 2.0}
    assert line.worst(T0, T0 + 10)["a"][0] == T0 + 2.0


def test_outcomes_pass_when_exactly_the_expected_columns_flag_and_clear() -> None:
    line = timeline([(2.0, 0, 0), (8.0, 0, 0), (11.0, 0, 0), (13.0, 2.0, 0), (16.0, 2.0, 0), (20.0, 0, 0),
                     (24.0, 0, 0)])
    baseline, burst = outcomes(PLAN, T0, line)
    assert baseline.ok and baseline.evaluations == 2 and not baseline.flagged
    assert burst.ok and burst.flagged == {"a": pytest.approx(3.0)} and burst.time_to_flag == pytest.approx(3.0)
    assert burst.cleared and burst.cleared_after == pytest.approx(5.0)  # first calm evaluation after the drift
    assert "ok" in format_summary([baseline, burst])


def test_outcomes_fail_on_missing_unexpected_uncleared_and_unevaluated() -> None:
    missed = outcomes(PLAN, T0, timeline([(2.0, 0, 0), (13.0, 0, 0), (24.0, 0, 0)]))[1]
    assert not missed.ok and missed.missing == ["a"]
    spurious = outcomes(PLAN, T0, timeline([(2.0, 0, 2.0), (13.0, 2.0, 2.0), (24.0, 0, 0)]))
    assert not spurious[0].ok and spurious[0].unexpected == ["b"]
    assert not spurious[1].ok and spurious[1].unexpected == ["b"]
    stuck = outcomes(PLAN, T0, timeline([(2.0, 0, 0), (13.0, 2.0, 0), (24.0, 2.0, 0)]))[1]
    assert not stuck.ok and not stuck.cleared and "still critical" in stuck.problems()[0]
    silent = outcomes(PLAN, T0, Timeline(SPEC))
    assert not silent[0].ok and "did not evaluate" in silent[0].problems()[0]
    document = summary_document(spurious, {"model": "m"})
    assert document["ok"] is False and document["phases"][0]["problems"]
    assert "FAILED" in format_summary(spurious)


def note(at: float, starts: float | None, feature: str, statistic: str = "ks", receiver: str = "pager",
         status: str = "firing") -> Notification:
    return Notification(T0 + at, receiver, status, {"alertname": "ServewatchInputDrift", "model": "m",
                                                    "feature": feature, "severity": "critical",
                                                    "statistic": statistic, "signal": "input"}, {},
                        None if starts is None else T0 + starts)


def test_pages_belong_to_the_phase_where_their_condition_began() -> None:
    delivered = pages([note(16.0, 15.0, "a"), note(26.0, 26.0, "a", "psi"), note(12.0, None, "a"),
                       note(29.0, 28.0, "a", receiver="tickets"), note(31.0, 20.0, "a", status="resolved"),
                       note(99.0, 99.0, "a")], PLAN, T0, hold=4.0)
    # fired at 15 s (condition from 11 s: burst) and at 26 s after batching (from 22 s: still burst), one
    # without startsAt by arrival (12 s), a ticket; the resolved one and the one after the replay are dropped
    assert [(page.phase_name, page.statistic, page.receiver) for page in delivered] == [
        ("burst", "ks", "pager"), ("burst", "psi", "pager"), ("burst", "ks", "pager"), ("burst", "ks", "tickets")]
    assert delivered[1].after == pytest.approx(16.0)  # arrival, from the start of its phase (10 s)
    (first, statistics), = grouped([page for page in delivered if page.receiver == "pager"])
    assert first.feature == "a" and statistics == ["ks", "psi"]
    result = outcomes(PLAN, T0, Timeline(SPEC), delivered)[1]
    assert len(result.pages) == 3 and result.tickets == 1


def test_alertmanager_timestamps() -> None:
    assert _timestamp("1970-01-01T00:00:10.5Z") == pytest.approx(10.5)
    assert _timestamp("2024-05-01T12:00:00.123456789Z") == pytest.approx(1714564800.123456789)
    assert _timestamp("2024-05-01T14:00:00+02:00") == pytest.approx(1714564800.0)
    assert _timestamp("0001-01-01T00:00:00Z") is not None
    for bad in ("", "yesterday", None, 5, "2024-13-01T00:00:00Z"):
        assert _timestamp(bad) is None


def test_webhook_records_alertmanager_notifications_and_survives_garbage() -> None:
    hook = Webhook().start()
    try:
        body = {"receiver": "pager", "status": "firing", "alerts": [
            {"status": "firing", "labels": {"alertname": "X", "feature": "a"}, "annotations": {"summary": "s"},
             "startsAt": "2024-05-01T12:00:00.5Z"}, "not an alert"]}
        for payload in (json.dumps(body).encode(), b"{not json", b"[1, 2]"):
            request = urllib.request.Request(hook.url("pager"), data=payload, method="POST")
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.status == 200
        received = hook.received()
        assert len(received) == 1
        assert received[0].receiver == "pager" and received[0].labels["feature"] == "a"
        assert received[0].starts == pytest.approx(1714564800.5)
    finally:
        hook.stop()


def test_reading_defaults() -> None:
    reading = Reading("input", "a", 0, "ok")
    assert not reading.critical and reading.score == 0.0
