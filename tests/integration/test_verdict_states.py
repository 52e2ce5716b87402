"""Verdict states end to end: `servewatch detect` fed by the real OTLP log exporter, a real Prometheus scraping it
and evaluating the rules `servewatch alerts` wrote for the same spec.

Two models on a compressed time scale (1 s buckets, evaluation every second). ``fraud`` (600 rows/s, a 4 s
window, reference: the same window 10 s back): its reference must stay not ready until the detector holds the
whole past window (the series is 14 s old), then judge calm against calm as ok and a shifted ``amount`` as
drift; then its traffic stops while the drift alert fires: the verdict turns unknown (no severity exported),
the alert keeps firing long past ``keep_firing_for`` and ``ServewatchModelTrafficStopped`` pages. ``trickle``
(12 rows/s against a 100k-row reference file: 120 values per 10 s window, just over ``min_samples``) runs
undrifted the whole time and must raise nothing.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from prometheus_client.parser import text_string_to_metric_families
from support import free_port, wait_for

from servewatch.profile import Profile
from servewatch.spec import load_spec
from servewatch.wire import EVENT_NAME, encode_profiles, profile_record

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs the prometheus server")]

SERVEWATCH = str(Path(sys.executable).with_name("servewatch"))
OFFSET, WINDOW = 10.0, 4.0
SPEC = {
    "detector": {"bucket": "1s", "interval": "1s", "retention": "1h"},
    "models": [
        {"name": "fraud", "features": [{"name": "amount"}, {"name": "age"}], "predictions": [{"name": "score"}],
         "reference": {"offset": "10s"}, "windows": ["4s"], "min_samples": 100},
        {"name": "trickle", "features": [{"name": "amount"}, {"name": "country", "type": "categorical"}],
         "reference": "REFERENCE", "windows": ["10s"], "min_samples": 100},
    ],
}

Metrics = dict[str, list[tuple[dict[str, str], float]]]


def _fraud(rng: np.random.Generator, rows: int, shift: float) -> dict[str, Any]:
    return {"amount": rng.normal(100.0 + shift, 20.0, rows), "age": rng.normal(40.0, 8.0, rows)}


def _trickle(rng: np.random.Generator, rows: int) -> dict[str, Any]:
    return {"amount": rng.normal(0.0, 1.0, rows), "country": rng.choice(["US", "DE", "FR"], rows, p=[0.5, 0.3, 0.2])}


@dataclass
class Stack:
    metrics_url: str
    prometheus: str
    phase: list[str] = field(default_factory=lambda: ["calm"])   # fraud's traffic: calm, shifted, stopped
    first_sent: list[float] = field(default_factory=list)
    seen: list[tuple[float, Metrics]] = field(default_factory=list)  # what /metrics said, every 0.5 s
    started: float = field(default_factory=time.time)

    def metrics(self) -> Metrics:
        found: Metrics = {}
        for family in text_string_to_metric_families(requests.get(self.metrics_url, timeout=10).text):
            for sample in family.samples:
                found.setdefault(sample.name, []).append((sample.labels, sample.value))
        return found

    def query(self, promql: str) -> list[dict[str, Any]]:
        try:
            answer = requests.get(f"{self.prometheus}/api/v1/query", params={"query": promql}, timeout=5)
        except requests.ConnectionError:
            return []
        return answer.json()["data"]["result"] if answer.ok else []

    def firing(self, alertname: str, **labels: str) -> bool:
        matchers = ",".join(f'{key}="{value}"' for key, value in {"alertname": alertname, **labels}.items())
        return bool(self.query(f'ALERTS{{{matchers},alertstate="firing"}}'))


def pick(metrics: Metrics, name: str, **labels: str) -> list[float]:
    return [value for found, value in metrics.get(name, []) if all(found.get(k) == v for k, v in labels.items())]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("states")
    reference = work / "trickle.pb"
    spec_path = work / "servewatch.yaml"
    spec_text = yaml.safe_dump(SPEC).replace("REFERENCE", str(reference))
    spec_path.write_text(spec_text)
    spec = load_spec(spec_path)
    rng = np.random.default_rng(7)
    reference.write_bytes(encode_profiles([Profile.from_data(_trickle(rng, 100_000), model="trickle",
                                                             spec=spec.model("trickle"))]))
    subprocess.run([SERVEWATCH, "alerts", "--spec", str(spec_path), "-o", str(work / "rules.yml")], check=True,
                   capture_output=True, timeout=60)
    detector = subprocess.Popen([SERVEWATCH, "detect", "--spec", str(spec_path), "--state", str(work / "state"),
                                 "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert detector.stdout is not None
    line = detector.stdout.readline()
    found = re.search(r"receiving OTLP/HTTP on (http://\S+) .*serving (http://\S+/metrics)", line)
    assert found is not None, line + detector.stdout.read()
    threading.Thread(target=lambda: [None for _ in detector.stdout], daemon=True).start()  # type: ignore[union-attr]
    target = urllib.parse.urlsplit(found.group(2)).netloc
    (work / "prometheus.yml").write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(work / "rules.yml")],
        "scrape_configs": [{"job_name": "servewatch-detector", "honor_labels": True,
                            "static_configs": [{"targets": [target]}]}]}))
    port = free_port()
    prometheus = subprocess.Popen(["prometheus", f"--config.file={work / 'prometheus.yml'}",
                                   f"--web.listen-address=127.0.0.1:{port}", f"--storage.tsdb.path={work / 'tsdb'}"],
                                  stdout=subprocess.DEVNULL, stderr=(work / "prometheus.log").open("w"))
    stack = Stack(found.group(2), f"http://127.0.0.1:{port}")
    wait_for(lambda: stack.query("up"), 30, "Prometheus to scrape the detector")

    loggers = LoggerProvider(resource=Resource.create({"service.name": "server"}))
    loggers.add_log_record_processor(BatchLogRecordProcessor(
        OTLPLogExporter(endpoint=found.group(1) + "/v1/logs"), schedule_delay_millis=200))
    logger = loggers.get_logger("servewatch")
    stop = threading.Event()

    def send(profile: Profile, start: float, end: float, sequence: int) -> None:
        profile.start, profile.end, profile.sequence = start, end, sequence
        attributes, body = profile_record(profile)
        logger.emit(body=body, attributes=attributes, event_name=EVENT_NAME)

    def produce() -> None:
        rng, tick = np.random.default_rng(8), 0
        while not stop.is_set():
            end = time.time()
            if stack.phase[0] != "stopped":
                shift = 25.0 if stack.phase[0] == "shifted" else 0.0
                send(Profile.from_data(_fraud(rng, 150, shift), model="fraud", spec=spec.model("fraud")),
                     end - 0.25, end, tick)
                send(Profile.from_data({"score": rng.uniform(0, 1, 150)}, model="fraud", signal="prediction",
                                       spec=spec.model("fraud")), end - 0.25, end, tick)
                if not stack.first_sent:
                    stack.first_sent.append(end)
            if tick % 2 == 0:
                send(Profile.from_data(_trickle(rng, 6), model="trickle", spec=spec.model("trickle")),
                     end - 0.5, end, tick)
            tick += 1
            stop.wait(0.25)

    def monitor() -> None:
        while not stop.is_set():
            try:
                stack.seen.append((time.time(), stack.metrics()))
            except requests.RequestException:
                pass
            stop.wait(0.5)

    threads = [threading.Thread(target=produce, daemon=True), threading.Thread(target=monitor, daemon=True)]
    for thread in threads:
        thread.start()
    yield stack
    stop.set()
    for thread in threads:
        thread.join(10)
    loggers.shutdown()
    prometheus.terminate()
    prometheus.wait(30)
    detector.send_signal(signal.SIGTERM)
    assert detector.wait(30) == 0


def test_offset_reference_waits_for_its_window_then_judges_and_stopped_traffic_holds_the_alert(stack: Stack) -> None:
    fraud = {"model": "fraud", "signal": "input", "window": "4s"}

    def ready() -> bool:
        return pick(stack.metrics(), "servewatch_detector_reference_ready", **fraud) == [1.0]

    first = wait_for(lambda: stack.first_sent, 20, "the first profile")[0]
    # the detector's first bucket starts at most a second before the first profile: the past window (10 s back,
    # 4 s long) is wholly held no earlier than 13 s after it. Until then: not ready, no drift, unknown.
    time.sleep(max(0.0, first + OFFSET + WINDOW - 1.5 - time.time()))
    early = [(at, metrics) for at, metrics in stack.seen if at < first + OFFSET + WINDOW - 1.5]
    assert any(at > first + OFFSET + 1 for at, _ in early), "no observation where a partial window existed"
    for at, metrics in early:
        assert pick(metrics, "servewatch_detector_reference_ready", **fraud) in ([], [0.0]), at - first
        assert pick(metrics, "servewatch_drift_ks", model="fraud") == [], at - first
        assert pick(metrics, "servewatch_drift_severity", model="fraud") == [], at - first
    waiting = [metrics for at, metrics in early if at > first + 2]
    assert waiting and all(pick(m, "servewatch_verdict_unknown", **fraud, feature="amount",
                                reason="reference_not_ready") == [1.0] for m in waiting)
    wait_for(ready, 20, "the offset reference to become ready")

    time.sleep(1.5)
    calm = stack.metrics()
    assert pick(calm, "servewatch_drift_severity", **fraud, feature="amount") == [0.0]
    assert pick(calm, "servewatch_drift_ks", **fraud, feature="amount")[0] < 0.1
    assert pick(calm, "servewatch_window_state", **fraud, state="ok") == [1.0]

    stack.phase[0] = "shifted"
    shifted_at = time.time()
    wait_for(lambda: pick(stack.metrics(), "servewatch_drift_severity", **fraud, feature="amount") in ([1.0], [2.0]),
         OFFSET - 2, "the shifted amount to be judged drift (before the shift reaches the reference)")
    assert pick(stack.metrics(), "servewatch_drift_severity", **fraud, feature="age") == [0.0]
    assert time.time() < shifted_at + OFFSET

    time.sleep(1.0)
    stack.phase[0] = "stopped"
    stopped_at = time.time()
    wait_for(lambda: stack.firing("ServewatchInputDrift", model="fraud", feature="amount", severity="critical"), 30,
         "the drift page")
    unknown = wait_for(lambda: pick(stack.metrics(), "servewatch_verdict_unknown", **fraud, feature="amount",
                                reason="no_traffic"), 20, "the verdict to become unknown (no traffic)")
    assert unknown == [1.0]
    silent = stack.metrics()
    assert pick(silent, "servewatch_drift_severity", **fraud) == []
    assert pick(silent, "servewatch_window_rows", **fraud) == [0.0]
    assert pick(silent, "servewatch_window_state", **fraud, state="unknown") == [1.0]
    unknown_at = time.time()
    wait_for(lambda: stack.firing("ServewatchModelTrafficStopped", model="fraud"), 30, "the traffic-stopped page")
    # keep_firing_for is one shortest window (4 s): three times that later the drift page still fires
    time.sleep(max(0.0, unknown_at + 3 * WINDOW - time.time()))
    assert stack.firing("ServewatchInputDrift", model="fraud", feature="amount", severity="critical"), \
        f"the drift alert resolved {time.time() - stopped_at:.0f}s after the traffic stopped"
    assert pick(stack.metrics(), "servewatch_verdict_unknown", **fraud, feature="amount", reason="no_traffic") == [1.0]


def test_a_low_traffic_model_raises_nothing(stack: Stack) -> None:
    time.sleep(max(0.0, stack.started + 45.0 - time.time()))  # four 10 s windows and more
    trickle = [metrics for _, metrics in stack.seen if pick(metrics, "servewatch_window_samples", model="trickle")]
    judged = [m for m in trickle if pick(m, "servewatch_drift_severity", model="trickle")]
    assert len(judged) >= 20, "the trickle's windows were hardly ever judged"
    flagged = [severity for m in judged for severity in pick(m, "servewatch_drift_severity", model="trickle")
               if severity >= 1]
    assert not flagged, f"{len(flagged)} warnings on undrifted low traffic"
    fired = stack.query('max_over_time(ALERTS{model="trickle",alertstate="firing"}[5m])')
    assert not fired, [item["metric"] for item in fired]
