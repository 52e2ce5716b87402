"""The bridge's exporter and its in-process start, over real OTLP/HTTP to a recording receiver; the sidecar
against a real tritonserver runs in tests/integration/test_triton_server.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from servewatch.instrumentation import flush, runtime
from servewatch.instrumentation.settings import Settings
from servewatch.instrumentation.triton.bridge import BridgeExporter, main, start_in_process
from servewatch.instrumentation.triton.metrics import TritonMetrics

TEXT = (Path(__file__).with_name("test_metrics.py").read_text().split('TEXT = """\\\n', 1)[1].split('"""', 1)[0]
        .replace("\\\\", "\\"))


def test_the_exporter_sends_the_mapped_metrics_and_a_last_collection_at_stop(receiver: Any,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
    settings, problems = Settings.from_environ()
    assert not problems
    metrics = TritonMetrics("http://unused", models={"resnet"}, requests=True, read=lambda url: TEXT)
    exporter = BridgeExporter(metrics, settings, instance_id="bridge-1").start()
    assert receiver.wait_for(lambda r: r.metric_points("servewatch.inference.compute.time"))
    exporter.stop()
    attributes, point, resource = receiver.metric_points("servewatch.inference.requests")[-1]
    assert resource["service.instance.id"] == "bridge-1" and resource["ml.framework"] == "triton"
    assert attributes["ml.model.name"] == "resnet"
    names = receiver.metric_names()
    assert {"servewatch.inference.duration", "servewatch.inference.batch.size", "hw.gpu.utilization"} <= names


def test_in_process_queue_time_goes_through_the_instrumentation(receiver: Any, spool: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "3600000")
    texts = [TEXT]
    monkeypatch.setattr("servewatch.instrumentation.triton.metrics._read_url", lambda url: texts[-1])
    monkeypatch.setattr("servewatch.instrumentation.triton.metrics.MAX_AGE", 0.0)
    exporter = start_in_process("http://127.0.0.1:9/metrics", lambda: {"resnet"}, framework="pytriton")
    assert exporter is not None
    assert flush(10.0)                                        # the first reading: the baseline
    texts.append(TEXT.replace("} 250000\n", "} 1250000\n"))   # one more second of queueing
    assert flush(10.0)
    exporter.stop()
    active = runtime._runtime
    assert active is not None
    (state,) = [state for state in active.recorder.states() if state.name == "resnet"]
    assert state.queue_seconds == pytest.approx(1.0)
    assert state.framework == "pytriton"
    compute = receiver.metric_points("servewatch.inference.compute.time")
    assert compute and compute[-1][2]["service.instance.id"] == active.instance_id   # one identity per process
    assert not receiver.metric_points("servewatch.inference.requests")               # the hooks own those
    assert exporter.metrics.queue_seconds() == {}                                    # stopped: reads no more


def test_the_sidecar_command_line_is_documented() -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0


def test_the_sidecar_has_nothing_to_do_without_a_metrics_exporter(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SERVEWATCH_DISABLED", "true")
    try:
        assert main(["--url", "http://127.0.0.1:9/metrics"]) == 0
    finally:
        runtime._runtime, runtime._disabled = None, False
    assert "nothing to do" in capsys.readouterr().err
