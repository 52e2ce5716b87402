"""A real PyTriton app (examples/triton/app.py) under ``opentelemetry-instrument``, feeding a real detector.

Reference traffic, then traffic whose monthly charges are shifted: the detector flags that input column and
no other; the per-model latency, request, batch-size, queue-time and compute-time series reach it over OTLP.
Runs in .venv-triton (Debian's python3.11, numpy<2, PyTriton): ``.venv-triton/bin/pytest tests/integration``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import load_module

harness = load_module("triton_harness", Path(__file__).parents[2] / "bench" / "triton_harness.py")

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(harness.triton_available() is not None, reason=str(harness.triton_available()))]

WARMUP = 6.0
"""Seconds of reference traffic (the spec's warmup reference is the first 5 s)."""
FEATURES = ("tenure_months", "monthly_charges", "support_calls", "age")


def compressed_spec(folder: Path) -> Path:
    """The example's spec on a 1 s scale: 1 s buckets, a 5 s window against the first 5 s of traffic."""
    raw = yaml.safe_load((harness.EXAMPLES / "servewatch.yaml").read_text())
    raw["detector"] = {"bucket": "1s", "interval": "1s", "retention": "1h"}
    for model in raw["models"]:
        model.update(reference={"warmup": "5s"}, windows=["5s"], min_samples=100)
    path = folder / "servewatch.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@dataclass
class Served:
    detector: Any
    processes: Any
    sent: dict[tuple[str, str], int]
    rows: dict[str, int]
    ks: dict[str, float]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("pytriton")
    spec = compressed_spec(folder)
    with harness.Processes(folder) as processes:
        detector = harness.start_detector(processes, spec)
        _, ports = harness.start_pytriton_app(processes, harness.serving_environment(detector, spec))
        http, grpc = f"127.0.0.1:{ports.http}", f"127.0.0.1:{ports.grpc}"
        sent = {("churn", "ok"): 0, ("churn", "error"): 0, ("iris", "ok"): 0}
        rows = {"churn": 0, "iris": 0}

        def churn(*arguments: str) -> None:
            ok, failed = harness.send("--url", http, "--model", "churn", "--batch", "8", *arguments)
            sent["churn", "ok"] += ok
            sent["churn", "error"] += failed
            rows["churn"] += 8 * ok

        def iris(requests: int) -> None:
            ok, _ = harness.send("--url", grpc, "--protocol", "grpc", "--model", "iris", "--requests", str(requests),
                                 "--batch", "4", "--seed", str(seed))
            sent["iris", "ok"] += ok
            rows["iris"] += 4 * ok

        seed = 1
        start = time.monotonic()
        churn("--mode", "async", "--concurrency", "8", "--requests", "40", "--errors", "3", "--seed", "1")
        iris(30)
        seed = 2
        while time.monotonic() - start < WARMUP:                       # reference traffic
            churn("--mode", "async", "--concurrency", "8", "--requests", "20", "--seed", str(seed))
            seed += 1

        def drifted() -> dict[str, float] | None:                      # shifted traffic until flagged
            nonlocal seed
            churn("--protocol", "grpc", "--url", grpc, "--mode", "aio", "--concurrency", "8", "--requests", "20",
                  "--shift", "30", "--seed", str(seed))
            iris(5)
            seed += 1
            values = {labels["feature"]: value for labels, value in
                      detector.values("servewatch_drift_ks", model="churn", signal="input", window="5s")}
            return values if values.get("monthly_charges", 0.0) >= 0.2 and set(FEATURES) <= set(values) else None

        ks = harness.wait_for(drifted, 60, "drift on monthly_charges", processes, interval=0.0)
        yield Served(detector, processes, sent, rows, ks)


def test_the_detector_flags_the_shifted_input_only(served: Served) -> None:
    assert served.ks["monthly_charges"] >= 0.2, served.ks
    for feature in ("tenure_months", "support_calls", "age"):
        assert served.ks[feature] < 0.1, served.ks
    severity = {labels["feature"]: value for labels, value in
                served.detector.values("servewatch_drift_severity", model="churn", signal="input", window="5s")}
    assert severity["monthly_charges"] >= 1
    assert severity["tenure_months"] == severity["support_calls"] == severity["age"] == 0, severity


def test_requests_latency_and_batches_per_model(served: Served) -> None:
    detector = served.detector

    def requests() -> dict[tuple[str, str], float]:
        found = {(labels["ml_model_name"], labels["outcome"]): value for labels, value in
                 detector.values("servewatch_inference_requests_total", ml_framework="pytriton")}
        return found if all(found.get(key) == count for key, count in served.sent.items()) else {}

    harness.wait_for(requests, 30, f"request counters equal to what was sent: {served.sent}", served.processes)
    for model in ("churn", "iris"):
        ok = served.sent[model, "ok"]
        count = detector.total("servewatch_inference_duration_seconds_count", ml_model_name=model, outcome="ok")
        assert count == ok                                           # one observation per request
        total = detector.total("servewatch_inference_duration_seconds_sum", ml_model_name=model, outcome="ok")
        assert 0 < total / ok < 1.0
        rows = detector.total("servewatch_inference_batch_size_sum", ml_model_name=model, outcome="ok")
        calls = detector.total("servewatch_inference_batch_size_count", ml_model_name=model, outcome="ok")
        assert rows == served.rows[model] and 0 < calls <= ok      # Triton batched concurrent requests
    errors = detector.values("servewatch_inference_requests_total", ml_model_name="churn", outcome="error")
    assert errors and errors[0][0]["job"] == "triton-test"         # OTEL_SERVICE_NAME
    assert detector.total("servewatch_instrumentation_errors_total") == 0


def test_queue_and_compute_time_come_from_tritons_metrics(served: Served) -> None:
    detector = served.detector

    def bridged() -> bool:
        queue = detector.total("servewatch_inference_queue_time_seconds_total", ml_model_name="churn")
        phases = {labels["phase"]: value for labels, value in
                  detector.values("servewatch_inference_compute_time_seconds_total", ml_model_name="churn")}
        return queue > 0 and set(phases) == {"input", "infer", "output"} and phases["infer"] > 0

    harness.wait_for(bridged, 30, "queue and compute time of churn", served.processes)
    labels, _ = detector.values("servewatch_inference_compute_time_seconds_total", ml_model_name="iris")[0]
    assert labels["ml_framework"] == "pytriton"


def test_inputs_and_outputs_are_profiled_by_tensor_name(served: Served) -> None:
    samples = {(labels["model"], labels["signal"], labels["feature"]) for labels, _ in
               served.detector.values("servewatch_window_samples", window="5s")}
    assert {("churn", "input", feature) for feature in FEATURES} <= samples
    assert ("churn", "prediction", "churn_score") in samples
    # iris has no columns in the spec: automatic names, and class probabilities become class and score
    assert {("iris", "input", "measurements.0"), ("iris", "prediction", "probabilities.class"),
            ("iris", "prediction", "probabilities.score")} <= samples
    received = (served.sent["churn", "ok"] + served.sent["churn", "error"]) * 8    # failed calls' inputs count too
    harness.wait_for(lambda: served.detector.total("servewatch_input_values_total", ml_model_name="churn",
                                                   ml_feature_name="monthly_charges") == received,
                     30, f"{received} values of monthly_charges", served.processes)
