"""Queue time from TorchServe's metrics API: finding the frontend's configuration, parsing its exposition, one
reporting worker per model (against a local HTTP server speaking TorchServe's exposition format)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from servewatch.instrumentation import errors
from servewatch.instrumentation.torchserve.frontend import QueueTimeBridge, metrics_url, queue_seconds, read_properties
from support import MetricsEndpoint, wait_for

# What TorchServe 0.12's metrics API answers in prometheus mode (note the trailing commas)
EXPOSITION = """\
# HELP ts_queue_latency_microseconds Torchserve prometheus counter metric with unit: Microseconds
# TYPE ts_queue_latency_microseconds counter
ts_queue_latency_microseconds{model_name="churn",model_version="default",hostname="vm",} 990888.964
ts_queue_latency_microseconds{model_name="churn",model_version="2.0",hostname="vm",} 9111.036
ts_queue_latency_microseconds{model_name="churn4",model_version="default",hostname="vm",} 5.0
ts_queue_latency_microseconds{model_name="we\\"ird",model_version="default",hostname="vm",} 2e6
"""


def test_queue_seconds_sums_the_versions_of_one_model() -> None:
    assert queue_seconds(EXPOSITION, "churn") == pytest.approx(1.0)
    assert queue_seconds(EXPOSITION, "churn4") == pytest.approx(5e-6)
    assert queue_seconds(EXPOSITION, 'we"ird') == pytest.approx(2.0)
    assert queue_seconds(EXPOSITION, "absent") is None
    assert queue_seconds("ts_queue_latency_microseconds_other{model_name=\"churn\",} 5\n", "churn") is None
    assert queue_seconds('ts_queue_latency_microseconds{model_name="churn",} garbage\n', "churn") is None


def test_an_unreadable_line_is_counted_and_the_others_still_read() -> None:
    errors.reset()
    text = EXPOSITION + 'ts_queue_latency_microseconds{model_name="churn",} garbage\nnot a sample at all\n'
    assert queue_seconds(text, "churn") == pytest.approx(1.0)
    assert errors.counts() == {"torchserve.queue_time.parse": 1}
    errors.reset()


def test_read_properties(tmp_path: Path) -> None:
    path = tmp_path / "config.properties"
    path.write_text("# comment\n! also a comment\n\nmetrics_mode = prometheus\nmetrics_address:http\\://h\\:1\n"
                    "models={\"a\": \\\n   1}\nkey\\=with\\=equals=v\n")
    assert read_properties(str(path)) == {"metrics_mode": "prometheus", "metrics_address": "http://h:1",
                                          "models": '{"a": 1}', "key=with=equals": "v"}


def config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "config.properties"
    path.write_text(text)
    return {"TS_CONFIG_FILE": str(path)}


@pytest.mark.parametrize(("text", "extra", "expected"), [
    ("metrics_mode=prometheus\n", {}, "http://127.0.0.1:8082"),
    ("metrics_mode=prometheus\nmetrics_address=http://0.0.0.0:9000\n", {}, "http://127.0.0.1:9000"),
    ("metrics_mode=prometheus\nmetrics_address=https://ts.local:9000\n", {}, "https://ts.local:9000"),
    ("metrics_mode=log\n", {}, None),
    ("", {}, None),
    ("metrics_mode=prometheus\nenable_metrics_api=false\n", {}, None),
    ("metrics_mode=log\n", {"TS_METRICS_MODE": "prometheus"}, None),  # env ignored unless enabled
    ("enable_envvars_config=true\n", {"TS_METRICS_MODE": "prometheus", "TS_METRICS_ADDRESS": "http://127.0.0.1:1"},
     "http://127.0.0.1:1"),
    ("metrics_mode=log\n", {"SERVEWATCH_TORCHSERVE_METRICS_URL": "http://10.0.0.1:8082"}, "http://10.0.0.1:8082"),
    ("metrics_mode=prometheus\n", {"SERVEWATCH_TORCHSERVE_METRICS_URL": "none"}, None),
])
def test_metrics_url_from_the_frontend_configuration(tmp_path: Path, text: str, extra: dict[str, str],
                                                     expected: str | None) -> None:
    url, reason = metrics_url({**config(tmp_path, text), **extra}, frontend_pid=1)
    assert url == expected, reason
    assert reason


def test_metrics_url_from_the_frontend_process(tmp_path: Path) -> None:
    """No TS_CONFIG_FILE: the worker's parent is the frontend, started with ``-f <config>`` from its cwd."""
    (tmp_path / "ts.properties").write_text("metrics_mode=prometheus\nmetrics_address=http://127.0.0.1:18082\n")
    frontend = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "org.pytorch.serve.ModelServer",
                                 "-f", "ts.properties"], cwd=tmp_path)
    try:
        cmdline = Path(f"/proc/{frontend.pid}/cmdline")
        wait_for(lambda: b"org.pytorch.serve.ModelServer" in cmdline.read_bytes(), 30, "the exec")
        assert metrics_url({}, frontend.pid)[0] == "http://127.0.0.1:18082"
        (tmp_path / "ts.properties").rename(tmp_path / "config.properties")
        assert metrics_url({}, frontend.pid)[0] is None  # -f names a file that is gone: TorchServe's defaults
    finally:
        frontend.kill()
        frontend.wait()
    assert metrics_url({}, frontend.pid)[0] is None  # no such process
    assert metrics_url({}, 1)[0] is None  # a parent that is not TorchServe


@pytest.fixture
def frontend() -> Iterator[MetricsEndpoint]:
    """Serves EXPOSITION on /metrics like TorchServe's metrics API; remembers the queries."""
    with MetricsEndpoint(EXPOSITION) as server:
        yield server


def test_one_worker_per_model_reports(frontend: MetricsEndpoint, tmp_path: Path) -> None:
    env = {"SERVEWATCH_TORCHSERVE_METRICS_URL": frontend.address + "/metrics"}
    first, second = (QueueTimeBridge("churn", environ=env, lock_dir=str(tmp_path)) for _ in range(2))
    other = QueueTimeBridge("churn4", environ=env, lock_dir=str(tmp_path))
    assert first.read() == {"churn": pytest.approx(1.0)}
    assert second.read() == {}  # the first one holds the model's lock
    assert other.read() == {"churn4": pytest.approx(5e-6)}
    assert frontend.paths[0] == "/metrics?name%5B%5D=ts_queue_latency_microseconds"
    first.close()  # the worker exits
    assert second.read() == {"churn": pytest.approx(1.0)}
    frontend.text = "# nothing yet\n"
    assert second.read() == {}


def test_no_bridge_without_the_metrics_api(tmp_path: Path) -> None:
    bridge = QueueTimeBridge("churn", environ=config(tmp_path, "metrics_mode=log\n"), lock_dir=str(tmp_path))
    assert bridge.url is None and bridge.read() == {}


def test_an_unreachable_frontend_raises_for_the_caller_to_count(tmp_path: Path) -> None:
    env = {"SERVEWATCH_TORCHSERVE_METRICS_URL": "http://127.0.0.1:9"}
    with pytest.raises(OSError):
        QueueTimeBridge("churn", environ=env, lock_dir=str(tmp_path)).read()
