"""The metric-name contract (servewatch.metrics) against what really runs: a DetectorService with a reference
and live profiles, scraped over HTTP, and the serving side's instruments read in memory, then sent to that
detector through the real OTLP exporter and scraped again under their Prometheus names."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families
from servewatch import metrics
from servewatch.detectors.service import DetectorService
from servewatch.detectors.service.prometheus_names import label_name, metric_name
from servewatch.exporters.metrics import MetricsPipeline
from servewatch.instrumentation.guard import errors
from servewatch.instrumentation.recorder import Recorder
from servewatch.instrumentation.telemetry import Telemetry
from servewatch.instrumentation.triton.metrics import TritonMetrics
from servewatch.profile import Profile
from servewatch.spec import parse_spec
from servewatch.wire import encode_profiles, parse_request
from support import Capture

T0 = 1_800_000_000.0
TRITON = """\
nv_inference_compute_infer_duration_us{model="resnet",version="1"} 1500000
nv_gpu_utilization{gpu_uuid="GPU-0"} 0.75
nv_gpu_memory_total_bytes{gpu_uuid="GPU-0"} 85899345920
nv_gpu_memory_used_bytes{gpu_uuid="GPU-0"} 4294967296
"""
ONLY_WHEN_SOMETHING_FAILS = {metrics.COLUMNS_DROPPED, metrics.MODEL_FAILURES, metrics.METRIC_POINTS_REJECTED}
"""Families the detector writes without samples until a store limit, a model's data or a metric point fails."""


def _live(model: str, end: float) -> Profile:
    profile = Profile(model=model, signal="input", start=end - 1, end=end, producer="q")
    profile.update({"amount": [1.0, 2.0]})
    return profile


def _data(rng: np.random.Generator, rows: int, shift: float) -> dict[str, object]:
    return {"amount": rng.normal(shift, 1.0, rows), "country": rng.choice(["US", "DE", "FR", "IT"], rows)}


@pytest.fixture
def detector(tmp_path: Path) -> Iterator[DetectorService]:
    reference = tmp_path / "fraud.pb"
    spec = parse_spec({"models": [{
        "name": "fraud",
        "features": [{"name": "amount", "rules": {"min": -2, "max": 2, "max_missing_ratio": 0.01}},
                     {"name": "country", "type": "categorical", "rules": {"allowed": ["US", "DE", "FR"]}}],
        "predictions": [{"name": "score"}],
        "reference": str(reference), "windows": ["5s"], "min_samples": 50,
        "volume": {"min": 1, "per": "5s"}}]})
    model = spec.model("fraud")
    rng = np.random.default_rng(1)
    reference.write_bytes(encode_profiles([
        Profile.from_data({"amount": rng.normal(0, 1, 2000), "country": rng.choice(["US", "DE", "FR"], 2000)},
                          model="fraud", spec=model),
        Profile.from_data({"score": rng.uniform(0, 1, 2000)}, model="fraud", signal="prediction", spec=model)]))
    now = [T0]
    service = DetectorService(spec, state_dir=tmp_path / "state", listen="127.0.0.1:0",
                              metrics_listen="127.0.0.1:0", interval="1h", bucket="1s", clock=lambda: now[0])
    service.start()
    sent = []
    for second in range(4):
        now[0] = T0 + second + 1
        inputs = Profile(model="fraud", signal="input", spec=model, start=now[0] - 1, end=now[0], producer="p",
                         sequence=2 * second)
        inputs.update(_data(rng, 200, 3.0))
        inputs.update({"amount": [None, float("nan"), "text"], "country": ["US", None, "US"]})
        predictions = Profile(model="fraud", signal="prediction", spec=model, start=now[0] - 1, end=now[0],
                              producer="p", sequence=2 * second + 1)
        predictions.update({"score": rng.uniform(0.5, 1, 200)})
        service.submit([inputs, predictions])
        sent.append(inputs)
    service.submit([Profile.from_data({"x": [1.0, 2.0]}, model="churn", start=now[0] - 1, end=now[0])])
    service.submit(sent[:1])                                             # delivered twice: a duplicate
    service.evaluate(now[0] + 0.5)
    yield service
    service.stop()


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/x-protobuf"})
    urllib.request.urlopen(request, timeout=5).close()


