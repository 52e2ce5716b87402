"""The runtime's metrics pipeline carries what bridges register, in one export under the process's identity."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opentelemetry.metrics import Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics.export import AggregationTemporality, Histogram, HistogramDataPoint, Metric
from servewatch.instrumentation import bridges, errors, flush, record, register_metrics, runtime

pytestmark = pytest.mark.integration


@pytest.fixture
def serving(receiver: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_runtime: None) -> Iterator[Any]:
    """A runtime in this process exporting metrics to ``receiver`` (profiles to a spool); no periodic export."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("SERVEWATCH_SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("SERVEWATCH_PROFILE_INTERVAL", "3600")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000")
    monkeypatch.setattr(bridges, "_metric_sources", [])
    yield receiver


def produced() -> list[Metric]:
    point = HistogramDataPoint(attributes={"ml.model.name": "m"}, start_time_unix_nano=1, time_unix_nano=2, count=2,
                               sum=0.5, bucket_counts=[2, 0], explicit_bounds=[1.0], min=0.2, max=0.3)
    return [Metric(name="bridge.duration", description="", unit="s",
                   data=Histogram(data_points=[point], aggregation_temporality=AggregationTemporality.CUMULATIVE))]


def scopes_of(receiver: Any) -> list[tuple[str, dict[str, Any], list[str]]]:
    """``(service.instance.id, {scope name: [metric names]})`` of every metrics request received."""
    requests = []
    for received in receiver.of("/v1/metrics"):
        message = ExportMetricsServiceRequest()
        message.ParseFromString(received.body)
        for resource_metrics in message.resource_metrics:
            instance = next(kv.value.string_value for kv in resource_metrics.resource.attributes
                            if kv.key == "service.instance.id")
            requests.append((instance, {scope.scope.name: sorted(m.name for m in scope.metrics)
                                        for scope in resource_metrics.scope_metrics}))
    return requests


def test_registered_metrics_leave_with_the_runtimes_own(serving: Any) -> None:
    def setup(meter: Any) -> None:
        meter.create_observable_counter("servewatch.inference.requests",   # the runtime's name, another scope
                                        [lambda options: [Observation(7, {"ml.model.name": "remote"})]])

    def broken() -> list[Metric]:
        raise ConnectionError("the framework's endpoint is down")

    register_metrics(setup, produce=produced, scope="servewatch.test")    # before the runtime starts
    record("m", np.ones((2, 2)), np.ones(2), duration=0.01)
    register_metrics(produce=broken, scope="servewatch.broken")           # after: taken at the next cycle
    register_metrics(lambda meter: meter.create_observable_gauge("late.gauge", [lambda o: [Observation(1.5)]]),
                     scope="servewatch.late")
    assert flush(10.0)
    ((instance, scopes),) = scopes_of(serving)                            # one pipeline, one request
    assert instance == runtime.active().instance_id
    assert scopes["servewatch.test"] == ["bridge.duration", "servewatch.inference.requests"]
    assert scopes["servewatch.late"] == ["late.gauge"] and "servewatch.broken" not in scopes
    assert "servewatch.inference.requests" in scopes["servewatch"]
    requests = {attributes["ml.model.name"]: point.as_int
                for attributes, point, _ in serving.metric_points("servewatch.inference.requests")}
    assert requests == {"m": 1, "remote": 7}                               # neither instrument hides the other
    assert errors.counts() == {"metrics.source": 1}


def test_nothing_is_registered_without_a_metrics_exporter(serving: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    calls: list[Any] = []
    register_metrics(calls.append, produce=lambda: calls.append("produce") or [], scope="servewatch.test")
    record("m", np.ones((1, 2)))
    assert flush(10.0) and calls == [] and serving.of("/v1/metrics") == []
