"""The generic API in a real server process: examples/generic/app.py (FastAPI) under uvicorn, exporting with the
real OTLP/HTTP exporters, first to a recording receiver (exact counts), then to a real ``servewatch detect``
(drift found on the shifted feature, serving metrics re-exposed under the server's identity)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from servewatch.profile import Profile  # noqa: E402
from servewatch.spec import load_spec  # noqa: E402
from servewatch.wire import encode_profiles  # noqa: E402
from support import load_module, wait_for  # noqa: E402

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "generic"
SERVEWATCH = str(Path(sys.executable).with_name("servewatch"))


class Server:
    """uvicorn serving the example app on a free port, stopped with SIGTERM (a graceful shutdown)."""

    def __init__(self, env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "uvicorn", "--app-dir", str(EXAMPLE), "app:app", "--host", "127.0.0.1",
                   "--port", "0"]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: list[str] = []
        found = None
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.output.append(line)
            found = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
            if found:
                break
        assert found is not None, "".join(self.output)
        self.url = found.group(1)
        self._reader = threading.Thread(target=lambda: self.output.extend(self.process.stdout),  # type: ignore
                                        daemon=True)
        self._reader.start()

    def post(self, path: str, body: Any) -> requests.Response:
        return requests.post(self.url + path, json=body, timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises SIGTERM to end itself
        assert self.process.wait(30) in (0, -signal.SIGTERM), "".join(self.output)
        self._reader.join(10)
        assert "Application shutdown complete" in "".join(self.output)


def environment(endpoint: str, spec: Path, **extra: str) -> dict[str, str]:
    import os

    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "SERVEWATCH_"))}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, SERVEWATCH_SPEC=str(spec), SERVEWATCH_PROFILE_INTERVAL="0.5",
               OTEL_METRIC_EXPORT_INTERVAL="500", OTEL_SERVICE_NAME="fraud-api", **extra)
    return env


def rows(rng: np.random.Generator, count: int, shift: float = 0.0) -> list[dict[str, Any]]:
    return [{"amount": float(rng.normal(100.0 + shift, 20.0)), "age": float(rng.normal(40.0, 8.0)),
             "country": str(rng.choice(["US", "DE", "FR"]))} for _ in range(count)]


def test_fastapi_app_exports_exact_profiles_and_metrics() -> None:
    Receiver = load_module("servewatch_receiver_integration", ROOT / "tests" / "instrumentation" / "receiver.py").Receiver
    rng = np.random.default_rng(5)
    with Receiver() as receiver:
        server = Server(environment(receiver.endpoint, EXAMPLE / "servewatch.yaml"))
        try:
            for _ in range(20):
                assert server.post("/fraud", rows(rng, 3)).status_code == 200
            for _ in range(10):
                assert server.post("/fraud/async", rows(rng, 2)).status_code == 200
            assert server.post("/fraud", [{"age": 30, "country": "US"}]).status_code == 422   # the model fails
            for _ in range(15):
                assert server.post("/churn", rng.normal(size=(4, 3)).tolist()).status_code == 200
        finally:
            server.stop()                       # the last interval leaves at exit
    profiles = receiver.profiles()
    totals: dict[tuple[str, str], int] = {}
    for profile, _ in profiles:
        totals[(profile.model, profile.signal)] = totals.get((profile.model, profile.signal), 0) + profile.rows
    assert totals == {("fraud", "input"): 81, ("fraud", "prediction"): 80, ("churn", "input"): 60,
                      ("churn", "prediction"): 60}
    columns = {(p.model, p.signal): set(p.columns) for p, _ in profiles}
    assert columns[("fraud", "input")] == {"amount", "age", "country"}
    assert columns[("fraud", "prediction")] == {"score"}
    assert columns[("churn", "input")] == {"f0", "f1", "f2"} and columns[("churn", "prediction")] == {"class", "score"}
    identities = {resource["service.instance.id"] for _, resource in profiles}
    assert len(identities) == 1 and {p.producer for p, _ in profiles} == identities
    assert {resource["service.name"] for _, resource in profiles} == {"fraud-api"}

    def final(name: str) -> dict[tuple[str, str], Any]:
        latest: dict[tuple[str, str], Any] = {}
        for attributes, point, _ in receiver.metric_points(name):
            latest[(attributes["ml.model.name"], attributes["outcome"])] = point
        return latest

    requests_total = {key: point.as_int for key, point in final("servewatch.inference.requests").items()}
    assert requests_total == {("fraud", "ok"): 30, ("fraud", "error"): 1, ("churn", "ok"): 15}
    assert final("servewatch.inference.duration")[("fraud", "ok")].count == 30
    assert final("servewatch.inference.batch.size")[("churn", "ok")].sum == 60
    assert "servewatch.input.values" in receiver.metric_names()


@pytest.fixture
def detector(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    spec = tmp_path / "servewatch.yaml"
    reference = tmp_path / "fraud.pb"
    spec.write_text((EXAMPLE / "servewatch.yaml").read_text().replace("windows: [5m, 1h]\n    reference: fraud.pb",
                                                                       f"windows: [5s]\n    min_samples: 50\n"
                                                                       f"    reference: {reference}")
                    + "detector: {bucket: 1s, interval: 1s, retention: 1h}\n")
    model = load_spec(spec).model("fraud")
    assert [window.name for window in model.windows] == ["5s"]
    training = rows(np.random.default_rng(1), 3000)
    scores = np.random.default_rng(2).uniform(0, 1, 3000)
    reference.write_bytes(encode_profiles([Profile.from_data(training, model="fraud", spec=model),
                                           Profile.from_data(scores, model="fraud", signal="prediction", spec=model)]))
    process = subprocess.Popen([SERVEWATCH, "detect", "--spec", str(spec), "--state", str(tmp_path / "state"),
                                "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = process.stdout.readline()  # type: ignore[union-attr]
    found = re.search(r"receiving OTLP/HTTP on (http://127\.0\.0\.1:\d+) .*serving (http://127\.0\.0\.1:\d+/metrics)",
                      line)
    assert found is not None, line + process.stdout.read()  # type: ignore[union-attr]
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # type: ignore[union-attr]
    try:
        yield found.group(1), found.group(2), spec
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(requests.get(url, timeout=10).text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_fastapi_app_to_servewatch_detect_end_to_end(detector: tuple[str, str, Path]) -> None:
    endpoint, metrics_url, spec = detector
    server = Server(environment(endpoint, spec))
    rng = np.random.default_rng(9)
    stop = threading.Event()

    def traffic() -> None:                       # amount shifted by 3 standard deviations, age as in training
        while not stop.is_set():
            server.post("/fraud", rows(rng, 40, shift=60.0))
            stop.wait(0.05)

    sender = threading.Thread(target=traffic, daemon=True)
    sender.start()
    try:
        def ks() -> dict[str, float]:
            values = {labels["feature"]: value for labels, value in scrape(metrics_url).get("servewatch_drift_ks", [])
                      if labels["model"] == "fraud" and labels["window"] == "5s"}
            return values if {"amount", "age"} <= set(values) else {}

        values = wait_for(ks, 40, "servewatch_drift_ks of amount and age", interval=0.2)
        assert values["amount"] > 0.5 and values["age"] < 0.1, values
        metrics = scrape(metrics_url)
        assert metrics["servewatch_detector_profiles_received_total"][0][1] > 0
        assert not [value for _, value in metrics.get("servewatch_detector_profiles_rejected_total", []) if value]
        served = wait_for(lambda: [(labels, value) for labels, value in scrape(metrics_url).get(
            "servewatch_inference_requests_total", []) if labels.get("ml_model_name") == "fraud"], 20,
            "the re-exposed request counter", interval=0.2)
        labels, value = served[0]
        assert value > 0 and labels["job"] == "fraud-api" and labels["outcome"] == "ok" and labels["instance"]
        assert "servewatch_inference_duration_seconds_bucket" in scrape(metrics_url)
    finally:
        stop.set()
        sender.join(10)
        server.stop()
