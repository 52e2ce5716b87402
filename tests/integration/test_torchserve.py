"""A real TorchServe under ``opentelemetry-instrument`` feeding a real ``servewatch detect``.

One TorchServe serves two archives built from ``examples/torchserve`` at test time: ``churn`` (one worker, no
batching) and ``churn4`` (two workers, ``batchSize`` 4, ``maxBatchDelay`` 100 ms, whose handler also writes the
size of every batch it receives to a file: the ground truth for the batch-size metric). Everything the workers
send passes through an OTLP tap (:class:`OTLPTap`) on its way to the detector, which records who sent it.
The spec is the example's, on a compressed time scale (1 s buckets and profiles, an 8 s window and warm-up).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import load_module

pytest.importorskip("torch", reason="the torchserve extra is not installed")
pytest.importorskip("ts", reason="the torchserve extra is not installed")

ROOT = Path(__file__).resolve().parents[2]
harness = load_module("torchserve_harness", ROOT / "bench" / "torchserve_harness.py")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

FEATURES = ("tenure", "monthly_charges", "support_calls")
SHIFTED = "support_calls"
WINDOW = "8s"
RECORDING_HANDLER = '''
"""The example's handler, writing "<pid> <batch size>" per batch to $CHURN_BATCH_LOG."""
import os

from handler import ChurnHandler


class RecordingChurnHandler(ChurnHandler):
    def handle(self, data, context):
        with open(os.environ["CHURN_BATCH_LOG"], "a") as log:
            log.write(f"{os.getpid()} {len(data)}\\n")
        return super().handle(data, context)
