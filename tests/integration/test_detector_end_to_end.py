"""`servewatch detect` end to end: the real OpenTelemetry OTLP/HTTP exporters send profiles and serving metrics,
a real Prometheus scrapes the detector, and the command line behaves (start-up line, SIGTERM, bad input).

One detector process (a compressed time scale: 1s buckets, a 5s window, evaluation every second) serves the
whole module; producers send profiles built from known data where only ``amount`` is shifted.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from servewatch.detectors.service import Layout, Store

from servewatch.profile import Profile
from servewatch.spec import load_spec
from servewatch.wire import EVENT_NAME, encode_profiles, profile_record

from support import free_port, wait_for

pytestmark = pytest.mark.integration

SERVEWATCH = str(Path(sys.executable).with_name("servewatch"))
SPEC = """
detector: {bucket: 1s, interval: 1s, retention: 1h}
models:
  - name: fraud
    features:
      - {name: amount}
      - {name: age}
      - {name: country, type: categorical}
    predictions:
      - {name: score}
    reference: {reference}
    windows: [5s]
    min_samples: 100
"""


@dataclass
class Detector:
    process: subprocess.Popen[str]
    endpoint: str
    metrics_url: str
    output: list[str]
    spec: Path

    def metrics(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        from prometheus_client.parser import text_string_to_metric_families

        found: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(requests.get(self.metrics_url, timeout=10).text):
            for sample in family.samples:
                found.setdefault(sample.name, []).append((sample.labels, sample.value))
        return found


def _data(rng: np.random.Generator, rows: int, shift: float) -> dict[str, object]:
    return {"amount": rng.normal(100.0 + shift, 20.0, rows), "age": rng.normal(40.0, 8.0, rows),
            "country": rng.choice(["US", "DE", "FR"], rows, p=[0.5, 0.3, 0.2])}


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Detector]:
    folder = tmp_path_factory.mktemp("detector")
    spec = folder / "servewatch.yaml"
    reference = folder / "fraud.pb"
    spec.write_text(SPEC.replace("{reference}", str(reference)))
    model = load_spec(spec).model("fraud")
    rng = np.random.default_rng(1)
    training = _data(rng, 5000, 0.0)
    inputs = Profile.from_data(training, model="fraud", spec=model)
    predictions = Profile.from_data({"score": rng.uniform(0, 1, 5000)}, model="fraud", signal="prediction", spec=model)
    reference.write_bytes(encode_profiles([inputs, predictions]))
    command = [SERVEWATCH, "detect", "--spec", str(spec), "--state", str(folder / "state"), "--listen", "127.0.0.1:0",
               "--metrics-listen", "127.0.0.1:0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"receiving OTLP/HTTP on (http://127\.0\.0\.1:\d+) .*serving (http://127\.0\.0\.1:\d+/metrics)",
                      line)
    assert found is not None, line + process.stdout.read()
    output = [line]
    threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()  # type: ignore[arg-type]
    yield Detector(process, found.group(1), found.group(2), output, spec)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    time.sleep(0.2)
    assert "servewatch detect: stopped" in "".join(output)


@dataclass
class Producer:
    """What the background producer has emitted so far."""

    profiles: int = 0
    requests: int = 0


@pytest.fixture(scope="module")
def sent(detector: Detector) -> Iterator[Producer]:
    """A serving process's worth of telemetry, sent until the module ends: profiles every 0.25s through the real
    OTLP log exporter, serving metrics through the real OTLP metric exporter."""
    resource = Resource.create({"service.name": "fraud-server", "service.instance.id": "replica-1"})
    loggers = LoggerProvider(resource=resource)
    loggers.add_log_record_processor(BatchLogRecordProcessor(
        OTLPLogExporter(endpoint=detector.endpoint + "/v1/logs"), schedule_delay_millis=200))
    meters = MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=detector.endpoint + "/v1/metrics"), export_interval_millis=500)])
    logger = loggers.get_logger("servewatch")
    meter = meters.get_meter("servewatch", "0.1.0")
    duration = meter.create_histogram("servewatch.inference.duration", unit="s")
    requests_counter = meter.create_counter("servewatch.inference.requests", unit="{request}")
    model = load_spec(detector.spec).model("fraud")
    produced = Producer()
    stop = threading.Event()

    def produce() -> None:
        rng = np.random.default_rng(2)
        sequence = 0
        while not stop.is_set():
            end = time.time()
            profiles = [Profile.from_data(_data(rng, 150, 25.0), model="fraud", spec=model),   # amount +1.25 sd
                        Profile.from_data({"score": rng.uniform(0, 1, 150)}, model="fraud", signal="prediction",
                                          spec=model)]
            for profile in profiles:
                profile.start, profile.end, profile.sequence = end - 0.25, end, sequence
                attributes, body = profile_record(profile)
                logger.emit(body=body, attributes=attributes, event_name=EVENT_NAME)
            attributes = {"ml.model.name": "fraud", "ml.framework": "test", "outcome": "ok"}
            duration.record(0.02, attributes)
            requests_counter.add(150, attributes)
            produced.profiles += 2
            produced.requests += 150
            sequence += 1
            stop.wait(0.25)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    yield produced
    stop.set()
    thread.join(10)
    loggers.shutdown()
    meters.shutdown()


def test_ks_is_above_the_warning_threshold_for_the_shifted_feature_only(detector: Detector, sent: Producer) -> None:
    def ks() -> dict[str, float]:
        values = {labels["feature"]: value for labels, value in detector.metrics().get("servewatch_drift_ks", [])
                  if labels["model"] == "fraud" and labels["window"] == "5s"}
        return values if {"amount", "age", "score"} <= set(values) else {}

    values = wait_for(ks, 20, "servewatch_drift_ks for every numeric column")
    assert isinstance(values, dict)
    assert values["amount"] > 0.1, values            # the warning threshold
    assert values["age"] < 0.1 and values["score"] < 0.1, values
    metrics = detector.metrics()
    linf = [value for labels, value in metrics["servewatch_drift_linf"] if labels["feature"] == "country"]
    assert linf and linf[0] < 0.1
    severity = {labels["feature"]: value for labels, value in metrics["servewatch_drift_severity"]}
    assert severity["amount"] >= 1 and severity["age"] == 0
    received = metrics["servewatch_detector_profiles_received_total"][0][1]
    assert 0 < received <= sent.profiles
    assert metrics["servewatch_detector_profiles_duplicate_total"][0][1] == 0
    assert not metrics.get("servewatch_detector_profiles_rejected_total")


def test_serving_metrics_are_re_exposed_per_instance(detector: Detector, sent: Producer) -> None:
    def requests_total() -> list[tuple[dict[str, str], float]]:
        return detector.metrics().get("servewatch_inference_requests_total", [])

    (labels, value), = wait_for(requests_total, 20, "the re-exposed request counter")  # type: ignore[misc]
    assert 0 < value <= sent.requests and value % 150 == 0
    assert labels["job"] == "fraud-server" and labels["instance"] == "replica-1" and labels["ml_model_name"] == "fraud"
    assert "servewatch_inference_duration_seconds_bucket" in detector.metrics()


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs the prometheus server (Debian package)")
def test_prometheus_scrapes_the_detector(detector: Detector, sent: Producer, tmp_path: Path) -> None:
    target = urllib.parse.urlsplit(detector.metrics_url).netloc
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                                  "scrape_configs": [{"job_name": "servewatch-detector", "honor_labels": True,
                                                      "static_configs": [{"targets": [target]}]}]}))
    port = free_port()
    prometheus = subprocess.Popen(["prometheus", f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                                   f"--storage.tsdb.path={tmp_path / 'tsdb'}"],
                                  stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"))
    try:
        def query(expression: str) -> list[dict[str, object]]:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": expression}, timeout=5)
            except requests.ConnectionError:
                return []
            return answer.json()["data"]["result"] if answer.ok else []

        result = wait_for(lambda: query('servewatch_drift_ks{model="fraud"}'), 30,
                       "Prometheus to scrape servewatch_drift_ks")
        assert isinstance(result, list)
        series = {(item["metric"]["feature"], item["metric"]["window"], item["metric"]["signal"])  # type: ignore[index]
                  for item in result}
        assert series == {("amount", "5s", "input"), ("age", "5s", "input"), ("score", "5s", "prediction")}
        amount = next(item for item in result if item["metric"]["feature"] == "amount")  # type: ignore[index]
        assert float(amount["value"][1]) > 0.1  # type: ignore[index]
        served = query("servewatch_inference_requests_total")
        assert served and served[0]["metric"]["job"] == "fraud-server"  # type: ignore[index]
    finally:
        prometheus.terminate()
        prometheus.wait(30)


def _run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SERVEWATCH, "detect", *arguments], capture_output=True, text=True, timeout=60)


def test_bad_input_exits_2_with_one_line(tmp_path: Path, detector: Detector) -> None:
    bad_spec = tmp_path / "bad.yaml"
    bad_spec.write_text("models: [{name: m, windows: [soon]}]\n")
    taken = urllib.parse.urlsplit(detector.endpoint).netloc
    state = tmp_path / "one-second-buckets"
    Store(state, Layout(1.0, 3600.0)).close()
    for arguments, reason in [
        (["--spec", str(bad_spec)], "windows[0]"),
        (["--bucket", "5x"], "expected a duration"),
        (["--listen", taken, "--metrics-listen", "127.0.0.1:0", "--state", str(tmp_path / "s1")], "cannot listen on"),
        (["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--state", str(state), "--bucket", "1m"],
         "1s buckets"),
        (["--listen", "nowhere"], "expected host:port"),
    ]:
        finished = _run(*arguments)
        assert finished.returncode == 2, (arguments, finished.stderr)
        assert reason in finished.stderr and len(finished.stderr.strip().splitlines()) == 1, finished.stderr
