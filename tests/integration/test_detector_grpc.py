"""`servewatch detect` over OTLP/gRPC, end to end: the real OpenTelemetry gRPC exporters (what a Collector's
`otlp` exporter or `OTEL_EXPORTER_OTLP_PROTOCOL=grpc` sends) feed a detector process that flags the shifted
feature, re-exposes the serving metrics, and says on stderr what changed, once: the model's first profiles,
its reference ready, the severity of the shifted column.
"""

from __future__ import annotations

import itertools
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from servewatch.profile import Profile
from servewatch.spec import load_spec
from servewatch.wire import EVENT_NAME, encode_profiles, profile_record

from support import wait_for
from .test_detector_end_to_end import SPEC, _data

pytestmark = pytest.mark.integration

SERVEWATCH = str(Path(sys.executable).with_name("servewatch"))
@dataclass
class Detector:
    process: subprocess.Popen[str]
    grpc: str
    metrics_url: str
    stderr: list[str]
    folder: Path

    def gauge(self, name: str) -> dict[str, float]:
        lines = requests.get(self.metrics_url, timeout=10).text.splitlines()
        found = {}
        for line in lines:
            match = re.match(name + r'\{.*feature="(\w+)".*\} (\S+)$', line)
            if match:
                found[match.group(1)] = float(match.group(2))
        return found


def _spawn(folder: Path, spec: Path, *flags: str) -> Detector:
    process = subprocess.Popen([SERVEWATCH, "detect", "--spec", str(spec), "--state", str(folder / "state"),
                                "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0",
                                "--metrics-listen", "127.0.0.1:0", *flags],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stderr is not None
    line = process.stdout.readline()
    found = re.search(r"OTLP/gRPC on (127\.0\.0\.1:\d+), serving (http://127\.0\.0\.1:\d+/metrics)", line)
    if found is None:
        process.kill()
        raise AssertionError(line + process.stdout.read() + process.stderr.read())
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.extend(process.stderr), daemon=True).start()  # type: ignore[arg-type]
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return Detector(process, found.group(1), found.group(2), stderr, folder)


def _stop(detector: Detector) -> None:
    if detector.process.poll() is None:
        detector.process.send_signal(signal.SIGTERM)
    assert detector.process.wait(30) == 0


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Detector]:
    folder = tmp_path_factory.mktemp("grpc")
    spec, reference = folder / "servewatch.yaml", folder / "fraud.pb"
    spec.write_text(SPEC.replace("{reference}", str(reference)))
    rng = np.random.default_rng(1)
    reference.write_bytes(encode_profiles([Profile.from_data(_data(rng, 5000, 0.0), model="fraud",
                                                             spec=load_spec(spec).model("fraud"))]))
    detector = _spawn(folder, spec)
    yield detector
    _stop(detector)


@pytest.fixture(scope="module")
def sent(detector: Detector) -> Iterator[None]:
    """A serving process exporting over gRPC: profiles with amount shifted by 3 sd, a request counter."""
    resource = Resource.create({"service.name": "fraud-server", "service.instance.id": "replica-1"})
    loggers = LoggerProvider(resource=resource)
    loggers.add_log_record_processor(BatchLogRecordProcessor(
        OTLPLogExporter(endpoint=f"http://{detector.grpc}", insecure=True), schedule_delay_millis=200))
    meters = MeterProvider(resource=resource, metric_readers=[PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"http://{detector.grpc}", insecure=True), export_interval_millis=500)])
    logger = loggers.get_logger("servewatch")
    counter = meters.get_meter("servewatch").create_counter("servewatch.inference.requests")
    stop = threading.Event()

    def produce() -> None:
        rng = np.random.default_rng(2)
        for sequence in itertools.takewhile(lambda _: not stop.wait(0.25), itertools.count()):
            profile = Profile.from_data(_data(rng, 150, 60.0), model="fraud")     # amount + 3 sd
            profile.sequence, profile.end = sequence, time.time()
            profile.start = profile.end - 0.25
            attributes, body = profile_record(profile)
            logger.emit(body=body, attributes=attributes, event_name=EVENT_NAME)
            counter.add(150, {"ml.model.name": "fraud"})

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(10)
    loggers.shutdown()
    meters.shutdown()


def test_the_shifted_feature_is_flagged_from_grpc_exports(detector: Detector, sent: None) -> None:
    wait_for(lambda: detector.gauge("servewatch_window_samples").get("age", 0) >= 2000, 30,
               "a 5s window of 2000 values or more")          # not the first few profiles: the whole window
    severity = detector.gauge("servewatch_drift_severity")
    assert isinstance(severity, dict)
    assert severity["amount"] == 2 and severity["age"] == 0 and severity["country"] == 0, severity
    text = requests.get(detector.metrics_url, timeout=10).text
    served = [line for line in text.splitlines() if line.startswith("servewatch_inference_requests_total{")]
    assert served and 'job="fraud-server"' in served[0] and 'instance="replica-1"' in served[0]
    assert re.search(r'servewatch_detector_requests_total\{code="OK",path="/opentelemetry\.proto\.collector\.logs'
                     r'\.v1\.LogsService/Export"\} [1-9]', text)


def test_stderr_says_what_changed_once(detector: Detector, sent: None) -> None:
    def logged() -> list[str]:
        return [line for line in detector.stderr if "fraud/input 5s: amount ok -> critical" in line]

    wait_for(logged, 30, "the severity change on stderr")
    time.sleep(3)                                  # three more evaluations: nothing new to say about them
    lines = [line.split(" servewatch.detect: ", 1)[-1].rstrip() for line in detector.stderr]
    reference = detector.folder / "fraud.pb"
    assert [line for line in lines if line.startswith("model fraud")] == [
        f"model fraud: first profiles (input); windows 5s against file {reference}"]
    assert [line for line in lines if "reference ready" in line] == [
        f"fraud/input: reference ready (file {reference}); evaluating windows 5s"]
    assert len(logged()) == 1, lines
    assert " INFO " in logged()[0]


def test_a_missing_reference_file_is_logged_at_start(tmp_path: Path) -> None:
    spec = tmp_path / "servewatch.yaml"
    spec.write_text(SPEC.replace("{reference}", str(tmp_path / "missing.pb")))
    detector = _spawn(tmp_path, spec)
    try:
        wait_for(lambda: any("missing.pb" in line for line in detector.stderr), 10, "the warning")
    finally:
        _stop(detector)
    line = next(line for line in detector.stderr if "missing.pb" in line)
    assert " WARNING " in line and "model fraud: reference file" in line and "no such file" in line


@pytest.mark.parametrize("flag, reason", [
    ("taken", "cannot listen on 127.0.0.1:"),
    ("127.0.0.1:notaport", "expected host:port"),
])
def test_a_bad_grpc_address_exits_2_with_one_line(detector: Detector, tmp_path: Path, flag: str, reason: str) -> None:
    flag = detector.grpc if flag == "taken" else flag
    done = subprocess.run([SERVEWATCH, "detect", "--state", str(tmp_path / "state"), "--listen", "127.0.0.1:0",
                           "--metrics-listen", "127.0.0.1:0", "--grpc-listen", flag],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], done.stderr


def test_grpc_off(tmp_path: Path) -> None:
    process = subprocess.Popen([SERVEWATCH, "detect", "--state", str(tmp_path / "state"), "--listen", "127.0.0.1:0",
                                "--metrics-listen", "127.0.0.1:0", "--grpc-listen", "off"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert "receiving OTLP/HTTP on http://127.0.0.1:" in line and "gRPC" not in line
