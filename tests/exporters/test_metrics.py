"""The driven metrics pipeline and the process resource."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from opentelemetry import metrics
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics.export import AggregationTemporality, Histogram, HistogramDataPoint, Metric
from opentelemetry.sdk.resources import Resource
from servewatch.exporters.metrics import MetricsPipeline, otlp_metric_exporter
from servewatch.exporters.resource import process_resource


def histogram() -> Metric:
    point = HistogramDataPoint(attributes={"ml.model.name": "m"}, start_time_unix_nano=1, time_unix_nano=2, count=3,
                               sum=0.3, bucket_counts=[1, 2, 0], explicit_bounds=[0.1, 0.2], min=0.05, max=0.15)
    return Metric(name="servewatch.inference.duration", description="", unit="s",
                  data=Histogram(data_points=[point], aggregation_temporality=AggregationTemporality.CUMULATIVE))


@pytest.mark.integration
def test_collect_exports_callbacks_and_producers_over_otlp_http(receiver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    threads = threading.active_count()
    pipeline = MetricsPipeline(process_resource(framework="python", instance_id="i-1"), otlp_metric_exporter(),
                               producers=[lambda: [histogram()]])
    pipeline.meter().create_observable_counter("servewatch.inference.requests",
                                               [lambda options: [Observation(7, {"ml.model.name": "m"})]])
    time.sleep(0.2)
    assert receiver.requests == [] and threading.active_count() == threads       # no thread, no export of its own
    pipeline.collect()
    (attributes, point, resource), = receiver.metric_points("servewatch.inference.requests")
    assert point.as_int == 7 and resource["service.instance.id"] == "i-1"
    (_, duration, _), = receiver.metric_points("servewatch.inference.duration")
    assert list(duration.bucket_counts) == [1, 2, 0] and duration.count == 3
    assert receiver.metric_names() == {"servewatch.inference.requests", "servewatch.inference.duration"}
    pipeline.shutdown()
    assert type(metrics.get_meter_provider()).__name__.startswith("_Proxy")        # never made global


@pytest.mark.integration
def test_a_failed_export_is_reported(receiver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", receiver.endpoint + "/v1/metrics")
    receiver.status = 400
    failures: list[int] = []
    pipeline = MetricsPipeline(Resource.create({}), otlp_metric_exporter(), producers=[lambda: [histogram()]],
                               on_failure=lambda: failures.append(1))
    pipeline.collect()
    assert failures == [1]
    pipeline.shutdown()


def test_resource_names_the_service_and_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = process_resource(framework="torchserve"), process_resource(framework="torchserve")
    assert first.attributes["service.name"] == "torchserve" and first.attributes["ml.framework"] == "torchserve"
    assert first.attributes["service.instance.id"] != second.attributes["service.instance.id"]
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,service.name=from-attributes")
    assert process_resource(framework="python").attributes["service.name"] == "from-attributes"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "fraud-api")
    named = process_resource(framework="python")
    assert named.attributes["service.name"] == "fraud-api" and named.attributes["deployment.environment"] == "prod"
