"""The tritonserver bundled with PyTriton, serving an ordinary model repository, with a real detector.

- ``churn`` (examples/triton/model_repository): a python-backend model using the one-line opt-in; its stub
  process reports profiles and request metrics;
- ``plain``: a python-backend model without servewatch, standing for a backend that runs no Python (ONNX,
  TensorRT): it is watched from the client side (examples/triton/client.py under ``opentelemetry-instrument``,
  http and grpc, sync, async and aio) and through the :8002 bridge running as a sidecar.

Runs in .venv-triton (Debian's python3.11, numpy<2, PyTriton, tritonclient).
"""

from __future__ import annotations

import urllib.request
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

PLAIN_CONFIG = """\
name: "plain"
backend: "python"
max_batch_size: 64
input [ { name: "features", data_type: TYPE_FP32, dims: [ 4 ] } ]
output [ { name: "score", data_type: TYPE_FP32, dims: [ 1 ] } ]
dynamic_batching { max_queue_delay_microseconds: 2000 }
"""
PLAIN_MODEL = """\
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "features").as_numpy()
            if (x[:, 0] < 0).any():  # fails the whole execution: Triton counts every request of it as failed
                raise ValueError("negative tenure")
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("score", x.mean(axis=1, keepdims=True))]))
        return responses
"""
CLIENT_RUNS = [("http", "sync"), ("http", "async"), ("http", "aio"), ("grpc", "sync"), ("grpc", "async"),
               ("grpc", "aio")]


def compressed_spec(folder: Path) -> Path:
    """The example's spec on a 1 s scale, plus ``plain`` with churn's columns."""
    raw = yaml.safe_load((harness.EXAMPLES / "servewatch.yaml").read_text())
    raw["detector"] = {"bucket": "1s", "interval": "1s", "retention": "1h"}
    churn = next(model for model in raw["models"] if model["name"] == "churn")
    raw["models"].append({**churn, "name": "plain"})
    for model in raw["models"]:
        model.update(reference={"warmup": "5s"}, windows=["60s"], min_samples=10)
    path = folder / "servewatch.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@dataclass
class Server:
    detector: Any
    processes: Any
    metrics_url: str
    churn: dict[str, int]
    plain: dict[str, int]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("tritonserver")
    spec = compressed_spec(folder)
    extra = folder / "repository"
    (extra / "plain" / "1").mkdir(parents=True)
    (extra / "plain" / "config.pbtxt").write_text(PLAIN_CONFIG)
    (extra / "plain" / "1" / "model.py").write_text(PLAIN_MODEL)
    with harness.Processes(folder) as processes:
        detector = harness.start_detector(processes, spec)
        env = harness.serving_environment(detector, spec, {"OTEL_SERVICE_NAME": "triton-server"})
        _, ports = harness.start_tritonserver(processes, [harness.EXAMPLES / "model_repository", extra], env,
                                              ("churn", "plain"))
        bridge = processes.start("bridge", [str(harness.BIN / "python"), "-m",
                                            "servewatch.instrumentation.triton.bridge", "--url", ports.metrics_url,
                                            "--model", "plain"],
                                 harness.serving_environment(detector, spec, {"OTEL_SERVICE_NAME": "triton-bridge"}))
        http, grpc = f"127.0.0.1:{ports.http}", f"127.0.0.1:{ports.grpc}"
        churn = {"ok": 0, "error": 0}                       # not instrumented here: the stub reports these
        for arguments in (("--url", http, "--requests", "30", "--errors", "2"),
                          ("--url", grpc, "--protocol", "grpc", "--mode", "async", "--requests", "30", "--seed", "1")):
            ok, failed = harness.send(*arguments)
            churn["ok"] += ok
            churn["error"] += failed
        # the bridge counts queue time from its first reading on: plain's traffic starts after it
        harness.wait_for(lambda: "counted from now on" in bridge.log.read_text(), 60, "the bridge's first reading",
                         processes)
        plain = {"ok": 0, "error": 0}                       # from instrumented client processes
        client_env = harness.serving_environment(detector, spec, {"OTEL_SERVICE_NAME": "triton-client"})
        for seed, (protocol, mode) in enumerate(CLIENT_RUNS):
            line = harness.run_client(client_env, "--url", http if protocol == "http" else grpc, "--protocol", protocol,
                                      "--mode", mode, "--model", "plain", "--requests", "12", "--errors", "1",
                                      "--seed", str(seed), instrumented=True)
            ok, failed = harness.summary_counts(line)
            plain["ok"] += ok
            plain["error"] += failed
        yield Server(detector, processes, ports.metrics_url, churn, plain)


