"""The bridge on the instrumentation's own metrics pipeline, over real OTLP/HTTP to a recording receiver: the
sidecar's series per model, its collections by the runtime's thread, and the in-process start; the sidecar
against a real tritonserver runs in tests/integration/test_triton_server.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from servewatch.instrumentation import bridges, errors, flush, runtime
from servewatch.instrumentation.triton.bridge import SCOPE, main, run_sidecar, start_in_process
from support import MetricsEndpoint

TEXT = (Path(__file__).with_name("test_metrics.py").read_text().split('TEXT = """\\\n', 1)[1].split('"""', 1)[0]
        .replace("\\\\", "\\"))


@pytest.fixture
def bridging(receiver: Any, monkeypatch: pytest.MonkeyPatch, fresh_runtime: None) -> Iterator[list[str]]:
    """A runtime in this process exporting metrics to ``receiver`` (no periodic export unless the test sets
    the interval); Triton's endpoint answers the last text of the list returned."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("SERVEWATCH_PROFILE_INTERVAL", "3600")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000")
    monkeypatch.setattr(bridges, "_metric_sources", [])
    monkeypatch.setattr(bridges, "_queue_sources", [])
    texts = [TEXT]
    monkeypatch.setattr("servewatch.instrumentation.triton.metrics._read_url", lambda url: texts[-1])
    monkeypatch.setattr("servewatch.instrumentation.triton.metrics.MAX_AGE", 0.0)
    yield texts


def exports(receiver: Any) -> list[tuple[str, dict[str, dict[tuple[str, frozenset[Any]], Any]]]]:
    """Per metrics request received: ``(service.instance.id, {scope: {(metric, attributes): point}})``."""
    requests = []
    for received in receiver.of("/v1/metrics"):
        message = ExportMetricsServiceRequest()
        message.ParseFromString(received.body)
        for resource_metrics in message.resource_metrics:
            instance = next(kv.value.string_value for kv in resource_metrics.resource.attributes
                            if kv.key == "service.instance.id")
            scopes: dict[str, dict[tuple[str, frozenset[Any]], Any]] = {}
            for scope in resource_metrics.scope_metrics:
                points = scopes.setdefault(scope.scope.name, {})
                for metric in scope.metrics:
                    for point in getattr(metric, metric.WhichOneof("data")).data_points:
                        attributes = frozenset((kv.key, kv.value.string_value) for kv in point.attributes)
                        points[(metric.name, attributes)] = point
            requests.append((instance, scopes))
    return requests


def model(name: str, **more: str) -> frozenset[Any]:
    return frozenset({"ml.model.name": name, "ml.framework": "triton", **more}.items())


GPU = frozenset({("hw.id", "GPU-8b2ac6ff-0dc7-4f21-9f0d-1e1f0b2a7c11")})
PHASES = ("input", "infer", "output")
SERIES = {("servewatch.inference.compute.time", model("resnet", phase=phase)) for phase in PHASES} \
    | {("servewatch.inference.requests", model("resnet", outcome=outcome)) for outcome in ("ok", "error")} \
    | {("servewatch.inference.duration", model("resnet", outcome="ok")),
       ("servewatch.inference.batch.size", model("resnet", outcome="ok"))} \
    | {(name, GPU) for name in ("hw.gpu.utilization", "hw.gpu.memory.usage", "hw.gpu.memory.limit")}
"""What the sidecar reports of TEXT for the watched model ``resnet``."""


def test_the_sidecar_reports_the_mapped_series_per_model_with_the_runtimes_collection(
        receiver: Any, bridging: list[str]) -> None:
    metrics = run_sidecar("http://127.0.0.1:9/metrics", models={"resnet"})
    assert metrics is not None and metrics.requests
    assert flush(10.0)
    bridging.append(TEXT.replace("} 250000\n", "} 1250000\n"))   # one more second of queueing
    assert flush(10.0)
    active = runtime.active()
    assert active is not None
    ((instance, first), (_, second)) = exports(receiver)     # one request per collection: one pipeline
    assert instance == active.instance_id and set(first[SCOPE]) == set(second[SCOPE]) == SERIES
    points = second[SCOPE]
    assert points[("servewatch.inference.requests", model("resnet", outcome="ok"))].as_double == 100.0
    assert points[("servewatch.inference.requests", model("resnet", outcome="error"))].as_double == 6.0
    duration = points[("servewatch.inference.duration", model("resnet", outcome="ok"))]
    assert (duration.count, duration.sum) == (100, pytest.approx(2.0))
    assert points[("hw.gpu.utilization", GPU)].as_double == 0.75
    queue = second["servewatch"][("servewatch.inference.queue.time", model("resnet"))]
    assert queue.as_double == pytest.approx(1.0)             # the instrumentation's own counter, from now on
    metrics.close()
    assert flush(10.0)                                       # closed: the bridge reports nothing more
    assert SCOPE not in exports(receiver)[-1][1]
    assert errors.counts() == {}