def _scrape(url: str) -> dict[str, tuple[str, list[dict[str, str]]]]:
    """Per series name as queried (counters with ``_total``, histograms by family): type and label sets."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    found: dict[str, tuple[str, list[dict[str, str]]]] = {}
    for family in text_string_to_metric_families(text):
        name = family.name + "_total" if family.type == "counter" else family.name
        found[name] = (family.type, [dict(sample.labels) for sample in family.samples
                                     if not sample.name.endswith("_created")])
    return found


def _serving() -> Capture:
    """Every serving-side instrument, read once into memory: the runtime's, and the Triton bridge's (compute
    time and the GPU gauges, from Triton's text)."""
    recorder = Recorder()
    telemetry = Telemetry(recorder)
    capture = Capture()
    pipeline = MetricsPipeline(Resource.create({"service.name": "fraud-server", "service.instance.id": "r1"}),
                               capture, producers=[telemetry.produce])
    telemetry.register(pipeline.meter())
    bridge = TritonMetrics("http://unused", models={"resnet"}, read=lambda url: TRITON)
    bridge.register(pipeline.meter("servewatch.triton"))
    recorder.record("fraud", "python", [{"amount": 1.0, "country": "DE"}, {"amount": None, "country": "FR"}],
                    np.array([[0.9, 0.1], [0.2, 0.8]]), 0.003, None, "ok", 2)
    recorder.add_queue_time("fraud", "python", 0.5)
    errors.report("extract.input")
    try:
        pipeline.collect()
    finally:
        errors.reset()
    return capture


def test_every_instrument_has_its_prometheus_name() -> None:
    for instrument in metrics.INSTRUMENTS:
        assert metric_name(instrument.name, instrument.unit, instrument.kind) == instrument.prometheus, instrument
    for attribute, label in ((metrics.MODEL_ATTRIBUTE, metrics.MODEL_LABEL),
                             (metrics.ERROR_TYPE_ATTRIBUTE, metrics.ERROR_TYPE_LABEL)):
        assert label_name(attribute) == label


def test_the_detector_emits_exactly_the_declared_series(detector: DetectorService) -> None:
    request = parse_request(encode_profiles([_live("fraud", T0 + 1)]))
    for item in request.resource_logs[0].scope_logs[0].log_records[0].attributes:
        if item.key == "servewatch.interval.end":
            item.value.double_value = T0 - 10                                     # ends before it starts
    _post(detector.endpoint + "/v1/logs", request.SerializeToString())           # one rejected profile
    scraped = {name: found for name, found in _scrape(detector.metrics_url).items()
               if name.startswith("servewatch_")}
    assert set(scraped) == set(metrics.DETECTOR_SERIES)                           # every family, no other
    for name, (_, label_sets) in scraped.items():
        for labels in label_sets:
            assert set(labels) == set(metrics.DETECTOR_SERIES[name]), (name, labels)
    empty = {name for name, (_, label_sets) in scraped.items() if not label_sets}
    noiseless = {metrics.drift_noise(name) for name in ("wasserstein", "chi2", "cramers_v", "linf")}
    assert empty <= ONLY_WHEN_SOMETHING_FAILS | noiseless, sorted(empty - ONLY_WHEN_SOMETHING_FAILS - noiseless)


def test_the_serving_side_emits_exactly_the_declared_instruments(detector: DetectorService) -> None:
    capture = _serving()
    emitted = {metric.name: metric for resource in capture.exports[-1].resource_metrics
               for scope in resource.scope_metrics for metric in scope.metrics}
    declared = {instrument.name: instrument for instrument in metrics.INSTRUMENTS}
    assert set(emitted) == set(declared)
    for name, metric in emitted.items():
        assert metric.unit == declared[name].unit, name
    assert OTLPMetricExporter(endpoint=detector.endpoint + "/v1/metrics").export(capture.exports[-1]) \
        == MetricExportResult.SUCCESS
    deadline = time.monotonic() + 10
    while True:                                            # re-exposed: under the Prometheus names declared
        scraped = _scrape(detector.metrics_url)
        relayed = {name for name in scraped if not name.startswith("servewatch_detector_")
                   and name not in metrics.DETECTOR_SERIES and name != "target_info"}
        if relayed or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    queried = {instrument.total if instrument.kind == "counter" else instrument.prometheus
               for instrument in metrics.INSTRUMENTS}
    assert relayed == queried
    assert {metrics.MODEL_LABEL, metrics.OUTCOME} <= set(scraped[metrics.INFERENCE_REQUESTS.total][1][0])
