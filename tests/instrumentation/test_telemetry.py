"""The recorder's state as OpenTelemetry metrics: names, attributes and values of the contract."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.resources import Resource
from servewatch.exporters.metrics import MetricsPipeline
from servewatch.instrumentation.guard import errors
from servewatch.instrumentation.recorder import Recorder
from servewatch.instrumentation.telemetry import Telemetry
from support import Capture


def pipeline(recorder: Recorder, sources: list[Any] | None = None, delta: bool = False) -> tuple[MetricsPipeline, Capture]:
    telemetry = Telemetry(recorder, queue_sources=sources, delta_histograms=delta)
    capture = Capture()
    built = MetricsPipeline(Resource.create({"service.name": "t"}), capture, producers=[telemetry.produce])
    telemetry.register(built.meter())
    return built, capture


@pytest.fixture(autouse=True)
def _fresh_errors() -> None:
    errors.reset()


def test_request_level_metrics() -> None:
    recorder = Recorder()
    metrics, capture = pipeline(recorder)
    recorder.record("fraud", "python", np.ones((8, 2)), np.ones(8), 0.003, None, "ok", 8)
    recorder.record("fraud", "python", np.ones((1, 2)), None, 0.2, None, "error", 1)
    metrics.collect()
    base = {"ml.model.name": "fraud", "ml.framework": "python"}
    requests = {attrs["outcome"]: point.value for attrs, point in capture.points("servewatch.inference.requests")}
    assert requests == {"ok": 8, "error": 1}
    durations = {attrs["outcome"]: point for attrs, point in capture.points("servewatch.inference.duration")}
    assert durations["ok"].count == 8 and durations["ok"].sum == pytest.approx(0.024)
    assert durations["error"].max == 0.2 and list(durations["ok"].explicit_bounds)[:3] == [0.0005, 0.001, 0.0025]
    batches = {attrs["outcome"]: point for attrs, point in capture.points("servewatch.inference.batch.size")}
    assert batches["ok"].sum == 8 and batches["error"].sum == 1
    assert all({**base}.items() <= attrs.items() for attrs, _ in capture.points("servewatch.inference.requests"))


def test_feature_prediction_class_and_error_counters() -> None:
    recorder = Recorder()
    metrics, capture = pipeline(recorder)
    inputs = [{"amount": 1.0, "country": "DE"}, {"amount": None, "country": ["bad"]}]
    recorder.record("m", "python", inputs, np.array([[0.9, 0.1], [0.2, 0.8]]), 0.001, None, "ok", 2)
    errors.report("extract.input")
    metrics.collect()

    def by_feature(name: str) -> dict[str, int]:
        return {attrs["ml.feature.name"]: point.value for attrs, point in capture.points(name)}

    assert by_feature("servewatch.input.values") == {"amount": 2, "country": 2}
    assert by_feature("servewatch.input.missing") == {"amount": 1, "country": 0}
    assert by_feature("servewatch.input.invalid") == {"amount": 0, "country": 1}
    assert by_feature("servewatch.prediction.values") == {"class": 2, "score": 2}
    classes = {attrs["ml.prediction.class"]: point.value for attrs, point in capture.points("servewatch.prediction.class")}
    assert classes == {"0": 1, "1": 1}
    assert [(attrs, point.value) for attrs, point in capture.points("servewatch.instrumentation.errors")] == \
        [({"error.type": "extract.input"}, 1)]
    recorder.close(1e9)                                   # counters keep counting across profile intervals
    recorder.record("m", "python", [{"amount": 2.0, "country": "FR"}], None, 0.001, None, "ok", 1)
    metrics.collect()
    assert by_feature("servewatch.input.values") == {"amount": 3, "country": 3}


def test_queue_time_pushed_and_polled_from_a_framework_counter() -> None:
    recorder = Recorder()
    readings = iter([{"m": 10.0}, {"m": 12.5}, {"m": 1.0}])     # baseline, +2.5, restart (counts from zero)
    metrics, capture = pipeline(recorder, sources=[(lambda: next(readings), "triton")])
    recorder.add_queue_time("m", "triton", 0.5)
    values = []
    for _ in range(3):
        metrics.collect()
        values.append(capture.points("servewatch.inference.queue.time")[0][1].value)
    assert values == [0.5, 3.0, 4.0]
    metrics.collect()                                           # the source is exhausted: counted, nothing raised
    assert errors.counts()["queue_time"] == 1


def test_delta_histograms() -> None:
    recorder = Recorder()
    metrics, capture = pipeline(recorder, delta=True)
    recorder.record("m", "python", None, None, 0.01, 4, "ok", 1)
    metrics.collect()
    recorder.record("m", "python", None, None, 0.5, 4, "ok", 1)
    recorder.record("m", "python", None, None, 0.3, 4, "ok", 1)
    metrics.collect()
    (attrs, point), = capture.points("servewatch.inference.duration")
    assert point.count == 2 and point.sum == pytest.approx(0.8) and (point.min, point.max) == (0.3, 0.5)
    metrics.collect()                                           # nothing new: no point
    assert capture.points("servewatch.inference.duration") == []


@pytest.mark.parametrize("delta", [False, True])
def test_an_export_counts_each_request_once_while_requests_keep_arriving(delta: bool) -> None:
    recorder = Recorder()
    metrics, capture = pipeline(recorder, delta=delta)
    recorder.record("m", "python", None, None, 0.01, 1, "ok", 1)

    def arriving(options: Any) -> list[Any]:   # served during the collection, after the request counter was read
        recorder.record("m", "python", None, None, 0.02, 1, "ok", 1)
        return []

    metrics.meter().create_observable_gauge("test.arrival", [arriving])
    counted = 0
    for requests in (1, 2, 3):
        metrics.collect()
        ((_, counter),) = capture.points("servewatch.inference.requests")
        ((_, duration),) = capture.points("servewatch.inference.duration")
        counted += duration.count
        assert counter.value == requests and (counted if delta else duration.count) == requests


@pytest.mark.parametrize("delta", [False, True])
def test_routes_become_http_route_on_requests_and_durations_only(delta: bool) -> None:
    recorder = Recorder()
    metrics, capture = pipeline(recorder, delta=delta)
    recorder.record("m", "python", np.ones((2, 2)), np.ones(2), 0.01, None, "ok", 1)            # no route
    recorder.record("m", "python", np.ones((3, 2)), np.ones(3), 0.02, None, "ok", 3, "/score")
    recorder.record("m", "python", np.ones((1, 2)), None, 0.5, None, "error", 1, "/score")
    metrics.collect()

    def by_key(name: str) -> dict[tuple[str, str | None], Any]:
        points = {}
        for attributes, point in capture.points(name):
            assert set(attributes) - {"http.route"} == {"ml.model.name", "ml.framework", "outcome"}
            points[(attributes["outcome"], attributes.get("http.route"))] = point
        return points

    requests = {key: point.value for key, point in by_key("servewatch.inference.requests").items()}
    assert requests == {("ok", None): 1, ("ok", "/score"): 3, ("error", "/score"): 1}
    durations = by_key("servewatch.inference.duration")
    assert {key: point.count for key, point in durations.items()} == requests
    assert durations[("ok", "/score")].sum == pytest.approx(0.06) and durations[("error", "/score")].max == 0.5
    batches = {attrs["outcome"]: point.sum for attrs, point in capture.points("servewatch.inference.batch.size")}
    assert batches == {"ok": 5, "error": 1}                                                    # never by route
    assert all("http.route" not in attributes for name in ("servewatch.input.values", "servewatch.prediction.values")
               for attributes, _ in capture.points(name))
    recorder.record("m", "python", None, None, 0.02, 1, "ok", 1, "/score")
    metrics.collect()
    (point,) = [point for (outcome, route), point in by_key("servewatch.inference.duration").items()
                if (outcome, route) == ("ok", "/score")]
    assert point.count == (1 if delta else 4)


def test_routes_are_read_in_the_same_snapshot_as_the_request_counter() -> None:
    recorder = Recorder()
    metrics, capture = pipeline(recorder)

    def arriving(options: Any) -> list[Any]:   # served during the collection, after the request counter was read
        recorder.record("m", "python", None, None, 0.02, 1, "ok", 1, "/a")
        recorder.record("m", "python", None, None, 0.02, 1, "ok", 1, "/new")
        return []

    metrics.meter().create_observable_gauge("test.arrival", [arriving])
    recorder.record("m", "python", None, None, 0.02, 1, "ok", 1, "/a")
    for _ in range(3):
        metrics.collect()
        counters = {attrs["http.route"]: point.value
                    for attrs, point in capture.points("servewatch.inference.requests")}
        durations = {attrs["http.route"]: point.count
                     for attrs, point in capture.points("servewatch.inference.duration")}
        assert counters == durations