'''


def compressed_spec() -> dict[str, Any]:
    """The example's spec on a test's time scale, plus ``churn4`` with the same columns and a long window."""
    spec = yaml.safe_load((harness.EXAMPLE / "servewatch.yaml").read_text())
    churn = spec["models"][0]
    assert [feature["name"] for feature in churn["features"]] == list(FEATURES)
    churn.update(reference={"warmup": WINDOW}, windows=[WINDOW], thresholds={"ks": {"warning": 0.25, "critical": 0.5}})
    spec["models"].append({**churn, "name": "churn4", "windows": ["1h"], "reference": {"warmup": "1h"}})
    spec["detector"] = {"bucket": "1s", "interval": "1s"}
    return spec


class Stack:
    """The detector, the tap and TorchServe, with what the tests need to read them."""

    def __init__(self, detector: Any, tap: Any, server: Any, batch_log: Path) -> None:
        self.detector, self.tap, self.server, self.batch_log = detector, tap, server, batch_log

    def logs(self) -> str:
        return f"{self.server.log_tail()}\n{self.detector.log_tail()}"

    def wait(self, condition: Any, what: str, timeout: float = 120.0) -> Any:
        try:
            return harness.wait_for(condition, timeout, what, interval=0.5)
        except TimeoutError as error:
            raise AssertionError(f"{error}\n{self.logs()}") from None

    def serving(self, name: str, text: str | None = None, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` on the detector's /metrics (``text``:
        an earlier scrape), e.g. a serving series over all workers."""
        return sum(value for _, value in self.detector.samples(name, text, **labels))

    def send(self, model: str, rows: list[list[float]], clients: int = 4) -> Counter[int]:
        with ThreadPoolExecutor(clients) as pool:
            return Counter(status for status, _ in pool.map(lambda row: self.server.predict(model, row), rows))

    def worker_pids(self) -> set[int]:
        return {int(worker["pid"]) for model in ("churn", "churn4") for worker in self.server.workers(model)}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("torchserve")
    store = root / "store"
    (root / "recording_handler.py").write_text(RECORDING_HANDLER)
    churn = harness.build_archive(store, "churn")
    churn4 = harness.build_archive(store, "churn4", handler=root / "recording_handler.py",
                                   extra_files=(harness.EXAMPLE / "handler.py",))
    spec_path = root / "servewatch.yaml"
    spec_path.write_text(yaml.safe_dump(compressed_spec()))
    batch_log = root / "batches.log"
    with harness.Detector(root / "detector", spec_path) as detector, harness.OTLPTap(detector.otlp_url) as tap:
        env = {"SERVEWATCH_SPEC": str(spec_path), "SERVEWATCH_PROFILE_INTERVAL": "1",
               "OTEL_METRIC_EXPORT_INTERVAL": "1000", "OTEL_EXPORTER_OTLP_ENDPOINT": tap.url,
               "CHURN_BATCH_LOG": str(batch_log)}
        models = {"churn": {"marName": churn.name},
                  "churn4": {"marName": churn4.name, "minWorkers": 2, "maxWorkers": 2, "batchSize": 4,
                             "maxBatchDelay": 100}}
        server = harness.TorchServe(root / "ts", models, store=store, instrumented=True, env=env,
                                    properties={"metric_time_interval": "1"})
        with server:
            yield Stack(detector, tap, server, batch_log)


class Traffic:
    """Background requests to ``churn`` from standard normal features, ``shift`` added to one of them."""

    def __init__(self, stack: Stack, clients: int = 2) -> None:
        self.stack = stack
        self.shift = 0.0
        self.statuses: Counter[int] = Counter()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(seed,), daemon=True) for seed in range(clients)]

    def _run(self, seed: int) -> None:
        rng = random.Random(seed)
        while not self._stop.is_set():
            row = [rng.gauss(0, 1), rng.gauss(0, 1), rng.gauss(0, 1) + self.shift]
            self.statuses[self.stack.server.predict("churn", row)[0]] += 1

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


def test_drift_of_one_shifted_feature(stack: Stack) -> None:
    def ks() -> dict[str, float]:
        return {labels["feature"]: value for labels, value in
                stack.detector.samples("servewatch_drift_ks", model="churn", signal="input", window=WINDOW)}

    with Traffic(stack) as traffic:
        stack.wait(lambda: stack.serving("servewatch_detector_reference_ready", model="churn", signal="input",
                                         window=WINDOW) == 1, "the warm-up reference")
        traffic.shift = 2.0
        stack.wait(lambda: ks().get(SHIFTED, 0.0) > 0.5, f"KS of {SHIFTED} over 0.5 once shifted")
        values = ks()
    assert traffic.statuses[200] > 200 and set(traffic.statuses) == {200}, traffic.statuses
    assert values[SHIFTED] > 0.25, values
    assert all(values[name] < 0.25 for name in FEATURES if name != SHIFTED), values
    severity = {labels["feature"]: value for labels, value in
                stack.detector.samples("servewatch_drift_severity", model="churn", signal="input", window=WINDOW)}
    assert severity[SHIFTED] >= 1 and all(severity[name] == 0 for name in FEATURES if name != SHIFTED), severity


def test_serving_metrics_carry_the_model_name(stack: Stack) -> None:
    assert stack.send("churn", [[0.1, 0.2, 0.3]] * 20) == {200: 20}
    labels = {"ml_model_name": "churn", "ml_framework": "torchserve", "outcome": "ok"}
    stack.wait(lambda: stack.serving("servewatch_inference_requests_total", **labels) >= 20, "the requests counter")
    for name in ("servewatch_inference_duration_seconds_count", "servewatch_inference_batch_size_count",
                 "servewatch_inference_duration_seconds_bucket"):
        assert stack.serving(name, **labels) > 0, name
    scrape = stack.detector.metrics()  # one export's points: the histogram counts each request once
    assert stack.serving("servewatch_inference_duration_seconds_count", scrape, **labels) == \
        stack.serving("servewatch_inference_requests_total", scrape, **labels)
    stack.wait(lambda: stack.serving("servewatch_inference_queue_time_seconds_total", ml_model_name="churn") > 0,
               "the queue time bridged from the frontend")
    frontend = sum(value for name, labels_, value in harness.parse_samples(stack.server.frontend_metrics())
                   if name.startswith("ts_queue_latency_microseconds") and labels_.get("model_name") == "churn") / 1e6
    assert frontend > 0
    assert stack.serving("servewatch_inference_queue_time_seconds_total", ml_model_name="churn") <= frontend + 1e-6


def test_a_request_the_handler_rejects_counts_as_an_error(stack: Stack) -> None:
    labels = {"ml_model_name": "churn", "outcome": "error"}
    before = stack.serving("servewatch_inference_requests_total", **labels)
    statuses = stack.send("churn", [[1.0, 2.0]] * 5, clients=1)
    assert statuses == {503: 5}
    stack.wait(lambda: stack.serving("servewatch_inference_requests_total", **labels) == before + 5,
               "5 more error requests")
    assert stack.serving("servewatch_inference_duration_seconds_count", **labels) == before + 5


def test_batches_as_torchserve_formed_them_from_two_workers(stack: Stack) -> None:
    rng = random.Random(7)
    rows = [[rng.gauss(0, 1) for _ in FEATURES] for _ in range(240)]
    assert stack.send("churn4", rows, clients=8) == {200: len(rows)}
    batches: dict[int, list[int]] = {}
    for line in stack.batch_log.read_text().split("\n"):
        if line:
            pid, size = map(int, line.split())
            batches.setdefault(pid, []).append(size)
    assert sum(map(sum, batches.values())) == len(rows)
    assert max(map(max, batches.values())) > 1, "TorchServe formed no batch: nothing tested"
    workers = {int(worker["pid"]) for worker in stack.server.workers("churn4")}
    assert set(batches) == workers and len(workers) == 2, (batches.keys(), workers)

    def instance_of(pid: int) -> str | None:
        return next((instance for instance, resource in stack.tap.senders("/v1/metrics").items()
                     if resource.get("process.pid") == pid), None)

    labels = {"ml_model_name": "churn4", "outcome": "ok"}
    total = sum(len(sizes) for sizes in batches.values())
    stack.wait(lambda: stack.serving("servewatch_inference_batch_size_count", **labels) == total,
               f"{total} batches on the detector")
    for pid, sizes in batches.items():
        instance = instance_of(pid)
        assert instance is not None, f"worker {pid} sent no metrics"
        buckets = {labels_["le"]: value for labels_, value in
                   stack.detector.samples("servewatch_inference_batch_size_bucket", instance=instance, **labels)}
        for bound in (1, 2, 4):
            key = next(key for key in buckets if float(key) == bound)
            assert buckets[key] == sum(size <= bound for size in sizes), (pid, bound, buckets, Counter(sizes))
        assert stack.serving("servewatch_inference_batch_size_sum", instance=instance, **labels) == sum(sizes)

    # two producers of profiles, one per worker, merged by the detector into one window
    producers = {record["servewatch.producer"]: resource["process.pid"] for resource, record
                 in stack.tap.profile_records() if record["servewatch.model"] == "churn4"}
    assert sorted(producers.values()) == sorted(workers), producers
    stack.wait(lambda: stack.serving("servewatch_window_samples", model="churn4", signal="input",
                                     feature="tenure", window="1h") == len(rows), "all rows in the merged window")


def test_launcher_and_metric_collector_exported_nothing(stack: Stack) -> None:
    assert stack.server.process.poll() == 0, "the launcher should have exited after starting the frontend"
    stack.wait(lambda: "CPUUtilization" in stack.server.frontend_metrics(), "the metric collector to have run")
    senders = {resource.get("process.pid") for resource in stack.tap.senders().values()}
    workers = stack.worker_pids()
    assert senders and senders <= workers, (senders, workers)
