"""The :8002 mapping: Triton's Prometheus text -> servewatch's instruments, through a real metrics pipeline."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import Resource
from servewatch.exporters.metrics import MetricsPipeline
from servewatch.instrumentation import errors
from servewatch.instrumentation.triton.metrics import TritonMetrics, parse_metrics
from support import Capture

TEXT = """\
# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="resnet",version="1"} 90
nv_inference_request_success{model="resnet",version="2"} 10
nv_inference_request_success{model="bert",version="1"} 7
# TYPE nv_inference_request_failure counter
nv_inference_request_failure{model="resnet",reason="OTHER",version="1"} 1
nv_inference_request_failure{model="resnet",reason="BACKEND",version="1"} 2
nv_inference_request_failure{model="resnet",reason="REJECTED",version="2"} 3
nv_inference_count{model="resnet",version="1"} 400
nv_inference_exec_count{model="resnet",version="1"} 50
nv_inference_request_duration_us{model="resnet",version="1"} 2000000
nv_inference_queue_duration_us{model="resnet",version="1"} 250000
nv_inference_queue_duration_us{model="bert",version="1"} 1000
nv_inference_compute_input_duration_us{model="resnet",version="1"} 10000
nv_inference_compute_infer_duration_us{model="resnet",version="1"} 1500000
nv_inference_compute_output_duration_us{model="resnet",version="1"} 20000
nv_inference_pending_request_count{model="resnet",version="1"} 4
# TYPE nv_gpu_utilization gauge
nv_gpu_utilization{gpu_uuid="GPU-8b2ac6ff-0dc7-4f21-9f0d-1e1f0b2a7c11"} 0.75
nv_gpu_memory_total_bytes{gpu_uuid="GPU-8b2ac6ff-0dc7-4f21-9f0d-1e1f0b2a7c11"} 85899345920
nv_gpu_memory_used_bytes{gpu_uuid="GPU-8b2ac6ff-0dc7-4f21-9f0d-1e1f0b2a7c11"} 4294967296
nv_cpu_utilization 0.5
nv_inference_count{model="weird \\"name\\"",version="1"} 3
nv_inference_count{model="nan",version="1"} NaN
nv_inference_count{model="garbage",version="1"} twelve
nv_inference_count{version="1"} 5
this line is not prometheus text
"""


def collected(metrics: TritonMetrics) -> Capture:
    capture = Capture()
    pipeline = MetricsPipeline(Resource.create({}), capture, producers=[metrics.produce])
    metrics.register(pipeline.meter())
    pipeline.collect()
    return capture


def test_parse_sums_versions_and_reasons_and_skips_what_it_cannot_read() -> None:
    snapshot = parse_metrics(TEXT)
    resnet = snapshot.models["resnet"]
    assert (resnet.success, resnet.failure, resnet.inferences, resnet.executions) == (100, 6, 400, 50)
    assert (resnet.request_us, resnet.queue_us) == (2_000_000, 250_000)
    assert (resnet.input_us, resnet.infer_us, resnet.output_us) == (10_000, 1_500_000, 20_000)
    assert snapshot.models["weird \"name\""].inferences == 3
    assert "nan" not in snapshot.models and "garbage" not in snapshot.models
    gpu = snapshot.gpus["GPU-8b2ac6ff-0dc7-4f21-9f0d-1e1f0b2a7c11"]
    assert (gpu.utilization, gpu.memory_used, gpu.memory_total) == (0.75, 4294967296, 85899345920)
    assert parse_metrics("").models == {} and parse_metrics("\x00\xff{}").gpus == {}


def test_parse_reads_well_formed_text_whole_as_it_reads_bad_text_line_by_line() -> None:
    readable = "".join(line + "\n" for line in TEXT.splitlines()
                       if "twelve" not in line and "not prometheus" not in line)
    assert parse_metrics(readable) == parse_metrics(TEXT)      # the TYPE lines make no difference to the figures


def test_queue_seconds_for_the_watched_models_only() -> None:
    bridge = TritonMetrics("http://unused", models={"resnet"}, read=lambda url: TEXT)
    assert bridge.queue_seconds() == {"resnet": 0.25}
    watched: set[str] = set()
    dynamic = TritonMetrics("http://unused", models=lambda: watched, read=lambda url: TEXT)
    assert dynamic.queue_seconds() == {}
    watched.add("bert")
    assert dynamic.queue_seconds() == {"bert": 0.001}
    assert TritonMetrics("http://unused", read=lambda url: TEXT).queue_seconds().keys() >= {"resnet", "bert"}


def test_instruments_under_servewatch_names() -> None:
    capture = collected(TritonMetrics("http://unused", models={"resnet"}, requests=True, read=lambda url: TEXT))
    base = {"ml.model.name": "resnet", "ml.framework": "triton"}
    compute = {attributes["phase"]: point.value for attributes, point in capture.points("servewatch.inference.compute.time")}
    assert compute == pytest.approx({"input": 0.01, "infer": 1.5, "output": 0.02})
    requests = {attributes["outcome"]: point.value for attributes, point in capture.points("servewatch.inference.requests")}
    assert requests == {"ok": 100, "error": 6}
    (attributes, duration), = capture.points("servewatch.inference.duration")
    assert attributes == {**base, "outcome": "ok"}
    assert (duration.count, duration.sum, list(duration.bucket_counts), list(duration.explicit_bounds)) == (100, 2.0, [100], [])
    (attributes, batch), = capture.points("servewatch.inference.batch.size")
    assert (batch.count, batch.sum) == (50, 400)                     # mean batch 8
    gpu = "GPU-8b2ac6ff-0dc7-4f21-9f0d-1e1f0b2a7c11"
    assert capture.points("hw.gpu.utilization")[0][0] == {"hw.id": gpu}
    assert capture.points("hw.gpu.utilization")[0][1].value == 0.75
    assert capture.points("hw.gpu.memory.usage")[0][1].value == 4294967296
    assert capture.points("hw.gpu.memory.limit")[0][1].value == 85899345920
    assert capture.points("servewatch.inference.queue.time") == []   # queue time goes through the core


def test_without_requests_the_hooks_own_those_series() -> None:
    capture = collected(TritonMetrics("http://unused", models={"resnet"}, read=lambda url: TEXT))
    assert capture.points("servewatch.inference.compute.time")
    for name in ("servewatch.inference.requests", "servewatch.inference.duration", "servewatch.inference.batch.size"):
        assert capture.points(name) == []


def test_delta_histograms_follow_the_counters_and_survive_a_server_restart() -> None:
    texts = [TEXT, TEXT.replace("} 90\n", "} 95\n").replace("} 2000000\n", "} 2500000\n"),
             'nv_inference_request_success{model="resnet",version="1"} 3\n'
             'nv_inference_request_duration_us{model="resnet",version="1"} 30000\n']
    bridge = TritonMetrics("http://unused", models={"resnet"}, requests=True, delta=True, read=lambda url: texts[0])
    first = {metric.name: metric for metric in bridge.produce()}
    assert first["servewatch.inference.duration"].data.data_points[0].count == 100
    texts.pop(0)
    bridge._read_at = float("-inf")
    second = {metric.name: metric for metric in bridge.produce()}
    point = second["servewatch.inference.duration"].data.data_points[0]
    assert (point.count, point.sum) == (5, pytest.approx(0.5))
    assert "servewatch.inference.batch.size" not in second      # no new executions: no point
    texts.pop(0)
    bridge._read_at = float("-inf")
    third = {metric.name: metric for metric in bridge.produce()}
    point = third["servewatch.inference.duration"].data.data_points[0]
    assert (point.count, point.sum) == (3, pytest.approx(0.03))


def test_an_unreachable_endpoint_reports_nothing_and_counts_the_failure() -> None:
    errors.reset()

    def refuse(url: str) -> str:
        raise ConnectionRefusedError(url)

    bridge = TritonMetrics("http://127.0.0.1:9/metrics", requests=True, read=refuse)
    assert bridge.queue_seconds() == {}
    capture = collected(bridge)
    assert capture.points("servewatch.inference.compute.time") == []
    assert errors.counts().get("triton.metrics", 0) >= 1
    errors.reset()


def test_readings_are_shared_within_a_collection() -> None:
    reads: list[str] = []

    def read(url: str) -> str:
        reads.append(url)
        return TEXT

    collected(TritonMetrics("http://unused", requests=True, read=read))
    assert len(reads) == 1


def test_bucketless_histograms_encode_as_otlp() -> None:
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

    capture = collected(TritonMetrics("http://unused", models={"resnet"}, requests=True, read=lambda url: TEXT))
    request = encode_metrics(capture.exports[-1])
    histograms = {metric.name: metric.histogram.data_points[0] for scope in request.resource_metrics[0].scope_metrics
                  for metric in scope.metrics if metric.HasField("histogram")}
    duration = histograms["servewatch.inference.duration"]
    assert (duration.count, duration.sum, list(duration.bucket_counts)) == (100, 2.0, [100])
    assert not duration.HasField("min") and not duration.HasField("max")


def test_gpu_gauges_can_be_left_to_nvml() -> None:
    capture = collected(TritonMetrics("http://unused", gpus=False, read=lambda url: TEXT))
    assert capture.points("hw.gpu.utilization") == [] and capture.points("servewatch.inference.compute.time")