def test_the_runtimes_thread_collects_the_bridge(receiver: Any, bridging: list[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
    metrics = run_sidecar("http://127.0.0.1:9/metrics", models={"resnet"})
    assert metrics is not None
    assert receiver.wait_for(lambda r: len(r.metric_points("servewatch.inference.compute.time")) >= 6)
    names = {thread.name for thread in threading.enumerate()}
    assert "servewatch" in names and not any("triton" in name for name in names)   # no thread of its own


def test_in_process_queue_time_goes_through_the_instrumentation(receiver: Any, bridging: list[str]) -> None:
    metrics = start_in_process("http://127.0.0.1:9/metrics", lambda: {"resnet"}, framework="pytriton")
    assert metrics is not None and not metrics.requests
    assert flush(10.0)                                        # the first reading: the baseline
    bridging.append(TEXT.replace("} 250000\n", "} 1250000\n"))   # one more second of queueing
    assert flush(10.0)
    metrics.close()
    active = runtime.active()
    assert active is not None
    (state,) = [state for state in active.recorder.states() if state.name == "resnet"]
    assert state.queue_seconds == pytest.approx(1.0)
    assert state.framework == "pytriton"
    compute = receiver.metric_points("servewatch.inference.compute.time")
    assert compute and compute[-1][2]["service.instance.id"] == active.instance_id   # one identity per process
    assert not receiver.metric_points("servewatch.inference.requests")               # the hooks own those
    assert metrics.queue_seconds() == {}                                             # closed: reads no more


def test_nothing_is_bridged_without_a_metrics_exporter(bridging: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    assert start_in_process("http://127.0.0.1:9/metrics", lambda: {"resnet"}, framework="pytriton") is None
    assert run_sidecar("http://127.0.0.1:9/metrics") is None
    assert bridges._metric_sources == [] and bridges._queue_sources == []


def test_the_sidecar_command_sends_a_last_collection_when_stopped(receiver: Any) -> None:
    triton = MetricsEndpoint(TEXT)      # Triton's metrics endpoint
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "SERVEWATCH_"))}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_METRIC_EXPORT_INTERVAL="3600000",
               OTEL_SERVICE_NAME="triton-bridge")
    process = subprocess.Popen([sys.executable, "-m", "servewatch.instrumentation.triton.bridge", "--url", triton.url,
                                "--model", "resnet"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        output = ""
        for line in process.stdout:  # type: ignore[union-attr]
            output += line
            if "SIGTERM or Ctrl-C stops" in line:
                break
        process.send_signal(signal.SIGTERM)
        output += process.communicate(timeout=30)[0]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        triton.close()
    assert process.returncode == 0, output
    assert len(triton.paths) >= 1 and "leaked" not in output
    requests = {attributes["outcome"]: (point.as_double, resource["service.name"])
                for attributes, point, resource in receiver.metric_points("servewatch.inference.requests")}
    assert requests == {"ok": (100.0, "triton-bridge"), "error": (6.0, "triton-bridge")}
    assert len(receiver.of("/v1/metrics")) == 1                                      # the last collection, once


def test_the_sidecar_command_line_is_documented() -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0


def test_the_sidecar_has_nothing_to_do_when_disabled(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SERVEWATCH_DISABLED", "true")
    try:
        assert main(["--url", "http://127.0.0.1:9/metrics"]) == 0
    finally:
        runtime.forget()
        runtime._disabled = False
    assert "nothing to do" in capsys.readouterr().err