def outcomes(detector: Any, **labels: str) -> dict[str, float]:
    """Requests by outcome, summed over the producing processes."""
    totals: dict[str, float] = {}
    for found, value in detector.values("servewatch_inference_requests_total", **labels):
        totals[found["outcome"]] = totals.get(found["outcome"], 0.0) + value
    return totals


def test_python_backend_stub_reports_requests_and_profiles(server: Server) -> None:
    detector = server.detector
    harness.wait_for(lambda: outcomes(detector, job="triton-server", ml_model_name="churn") == server.churn, 30,
                     f"the stub's request counters = {server.churn}", server.processes)
    labels, _ = detector.values("servewatch_inference_requests_total", job="triton-server")[0]
    assert labels["ml_framework"] == "triton"
    harness.wait_for(lambda: {labels["feature"] for labels, value in
                              detector.values("servewatch_window_samples", model="churn", signal="input") if value}
                     >= {"tenure_months", "monthly_charges", "support_calls", "age"}, 30,
                     "the stub's input profiles in the detector", server.processes)
    rows = detector.total("servewatch_input_values_total", job="triton-server", ml_feature_name="monthly_charges")
    assert rows == 8 * (server.churn["ok"] + server.churn["error"])
    assert detector.values("servewatch_window_samples", model="churn", signal="prediction", feature="churn_score")


def test_tritonclient_reports_every_protocol_and_mode(server: Server) -> None:
    detector = server.detector
    assert server.plain["error"] >= len(CLIENT_RUNS)        # a refused request fails the batch it joined
    harness.wait_for(lambda: outcomes(detector, ml_framework="tritonclient", ml_model_name="plain") == server.plain,
                     30, f"client-side request counters = {server.plain}", server.processes)
    jobs = {labels["job"] for labels, _ in detector.values("servewatch_inference_requests_total",
                                                           ml_framework="tritonclient")}
    assert jobs == {"triton-client"}
    instances = {labels["instance"] for labels, _ in detector.values("servewatch_inference_requests_total",
                                                                     ml_framework="tritonclient")}
    assert len(instances) == len(CLIENT_RUNS)                   # one producer per client process
    count = detector.total("servewatch_inference_duration_seconds_count", ml_framework="tritonclient")
    assert count == server.plain["ok"] + server.plain["error"]
    samples = {labels["feature"]: value for labels, value in
               detector.values("servewatch_window_samples", model="plain", signal="input")}
    assert samples.get("monthly_charges", 0) > 0, samples        # only the clients profile plain
    predictions = detector.values("servewatch_window_samples", model="plain", signal="prediction",
                                  feature="churn_score")
    assert predictions and predictions[0][1] > 0


def raw_figures(url: str) -> dict[str, float]:
    """Triton's own counters for ``plain``, read with prometheus-client's parser."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    figures: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("model") == "plain":
                figures[sample.name] = figures.get(sample.name, 0.0) + sample.value
    return figures


def test_the_metrics_bridge_maps_tritons_counters(server: Server) -> None:
    detector = server.detector
    raw = raw_figures(server.metrics_url)
    assert raw["nv_inference_request_success_total"] == server.plain["ok"]
    assert raw["nv_inference_request_failure_total"] == server.plain["error"]

    def bridged() -> bool:        # the series of the last requests may leave with the next collection
        queue = detector.total("servewatch_inference_queue_time_seconds_total", job="triton-bridge",
                               ml_model_name="plain")
        return outcomes(detector, job="triton-bridge", ml_model_name="plain") == server.plain and \
            queue == pytest.approx(raw["nv_inference_queue_duration_us_total"] / 1e6)

    harness.wait_for(bridged, 30, f"the bridge's series for plain = {raw}", server.processes)
    phases = {labels["phase"]: value for labels, value in
              detector.values("servewatch_inference_compute_time_seconds_total", job="triton-bridge")}
    assert phases == pytest.approx({"input": raw["nv_inference_compute_input_duration_us_total"] / 1e6,
                                    "infer": raw["nv_inference_compute_infer_duration_us_total"] / 1e6,
                                    "output": raw["nv_inference_compute_output_duration_us_total"] / 1e6})
    duration = detector.values("servewatch_inference_duration_seconds_sum", job="triton-bridge")
    assert duration[0][1] == pytest.approx(raw["nv_inference_request_duration_us_total"] / 1e6)
    assert detector.total("servewatch_inference_duration_seconds_count", job="triton-bridge") == server.plain["ok"]
    assert detector.total("servewatch_inference_batch_size_sum", job="triton-bridge") == raw["nv_inference_count_total"]
    assert detector.total("servewatch_inference_batch_size_count", job="triton-bridge") \
        == raw["nv_inference_exec_count_total"]
    assert not detector.values("servewatch_inference_requests_total", job="triton-bridge", ml_model_name="churn")
