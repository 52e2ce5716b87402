"""End to end: instrumented traffic -> detector -> Prometheus -> generated rules -> Alertmanager -> pager.

Real processes on loopback: a serving process whose two models are wrapped with
``servewatch.instrumentation.monitor`` (``fraud``, listed in the spec with a reference file; ``anon``, not
listed: automatic columns, the spec's defaults, a warm-up reference) receiving HTTP requests from the test;
``servewatch detect``; Prometheus scraping the detector every second and evaluating the rules written by
``servewatch alerts``; Alertmanager with the configuration written beside them, delivering to webhooks in the
test. The spec runs at the compressed time scale (1 s buckets and interval, 10 s windows), so the rules fire
within seconds. In order: without drift nobody is paged or ticketed; then the ``amount`` feature of ``fraud``
shifts and the critical page for that model and feature must arrive within 120 s; then every query of the
dashboards ``servewatch dashboards`` wrote must return at least one series from that Prometheus. On a
machine without a GPU the serving process gets a stand-in NVML module with one device (:func:`stand_in_nvml`),
so the GPU gauges still travel the real path (``register_gpu_metrics`` -> OTLP -> detector -> Prometheus) and
the GPU panels' queries meet real series names and labels; only their values are made up.

Last, alerts posted straight to that Alertmanager check both inhibition rules of the generated configuration:
the detector down mutes its drift and data-quality alerts; a critical alert mutes the warning of the same
feature only; info goes nowhere.

Run as a script (``python test_alerting_e2e.py serve``) this file is the serving process.
"""

from __future__ import annotations

import json
import math
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.integration

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
JOB = "servewatch-detector"
PAGE_WITHIN = 120.0
COUNTRIES, SHARES = ["US", "DE", "FR"], [0.5, 0.3, 0.2]
SPEC = {
    "detector": {"bucket": "1s", "interval": "1s", "retention": "1h"},
    "defaults": {"windows": ["10s"], "min_samples": 200, "reference": {"warmup": "15s"}},
    "models": [
        {
            "name": "fraud",
            "windows": ["10s"],
            "reference": "fraud.pb",
            "features": [
                {"name": "amount", "type": "numeric", "source": {"key": "amount"}, "rules": {"min": 0}},
                {
                    "name": "country",
                    "type": "categorical",
                    "source": {"key": "country"},
                    "rules": {"allowed": COUNTRIES},
                },
            ],
            "predictions": [
                {
                    "name": "score",
                    "type": "numeric",
                    "source": {"key": "score"},
                    "rules": {"min": 0, "max": 1},
                },
                {"name": "label", "type": "categorical", "source": {"key": "label"}},
            ],
        }
    ],
}


# -- the serving process ------------------------------------------------------------------------------------


def fraud_rows(rng: np.random.Generator, n: int, shift: float = 1.0) -> list[dict[str, Any]]:
    amounts = rng.lognormal(4.5, 0.5, n) * shift
    return [
        {"amount": float(a), "country": str(c)} for a, c in zip(amounts, rng.choice(COUNTRIES, n, p=SHARES))
    ]


def fraud_model(row: dict[str, Any]) -> dict[str, Any]:
    score = 1 / (1 + math.exp(-((row["amount"] - 150) / 40 + (0.5 if row["country"] == "FR" else 0.0))))
    return {"score": score, "label": "fraud" if score > 0.5 else "ok"}


