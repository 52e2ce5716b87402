"""The generated Alertmanager configuration, run by a real Alertmanager: routing to the pager and ticket
webhooks, and both inhibition rules (detector down mutes its drift alerts; critical mutes the warning
tier)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from servewatch.alerts import Config, Receivers, alertmanager_config, dump_yaml

from servewatch.spec import Spec

pytestmark = pytest.mark.integration

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


class Webhook(ThreadingHTTPServer):
    """Collects Alertmanager's webhook notifications, by path."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.notifications: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{path}"

    def alerts(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                alert for where, body in self.notifications if where == f"/{path}" for alert in body["alerts"]
            ]


class _Hook(BaseHTTPRequestHandler):
    server: Webhook

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.notifications.append((self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s")


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Webhook]]:
    if ALERTMANAGER is None:
        pytest.skip("prometheus-alertmanager is not installed (Debian package prometheus-alertmanager)")
    work = tmp_path_factory.mktemp("alertmanager")
    hook = Webhook()
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    config = alertmanager_config(
        Spec(), Config(time_scale=1 / 60), Receivers(hook.url("pager"), hook.url("tickets"))
    )
    (work / "alertmanager.yml").write_text(dump_yaml(config))
    port = free_port()
    log = open(work / "alertmanager.log", "wb")  # noqa: SIM115 (closed after the process, below)
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={work / 'alertmanager.yml'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            f"--storage.path={work / 'data'}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/-/ready", process)
        yield f"http://127.0.0.1:{port}", hook
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        hook.shutdown()
        hook.server_close()


def post_alerts(base: str, alerts: list[dict[str, str]]) -> None:
    body = json.dumps([{"labels": labels, "annotations": {"summary": "test"}} for labels in alerts]).encode()
    request = urllib.request.Request(
        f"{base}/api/v2/alerts", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def states(base: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    with urllib.request.urlopen(f"{base}/api/v2/alerts", timeout=5) as response:
        alerts = json.loads(response.read())
    return {
        (a["labels"]["alertname"], a["labels"].get("feature", ""), a["labels"]["severity"]): a["status"]
        for a in alerts
    }


def settle(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_detector_down_mutes_its_drift_alerts(alertmanager: tuple[str, Webhook]) -> None:
    base, hook = alertmanager
    job = "servewatch-detector"
    post_alerts(
        base,
        [
            {"alertname": "ServewatchDetectorDown", "severity": "critical", "job": job, "instance": "d:9108"},
            {
                "alertname": "ServewatchInputDrift",
                "severity": "critical",
                "job": job,
                "model": "fraud",
                "signal": "input",
                "feature": "amount",
                "window": "10s",
                "statistic": "ks",
            },
            {
                "alertname": "ServewatchDataQualityRuleViolated",
                "severity": "warning",
                "job": job,
                "model": "fraud",
                "signal": "input",
                "feature": "country",
                "rule": "allowed",
            },
            {
                "alertname": "ServewatchModelErrorBudgetBurn",
                "severity": "critical",
                "job": "fraud-server",
                "model": "fraud",
                "ml_model_name": "fraud",
                "long": "1m",
                "short": "5s",
            },
        ],
    )

    def check() -> None:
        now = states(base)
        assert now[("ServewatchInputDrift", "amount", "critical")]["state"] == "suppressed"
        assert now[("ServewatchDataQualityRuleViolated", "country", "warning")]["state"] == "suppressed"
        assert now[("ServewatchDetectorDown", "", "critical")]["state"] == "active"
        assert now[("ServewatchModelErrorBudgetBurn", "", "critical")]["state"] == "active"
        paged = {a["labels"]["alertname"] for a in hook.alerts("pager")}
        assert paged == {"ServewatchDetectorDown", "ServewatchModelErrorBudgetBurn"}

    settle(check)
    inhibited = states(base)[("ServewatchInputDrift", "amount", "critical")]["inhibitedBy"]
    assert len(inhibited) == 1
    assert not [
        a
        for a in hook.alerts("pager") + hook.alerts("tickets")
        if a["labels"]["job"] == job and a["labels"]["alertname"] != "ServewatchDetectorDown"
    ]


def test_critical_mutes_the_warning_of_the_same_feature_only(alertmanager: tuple[str, Webhook]) -> None:
    base, hook = alertmanager
    common = {
        "alertname": "ServewatchPredictionDrift",
        "job": "detector-b",
        "model": "ranker",
        "signal": "prediction",
        "window": "10s",
    }
    post_alerts(
        base,
        [
            {**common, "severity": "critical", "feature": "score", "statistic": "ks"},
            {**common, "severity": "warning", "feature": "score", "statistic": "psi"},
            {**common, "severity": "warning", "feature": "rank", "statistic": "psi"},
            {
                "alertname": "ServewatchWindowTooFewSamples",
                "severity": "info",
                "job": "detector-b",
                "model": "ranker",
            },
        ],
    )

    def check() -> None:
        now = states(base)
        assert now[("ServewatchPredictionDrift", "score", "warning")]["state"] == "suppressed"
        assert now[("ServewatchPredictionDrift", "rank", "warning")]["state"] == "active"
        ranker_tickets = {
            a["labels"]["feature"] for a in hook.alerts("tickets") if a["labels"].get("model") == "ranker"
        }
        assert ranker_tickets == {"rank"}
        assert any(a["labels"].get("feature") == "score" for a in hook.alerts("pager"))

    settle(check)
    assert not [
        a
        for a in hook.alerts("pager") + hook.alerts("tickets")
        if a["labels"]["alertname"] == "ServewatchWindowTooFewSamples"
    ]  # info goes nowhere
