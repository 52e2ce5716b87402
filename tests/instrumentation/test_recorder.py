"""The recorder: request statistics, fault injection in extraction, bounds, thread safety."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from servewatch.instrumentation.guard import errors
from servewatch.instrumentation.recorder import MAX_MODELS, Recorder
from servewatch.instrumentation.stats import DURATION_BOUNDS, MAX_ROUTES, Histogram, RequestStats


@pytest.fixture(autouse=True)
def _fresh_errors() -> None:
    errors.reset()


def test_histogram_buckets_are_upper_inclusive_and_bad_values_left_out() -> None:
    histogram = Histogram((1.0, 2.0))
    for value in (0.5, 1.0, 1.5, 2.0, 3.0):
        histogram.observe(value)
    assert histogram.counts == [2, 2, 1] and histogram.count == 5 and histogram.sum == 8.0
    stats = RequestStats()
    stats.add("ok", float("nan"), None, 1)
    stats.add("ok", -1.0, 4, 1)
    stats.add("error", 0.002, 8, 3)                         # a batch of 3 requests: 3 observations of 2 ms
    assert stats.outcomes["ok"].requests == 2 and stats.outcomes["ok"].duration.count == 0
    error = stats.outcomes["error"]
    assert error.duration.count == 3 and error.duration.sum == pytest.approx(0.006)
    assert error.duration.counts[DURATION_BOUNDS.index(0.0025)] == 3 and error.batch_size.count == 1


def test_routes_are_kept_apart_and_bounded_per_model() -> None:
    recorder = Recorder()
    recorder.record("m", "python", np.ones((2, 3)), None, 0.01, None, "ok", 1)          # no route
    recorder.record("m", "python", None, None, 0.02, 4, "ok", 2, "/a")
    recorder.record("m", "python", None, None, 0.03, 1, "error", 1, "/a")
    for i in range(MAX_ROUTES + 5):                                                     # 31 more, then 6 "other"
        recorder.record("m", "python", None, None, 0.01, 1, "ok" if i % 2 else "error", 1, f"/r{i}")
    recorder.record("m", "python", None, None, 0.01, 1, "ok", 1, "")                    # "" is no route
    recorder.record("m", "python", None, None, 0.01, 1, "ok", 1, 404)                   # not a string: its text
    recorder.record("other-model", "python", None, None, 0.01, 1, "ok", 1, "/z")        # a bound of its own
    stats = {state.name: state.stats for state in recorder.states()}
    ok, error = stats["m"].outcomes["ok"], stats["m"].outcomes["error"]
    assert ok.requests == 2 and ok.duration.count == 2                                  # the route-less calls
    assert ok.routes["/a"].requests == 2 and ok.routes["/a"].duration.count == 2
    assert error.routes["/a"].requests == 1 and error.routes["/a"].duration.sum == pytest.approx(0.03)
    assert len(stats["m"].routes) == MAX_ROUTES and "/r30" in stats["m"].routes and "/r31" not in stats["m"].routes
    other = ok.routes["other"].requests + error.routes["other"].requests
    assert other == 6 + 1                                                               # /r31.. and 404
    assert set(ok.routes) | set(error.routes) == stats["m"].routes | {"other"}
    assert ok.batch_size.count + error.batch_size.count == 3 + MAX_ROUTES + 5 + 2       # every call, any route
    assert set(stats["other-model"].outcomes["ok"].routes) == {"/z"}


def test_record_updates_statistics_and_profiles() -> None:
    recorder = Recorder()
    recorder.record("fraud", "python", np.ones((4, 3)), np.zeros(4), 0.01, None, "ok", 1)
    recorder.record("fraud", "python", np.ones((2, 3)), None, 0.02, None, "error", 1)
    state = recorder.states()[0]
    assert state.stats.outcomes["ok"].batch_size.sum == 4 and state.stats.outcomes["error"].requests == 1
    profiles = {profile.signal: profile for profile in recorder.close(1e9)}
    assert profiles["input"].rows == 6 and profiles["prediction"].rows == 4


class Exploding:
    def __array__(self, *args: object, **kwargs: object) -> np.ndarray:
        raise RuntimeError("boom")


def test_failing_or_unexpected_inputs_are_counted_and_the_call_still_recorded() -> None:
    recorder = Recorder()
    recorder.record("m", "python", Exploding(), np.ones(2), 0.001, None, "ok", 1)
    recorder.record("m", "python", object(), {1, 2}, 0.001, None, "ok", 1)
    state = recorder.states()[0]
    assert state.stats.outcomes["ok"].requests == 2
    assert errors.counts() == {"extract.input": 1, "unsupported.input": 1, "unsupported.prediction": 1}
    assert [p.signal for p in recorder.close(1e9)] == ["prediction"]


def test_models_are_bounded_and_names_cleaned() -> None:
    recorder = Recorder()
    for i in range(MAX_MODELS + 3):
        recorder.record(f"m{i}", "python", None, None, None, None, "ok", 1)
    assert len(recorder.states()) == MAX_MODELS and errors.counts()["model.limit"] == 3
    other = Recorder()
    other.record("x" * 1000, "python", None, None, None, None, "ok", 1)
    other.record("", "python", None, None, None, None, "ok", 1)
    assert sorted(len(s.name) for s in other.states()) == [7, 256]           # "default", truncated


def test_concurrent_calls_are_all_counted() -> None:
    recorder = Recorder()
    calls, threads = 2000, 8

    def serve() -> None:
        row = np.ones((1, 4))
        for _ in range(calls):
            recorder.record("m", "python", row, np.ones(1), 0.001, None, "ok", 1)

    workers = [threading.Thread(target=serve) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    state = recorder.states()[0]
    assert state.stats.outcomes["ok"].requests == calls * threads
    profiles = recorder.close(1e9)
    assert all(p.rows == calls * threads for p in profiles)
    assert all(c.count == calls * threads for p in profiles for c in p.columns.values())


def test_queue_time_accumulates_only_positive_finite_seconds() -> None:
    recorder = Recorder()
    for seconds in (0.5, -1.0, float("inf"), float("nan"), 0.25):
        recorder.add_queue_time("m", "python", seconds)
    assert recorder.states()[0].queue_seconds == 0.75


def test_rows_without_requests_count_no_call() -> None:
    recorder = Recorder()
    for chunk in (np.ones((3, 2)), np.zeros((2, 2))):                    # a handler's chunks, rows only
        recorder.record("m", "python", chunk, np.ones(len(chunk)), 0.5, None, "ok", None)
    recorder.record("m", "python", None, None, 0.01, 5, "ok", 5)          # the call itself, once
    state = recorder.states()[0]
    ok = state.stats.outcomes["ok"]
    assert (ok.requests, ok.duration.count, ok.batch_size.count, ok.batch_size.sum) == (5, 5, 1, 5)
    assert ok.duration.high == ok.duration.low == 0.01 and ok.batch_size.low == 5   # the chunks left no trace
    assert state.calls == 3
    assert {p.signal: p.rows for p in recorder.close(1e9)} == {"input": 5, "prediction": 5}


def test_totals_change_with_every_call_queue_time_and_failure() -> None:
    recorder = Recorder()
    before = recorder.totals()
    recorder.record("m", "python", np.ones((1, 2)), None, None, None, "ok", None)
    after_rows = recorder.totals()
    recorder.add_queue_time("m", "python", 0.5)
    after_queue = recorder.totals()
    errors.report("test.kind")
    assert len({before, after_rows, after_queue, recorder.totals()}) == 4
    assert recorder.totals() == recorder.totals()