def anon_rows(rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    """Automatic columns of both kinds: numeric x and y, categorical segment."""
    return [
        {"x": float(x), "y": float(y), "segment": str(s)}
        for x, y, s in zip(rng.normal(0, 1, n), rng.uniform(0, 1, n), rng.choice(["web", "app", "api"], n))
    ]


def anon_model(row: dict[str, Any]) -> dict[str, Any]:
    p = 1 / (1 + math.exp(-row["x"]))
    return {"p": p, "cls": "a" if p > 0.5 else "b"}


def stand_in_nvml() -> None:
    """Where the real NVML finds no GPU, put a ``pynvml`` with one device in its place (see the module
    docstring); a machine with a GPU reports its own."""
    import types
    from collections import namedtuple

    try:
        import pynvml

        pynvml.nvmlInit()
        found = pynvml.nvmlDeviceGetCount()
        pynvml.nvmlShutdown()
        if found:
            return
    except Exception:
        pass
    memory, rates = namedtuple("Memory", "total free used"), namedtuple("Rates", "gpu memory")
    fake = types.ModuleType("pynvml")
    fake.nvmlInit = fake.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    fake.nvmlDeviceGetCount = lambda: 1  # type: ignore[attr-defined]
    fake.nvmlDeviceGetHandleByIndex = lambda index: index  # type: ignore[attr-defined]
    fake.nvmlDeviceGetUUID = lambda handle: "GPU-e2e-stand-in"  # type: ignore[attr-defined]
    fake.nvmlDeviceGetUtilizationRates = lambda handle: rates(gpu=42, memory=10)  # type: ignore[attr-defined]
    fake.nvmlDeviceGetMemoryInfo = lambda handle: memory(80 * 2**30, 79 * 2**30, 2**30)  # type: ignore[attr-defined]
    sys.modules["pynvml"] = fake


def serve() -> None:
    """A small model server: HTTP requests go through a queue to one worker thread (queue time is measured
    and reported), each model call is wrapped by ``monitor``. Prints its port, serves until terminated."""
    from servewatch.instrumentation import monitor, record_queue_time

    stand_in_nvml()
    models = {
        "fraud": monitor("fraud")(lambda rows: [fraud_model(r) for r in rows]),
        "anon": monitor("anon")(lambda rows: [anon_model(r) for r in rows]),
    }
    work: queue.Queue[tuple[str, Any, float, list[Any], threading.Event]] = queue.Queue()

    def worker() -> None:
        while True:
            model, rows, since, box, done = work.get()
            record_queue_time(model, time.perf_counter() - since)
            box.append(models[model](rows))
            done.set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            model = self.path.rsplit("/", 1)[-1]
            rows = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            box: list[Any] = []
            done = threading.Event()
            work.put((model, rows, time.perf_counter(), box, done))
            done.wait(10)
            body = json.dumps(box[0] if box else None).encode()
            self.send_response(200 if box else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    threading.Thread(target=worker, daemon=True).start()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


# -- the stack ----------------------------------------------------------------------------------------------


class Webhook(ThreadingHTTPServer):
    """Alertmanager's receivers: every notification, by path (``/pager``, ``/tickets``)."""

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


class Traffic(threading.Thread):
    """Requests to both models, about 30 a second each, 1 to 15 rows each; ``shift`` scales fraud's amount."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.shift = 1.0
        self.stop = threading.Event()
        self.failures = 0

    def run(self) -> None:
        rng = np.random.default_rng(7)
        while not self.stop.wait(0.02):
            n = int(rng.integers(1, 16))
            for model, rows in (("fraud", fraud_rows(rng, n, self.shift)), ("anon", anon_rows(rng, n))):
                request = urllib.request.Request(
                    f"http://127.0.0.1:{self.port}/predict/{model}",
                    data=json.dumps(rows).encode(),
                    method="POST",
                )
                try:
                    urllib.request.urlopen(request, timeout=10).read()
                except OSError:
                    self.failures += 1


class Stack:
    """Every process of the loop, started in order and stopped in reverse (by PID)."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.logs: list[Any] = []

    def start(self, name: str, command: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        log = open(self.work / f"{name}.log", "wb")  # noqa: SIM115 (closed in stop(), after the process)
        self.logs.append(log)
        process = subprocess.Popen(command, stdout=kwargs.pop("stdout", log), stderr=log, **kwargs)
        self.processes.append((name, process))
        return process

    def stop(self) -> None:
        for _, process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for _, process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs:
            log.close()

    def log(self, name: str) -> str:
        return (self.work / f"{name}.log").read_text(errors="replace")[-3000:]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(what: str, check: Any, timeout: float, stack: Stack | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        if stack is not None:
            for name, process in stack.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{stack.log(name)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout:.0f} s")
        time.sleep(0.5)


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def servewatch(*args: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "servewatch.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def write_reference(path: Path) -> None:
    from servewatch.profile import Profile
    from servewatch.spec import parse_spec
    from servewatch.wire import encode_profiles

    spec = parse_spec(SPEC).model("fraud")
    rows = fraud_rows(np.random.default_rng(1), 5000)
    inputs = Profile.from_data(rows, model="fraud", signal="input", spec=spec)
    predictions = Profile.from_data(
        [fraud_model(row) for row in rows], model="fraud", signal="prediction", spec=spec
    )
    path.write_bytes(encode_profiles([inputs, predictions]))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if PROMETHEUS is None or ALERTMANAGER is None:
        pytest.skip("prometheus / prometheus-alertmanager are not installed (Debian packages)")
    work = tmp_path_factory.mktemp("alerting")
    (work / "servewatch.yaml").write_text(yaml.safe_dump(SPEC))
    write_reference(work / "fraud.pb")
    hook = Webhook()
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    servewatch(
        "alerts",
        "--spec",
        str(work / "servewatch.yaml"),
        "-o",
        str(work / "rules.yml"),
        "--detector-job",
        JOB,
        "--pager-url",
        hook.url("pager"),
        "--ticket-url",
        hook.url("tickets"),
    )
    servewatch("dashboards", "--spec", str(work / "servewatch.yaml"), "-o", str(work / "dashboards"))
    processes = Stack(work)
    traffic = None
    try:
        detector = processes.start(
            "detector",
            [
                sys.executable,
                "-m",
                "servewatch.cli",
                "detect",
                "--spec",
                str(work / "servewatch.yaml"),
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                "--state",
                str(work / "state"),
            ],
            stdout=subprocess.PIPE,
        )
        banner = detector.stdout.readline().decode()  # type: ignore[union-attr]
        otlp, metrics = re.findall(r"http://127\.0\.0\.1:\d+", banner)[:2]  # where it bound port 0
        am_port, prom_port = free_port(), free_port()
        processes.start(
            "alertmanager",
            [
                ALERTMANAGER,
                f"--config.file={work / 'alertmanager.yml'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
                f"--storage.path={work / 'alertmanager'}",
            ],
        )
        (work / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(work / "rules.yml")],
                    "alerting": {
                        "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
                    },
                    "scrape_configs": [
                        {
                            "job_name": JOB,
                            "honor_labels": True,
                            "static_configs": [{"targets": [metrics.removeprefix("http://")]}],
                        }
                    ],
                }
            )
        )
        processes.start(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={work / 'prometheus.yml'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                f"--storage.tsdb.path={work / 'prometheus'}",
            ],
        )
        env = {
            **os.environ,
            "SERVEWATCH_SPEC": str(work / "servewatch.yaml"),
            "SERVEWATCH_PROFILE_INTERVAL": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "OTEL_SERVICE_NAME": "fraud-server",
        }
        server = processes.start(
            "server", [sys.executable, __file__, "serve"], env=env, stdout=subprocess.PIPE
        )
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        prometheus = f"http://127.0.0.1:{prom_port}"
        for url in (f"{metrics}/readyz", f"{prometheus}/-/ready", f"http://127.0.0.1:{am_port}/-/ready"):
            wait_until(url, lambda url=url: http_ok(url), 60, processes)
        traffic = Traffic(port)
        traffic.start()
        yield {
            "prometheus": prometheus,
            "alertmanager": f"http://127.0.0.1:{am_port}",
            "hook": hook,
            "traffic": traffic,
            "work": work,
            "stack": processes,
        }
    finally:
        if traffic is not None:
            traffic.stop.set()
            traffic.join(timeout=15)
        processes.stop()
        hook.shutdown()
        hook.server_close()


def query(prometheus: str, promql: str) -> list[dict[str, Any]]:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


# -- the tests (in this order: they share one running stack) ------------------------------------------------


def test_without_drift_nobody_is_paged(stack: dict[str, Any]) -> None:
    prometheus, hook = stack["prometheus"], stack["hook"]
    for selector in (
        'servewatch_drift_ks{model="fraud",feature="amount"}',
        'servewatch_drift_ks{model="anon"}',
    ):
        wait_until(f"{selector} in Prometheus", lambda s=selector: query(prometheus, s), 90, stack["stack"])
    with urllib.request.urlopen(f"{prometheus}/api/v1/rules", timeout=10) as response:
        groups = json.loads(response.read())["data"]["groups"]
    broken = [
        (rule["name"], rule.get("lastError"))
        for group in groups
        for rule in group["rules"]
        if rule["health"] == "err"
    ]
    assert not broken
    assert len(groups) == 6  # serving rules, serving, detector, held gauges, fraud, the unlisted models
    time.sleep(25)  # longer than `for` (10 s) + Alertmanager's group wait: a drift would have fired by now
    drift = query(prometheus, 'max by (model, feature) (servewatch_drift_ks{signal="input"})')
    assert drift and all(float(sample["value"][1]) < 0.1 for sample in drift), drift
    assert hook.alerts("pager") == [], hook.alerts("pager")
    assert hook.alerts("tickets") == [], hook.alerts("tickets")
    assert stack["traffic"].failures == 0


def test_drift_pages_for_the_right_model_and_feature(stack: dict[str, Any]) -> None:
    hook = stack["hook"]
    started = time.monotonic()
    stack["traffic"].shift = 3.0

    def paged() -> list[dict[str, Any]]:
        return [
            alert
            for alert in hook.alerts("pager")
            if alert["status"] == "firing"
            and alert["labels"]["alertname"] == "ServewatchInputDrift"
            and alert["labels"].get("model") == "fraud"
            and alert["labels"].get("feature") == "amount"
            and alert["labels"]["severity"] == "critical"
        ]

    pages = wait_until("the critical page for fraud/amount", paged, PAGE_WITHIN, stack["stack"])
    elapsed = time.monotonic() - started
    print(f"\ncritical page for fraud/amount {elapsed:.1f} s after the drift began")
    page = pages[0]
    assert page["labels"]["job"] == JOB and page["labels"]["signal"] == "input"
    assert "amount" in page["annotations"]["description"]
    assert page["annotations"]["runbook_url"].endswith("/ServewatchInputDrift.md")
    everything = hook.alerts("pager") + hook.alerts("tickets")
    assert not [a for a in everything if a["labels"].get("model") == "anon"], (
        "the undrifted model was alerted"
    )
    inputs = {
        a["labels"].get("feature") for a in everything if a["labels"]["alertname"] == "ServewatchInputDrift"
    }
    assert inputs == {"amount"}, inputs


def test_every_dashboard_query_returns_a_series(stack: dict[str, Any]) -> None:
    from servewatch.dashboards.queries import expand, queries, variable_queries

    prometheus, work = stack["prometheus"], stack["work"]
    values = {
        "servewatch-overview.json": {"model": ".+", "window": "10s"},
        "servewatch-model-fraud.json": {"model": "fraud", "window": "10s", "feature": ".+"},
        "servewatch-other-models.json": {"model": "anon", "window": "10s", "feature": ".+"},
    }
    empty, checked = [], 0
    for name, variables in values.items():
        document = json.loads((work / "dashboards" / name).read_text())
        targets = [
            (title, ref, expand(expr, variables, rate_interval="15s"))
            for title, ref, expr in queries(document)
        ]
        targets += [
            (f"${variable}", "", expand(expr, variables)) for variable, expr in variable_queries(document)
        ]
        for title, ref, promql in targets:
            checked += 1
            if not query(prometheus, promql):
                empty.append(f"{name}: {title} {ref}: {promql}")
    print(f"\n{checked} dashboard queries checked")
    assert not empty, "queries without a series:\n" + "\n".join(empty)
    assert checked > 60


def post_alerts(alertmanager: str, alerts: list[dict[str, str]]) -> None:
    body = json.dumps([{"labels": labels, "annotations": {"summary": "test"}} for labels in alerts]).encode()
    request = urllib.request.Request(
        f"{alertmanager}/api/v2/alerts",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def alert_states(alertmanager: str, job: str) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Alertmanager's view of the alerts of ``job``: (alertname, feature, severity) -> status."""
    with urllib.request.urlopen(f"{alertmanager}/api/v2/alerts", timeout=5) as response:
        alerts = json.loads(response.read())
    return {
        (a["labels"]["alertname"], a["labels"].get("feature", ""), a["labels"]["severity"]): a["status"]
        for a in alerts
        if a["labels"].get("job") == job
    }


def settle(check: Any, timeout: float = 30.0) -> None:
    """Run ``check`` until it stops raising AssertionError (Alertmanager works in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_detector_down_mutes_its_drift_alerts(stack: dict[str, Any]) -> None:
    alertmanager, hook = stack["alertmanager"], stack["hook"]
    job = "detector-inhibition-test"
    post_alerts(
        alertmanager,
        [
            {"alertname": "ServewatchDetectorDown", "severity": "critical", "job": job, "instance": "d:9108"},
            {
                "alertname": "ServewatchInputDrift",
                "severity": "critical",
                "job": job,
                "model": "m1",
                "signal": "input",
                "feature": "amount",
                "window": "10s",
                "statistic": "ks",
            },
            {
                "alertname": "ServewatchDataQualityRuleViolated",
                "severity": "warning",
                "job": job,
                "model": "m1",
                "signal": "input",
                "feature": "country",
                "rule": "allowed",
            },
            {
                "alertname": "ServewatchModelErrorBudgetBurn",
                "severity": "critical",
                "job": job,
                "model": "m1",
                "ml_model_name": "m1",
                "long": "1m",
                "short": "5s",
            },
        ],
    )

    def check() -> None:
        now = alert_states(alertmanager, job)
        assert now[("ServewatchInputDrift", "amount", "critical")]["state"] == "suppressed"
        assert now[("ServewatchDataQualityRuleViolated", "country", "warning")]["state"] == "suppressed"
        assert now[("ServewatchDetectorDown", "", "critical")]["state"] == "active"
        assert now[("ServewatchModelErrorBudgetBurn", "", "critical")]["state"] == "active"
        paged = {a["labels"]["alertname"] for a in hook.alerts("pager") if a["labels"].get("job") == job}
        assert paged == {"ServewatchDetectorDown", "ServewatchModelErrorBudgetBurn"}

    settle(check)
    assert (
        len(alert_states(alertmanager, job)[("ServewatchInputDrift", "amount", "critical")]["inhibitedBy"])
        == 1
    )
    assert not [a for a in hook.alerts("tickets") if a["labels"].get("job") == job]


def test_critical_mutes_the_warning_of_the_same_feature_only(stack: dict[str, Any]) -> None:
    alertmanager, hook = stack["alertmanager"], stack["hook"]
    job = "tiers-inhibition-test"
    common = {
        "alertname": "ServewatchPredictionDrift",
        "job": job,
        "model": "m2",
        "signal": "prediction",
        "window": "10s",
    }
    post_alerts(
        alertmanager,
        [
            {**common, "severity": "critical", "feature": "score", "statistic": "ks"},
            {**common, "severity": "warning", "feature": "score", "statistic": "psi"},
            {**common, "severity": "warning", "feature": "rank", "statistic": "psi"},
            {"alertname": "ServewatchWindowTooFewSamples", "severity": "info", "job": job, "model": "m2"},
        ],
    )

    def check() -> None:
        now = alert_states(alertmanager, job)
        assert now[("ServewatchPredictionDrift", "score", "warning")]["state"] == "suppressed"
        assert now[("ServewatchPredictionDrift", "rank", "warning")]["state"] == "active"
        assert {a["labels"]["feature"] for a in hook.alerts("tickets") if a["labels"].get("job") == job} == {
            "rank"
        }
        paged = {a["labels"]["feature"] for a in hook.alerts("pager") if a["labels"].get("job") == job}
        assert paged == {"score"}

    settle(check)
    assert alert_states(alertmanager, job)[("ServewatchWindowTooFewSamples", "", "info")]["state"] == "active"
    assert not [
        a
        for a in hook.alerts("pager") + hook.alerts("tickets")
        if a["labels"]["alertname"] == "ServewatchWindowTooFewSamples"
    ]  # info goes nowhere


if __name__ == "__main__" and sys.argv[1:] == ["serve"]:
    serve()
