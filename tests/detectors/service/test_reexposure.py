"""OTLP metrics re-exposed for Prometheus: the contract names, temporality, histograms, limits, expiry.

Points come from the real OpenTelemetry SDK (a MeterProvider with an in-memory reader) through the real OTLP
protobuf encoder, as a serving process would send them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families
from servewatch.detectors.service.prometheus import Exposition
from servewatch.detectors.service.prometheus_names import label_name, metric_name
from servewatch.detectors.service.reexposure import MetricLimits, OtlpMetrics

DELTA = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA,
         UpDownCounter: AggregationTemporality.DELTA}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _provider(instance: str, *, delta: bool = False, views: tuple[View, ...] = ()) -> tuple[MeterProvider,
                                                                                          InMemoryMetricReader]:
    reader = InMemoryMetricReader(preferred_temporality=DELTA if delta else None)
    resource = Resource.create({"service.name": "fraud-server", "service.instance.id": instance, "host.name": "h1"})
    return MeterProvider(metric_readers=[reader], resource=resource, views=list(views)), reader


def _request(reader: InMemoryMetricReader) -> ExportMetricsServiceRequest:
    return ExportMetricsServiceRequest.FromString(encode_metrics(reader.get_metrics_data()).SerializeToString())


def _scrape(metrics: OtlpMetrics) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    exposition = Exposition()
    exposition.register(metrics)
    body, _ = exposition.render()
    samples: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.name, sample.labels, sample.value))
    return samples


@pytest.fixture
def clock() -> Iterator[Clock]:
    yield Clock()


def test_the_serving_metrics_of_the_contract_get_their_prometheus_names(clock: Clock) -> None:
    provider, reader = _provider("replica-1")
    meter = provider.get_meter("servewatch", "0.1.0")
    attributes = {"ml.model.name": "fraud", "ml.framework": "torchserve", "outcome": "ok"}
    meter.create_histogram("servewatch.inference.duration", unit="s").record(0.012, attributes)
    meter.create_counter("servewatch.inference.requests", unit="{request}").add(3, attributes)
    meter.create_histogram("servewatch.inference.batch.size", unit="{item}").record(8, {"ml.model.name": "fraud"})
    meter.create_counter("servewatch.inference.queue.time", unit="s").add(0.5, {"ml.model.name": "fraud"})
    for name in ("input.values", "input.missing", "input.invalid"):
        meter.create_counter(f"servewatch.{name}").add(10, {"ml.model.name": "fraud", "ml.feature.name": "amount"})
    meter.create_counter("servewatch.prediction.values").add(4, {"ml.model.name": "fraud"})
    meter.create_counter("servewatch.prediction.class").add(2, {"ml.model.name": "fraud",
                                                                "ml.prediction.class": "fraud"})
    meter.create_counter("servewatch.instrumentation.errors").add(1)

    def gpu(options: CallbackOptions) -> list[Observation]:
        return [Observation(0.75, {"hw.id": "gpu0"})]

    meter.create_observable_gauge("hw.gpu.utilization", [gpu], unit="1")
    meter.create_up_down_counter("hw.gpu.memory.usage", unit="By").add(2**30, {"hw.id": "gpu0"})
    meter.create_observable_gauge("hw.gpu.memory.limit", [lambda options: [Observation(2**34, {"hw.id": "gpu0"})]],
                                  unit="By")
    metrics = OtlpMetrics(clock=clock)
    outcome = metrics.ingest(_request(reader))
    assert outcome.rejected == 0, outcome.error_message
    samples = _scrape(metrics)
    for name in ("servewatch_inference_duration_seconds_bucket", "servewatch_inference_duration_seconds_sum",
                 "servewatch_inference_duration_seconds_count", "servewatch_inference_requests_total",
                 "servewatch_inference_batch_size_bucket", "servewatch_inference_queue_time_seconds_total",
                 "servewatch_input_values_total", "servewatch_input_missing_total", "servewatch_input_invalid_total",
                 "servewatch_prediction_values_total", "servewatch_prediction_class_total",
                 "hw_gpu_utilization_ratio", "hw_gpu_memory_usage_bytes", "hw_gpu_memory_limit_bytes",
                 "servewatch_instrumentation_errors_total", "target_info"):
        assert name in samples, name
    (_, labels, value), = samples["servewatch_inference_requests_total"]
    assert value == 3
    assert labels == {"ml_model_name": "fraud", "ml_framework": "torchserve", "outcome": "ok", "job": "fraud-server",
                      "instance": "replica-1", "otel_scope_name": "servewatch", "otel_scope_version": "0.1.0"}
    assert samples["hw_gpu_utilization_ratio"][0][1]["hw_id"] == "gpu0"
    assert samples["servewatch_prediction_class_total"][0][1]["ml_prediction_class"] == "fraud"
    assert samples["target_info"][0][1] == {"job": "fraud-server", "instance": "replica-1", "host_name": "h1",
                                            "telemetry_sdk_language": "python", "telemetry_sdk_name": "opentelemetry",
                                            "telemetry_sdk_version": samples["target_info"][0][1][
                                                "telemetry_sdk_version"]}
    buckets = {labels["le"]: value for _, labels, value in samples["servewatch_inference_duration_seconds_bucket"]}
    assert buckets["+Inf"] == 1 and buckets["0.0"] == 0 and buckets["5.0"] == 1   # the SDK's default bounds


def test_deltas_accumulate_and_each_instance_is_its_own_series(clock: Clock) -> None:
    metrics = OtlpMetrics(clock=clock)
    for instance in ("replica-1", "replica-2"):
        provider, reader = _provider(instance, delta=True)
        meter = provider.get_meter("servewatch")
        requests = meter.create_counter("servewatch.inference.requests")
        duration = meter.create_histogram("servewatch.inference.duration", unit="s")
        in_flight = meter.create_up_down_counter("servewatch.inflight")
        for batch in (5, 7):
            requests.add(batch, {"ml.model.name": "fraud"})
            duration.record(0.2, {"ml.model.name": "fraud"})
            in_flight.add(batch - 6)
            assert metrics.ingest(_request(reader)).rejected == 0
    samples = _scrape(metrics)
    totals = {labels["instance"]: value for _, labels, value in samples["servewatch_inference_requests_total"]}
    assert totals == {"replica-1": 12.0, "replica-2": 12.0}
    counts = [value for _, labels, value in samples["servewatch_inference_duration_seconds_count"]]
    assert counts == [2.0, 2.0]
    assert sorted(value for _, _, value in samples["servewatch_inflight"]) == [0.0, 0.0]   # -1 then +1


def test_exponential_histograms_become_classic_buckets(clock: Clock) -> None:
    view = View(instrument_name="*", aggregation=ExponentialBucketHistogramAggregation(max_size=20))
    metrics = OtlpMetrics(clock=clock)
    provider, reader = _provider("replica-1", delta=True, views=(view,))
    duration = provider.get_meter("servewatch").create_histogram("servewatch.inference.duration", unit="s")
    values = [0.001 * 1.5**i for i in range(25)]
    for value in values[:10]:
        duration.record(value)
    assert metrics.ingest(_request(reader)).rejected == 0
    for value in values[10:]:   # a wider range: the SDK lowers the scale of this delta; the merge follows
        duration.record(value)
    duration.record(0.0)
    assert metrics.ingest(_request(reader)).rejected == 0
    samples = _scrape(metrics)
    buckets = [(float(labels["le"]), value)
               for _, labels, value in samples["servewatch_inference_duration_seconds_bucket"]]
    bounds = [bound for bound, _ in buckets]
    assert bounds == sorted(bounds) and len(bounds) == len(set(bounds)) and bounds[-1] == float("inf")
    assert [count for _, count in buckets] == sorted(count for _, count in buckets)
    assert buckets[-1][1] == 26 and samples["servewatch_inference_duration_seconds_count"][0][2] == 26
    for value in values:   # every value is counted at or below the first bound at or above it, within a bucket
        at_bound = next(count for bound, count in buckets if bound >= value)
        below = sum(1 for v in values + [0.0] if v <= value)
        assert at_bound >= below
    assert abs(samples["servewatch_inference_duration_seconds_sum"][0][2] - sum(values)) < 1e-9


def test_conflicts_limits_staleness_and_expiry_are_counted_never_silent(clock: Clock) -> None:
    metrics = OtlpMetrics(limits=MetricLimits(max_series=3), expire_after=60.0, clock=clock)
    provider, reader = _provider("replica-1")
    meter = provider.get_meter("servewatch")
    meter.create_counter("jobs").add(1)
    meter.create_observable_gauge("jobs_total", [lambda options: [Observation(1.0)]])   # the counter writes jobs_total
    counter = meter.create_counter("work")
    for shard in range(4):
        counter.add(1, {"shard": str(shard)})
    outcome = metrics.ingest(_request(reader))
    assert outcome.accepted == 3 and outcome.rejected == 3
    assert outcome.reasons == {"series_limit": 2, "type_conflict": 1}
    assert metrics.series_count == 3 and "more than 3 series" in outcome.error_message
    clock.now += 61
    assert _scrape(metrics) == {}
    assert metrics.series_count == 0 and sum(metrics.rejected.values()) == 3 and metrics.received == 6


def test_unspecified_temporality_and_inconsistent_histograms_are_rejected(clock: Clock) -> None:
    from opentelemetry.proto.metrics.v1.metrics_pb2 import (
        Histogram as OtlpHistogram,
    )
    from opentelemetry.proto.metrics.v1.metrics_pb2 import (
        HistogramDataPoint,
        Metric,
        NumberDataPoint,
        ResourceMetrics,
        ScopeMetrics,
        Sum,
    )

    request = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=[
        Metric(name="a", sum=Sum(data_points=[NumberDataPoint(as_int=1)], is_monotonic=True)),
        Metric(name="b", histogram=OtlpHistogram(aggregation_temporality=2, data_points=[
            HistogramDataPoint(count=3, bucket_counts=[1, 1], explicit_bounds=[1.0, 2.0])])),
        Metric(name="c", histogram=OtlpHistogram(aggregation_temporality=2, data_points=[
            HistogramDataPoint(count=3, bucket_counts=[1, 1, 1], explicit_bounds=[2.0, 1.0])])),
        Metric(name="d"),
    ])])])
    outcome = OtlpMetrics(clock=clock).ingest(request)
    assert outcome.accepted == 0 and outcome.reasons == {"temporality": 1, "malformed": 3}


@pytest.mark.parametrize("name,unit,kind,expected", [
    ("servewatch.inference.duration", "s", "histogram", "servewatch_inference_duration_seconds"),
    ("http.server.request.duration", "ms", "histogram", "http_server_request_duration_milliseconds"),
    ("servewatch.inference.requests", "{request}", "counter", "servewatch_inference_requests"),
    ("hw.gpu.utilization", "1", "gauge", "hw_gpu_utilization_ratio"),
    ("errors.ratio", "1", "counter", "errors_ratio"),
    ("net.io", "By/s", "gauge", "net_io_bytes_per_second"),
    ("disk.free", "%", "gauge", "disk_free_percent"),
    ("requests_total", "", "counter", "requests"),
    ("latency_seconds", "s", "histogram", "latency_seconds"),
    ("2fast..4you", "", "gauge", "_2fast_4you"),
])
def test_metric_names(name: str, unit: str, kind: str, expected: str) -> None:
    assert metric_name(name, unit, kind) == expected


def test_label_names() -> None:
    assert label_name("ml.model.name") == "ml_model_name"
    assert label_name("http.response.status_code") == "http_response_status_code"
    assert label_name("0day") == "key_0day"


def _gauges(series: int, *, labels: int, key: str = "k", value: str = "v") -> ExportMetricsServiceRequest:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics

    points = [NumberDataPoint(as_double=1.0, attributes=[
        KeyValue(key=f"{key}{i}", value=AnyValue(string_value=f"{value}{n}")) for i in range(labels)])
        for n in range(series)]
    return ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=[
        Metric(name="flood", gauge=Gauge(data_points=points))])])])


def test_label_names_labels_and_exposition_bytes_are_bounded_and_counted(clock: Clock) -> None:
    limits = MetricLimits(max_labels=8, max_name=32, max_value=16, max_bytes=50_000)
    metrics = OtlpMetrics(limits=limits, clock=clock)
    outcome = metrics.ingest(_gauges(3, labels=2, key="k" * 40))                  # label names too long
    assert outcome.reasons == {"name_limit": 3} and "at most 32" in outcome.error_message
    outcome = metrics.ingest(_gauges(2, labels=7))                                # 7 + job + instance > 8
    assert outcome.reasons == {"labels_limit": 2}
    outcome = metrics.ingest(_gauges(1, labels=2, value="v" * 100))               # values are cut, not refused
    assert outcome.accepted == 1 and {len(value) for value in metrics.collect()[0].samples[0].labels.values()} \
        <= {0, 16}
    long_name = _gauges(1, labels=1)
    long_name.resource_metrics[0].scope_metrics[0].metrics[0].name = "m" * 300
    assert metrics.ingest(long_name).reasons == {"name_limit": 1}
    outcome = metrics.ingest(_gauges(2000, labels=6, value="x" * 10))            # far more than 50 kB of series
    assert outcome.accepted > 0 and outcome.reasons["bytes_limit"] == 2000 - outcome.accepted
    exposition = Exposition()
    exposition.register(metrics)
    page, _ = exposition.render()
    assert metrics.bytes <= limits.max_bytes and len(page) <= limits.max_bytes, (metrics.bytes, len(page))
    assert metrics.rejected == {"name_limit": 4, "labels_limit": 2, "bytes_limit": outcome.reasons["bytes_limit"]}
    clock.now += 601                                                              # expiry gives the bytes back
    assert _scrape(metrics) == {} and metrics.bytes == 0
