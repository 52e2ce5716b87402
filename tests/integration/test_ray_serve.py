"""A real Ray Serve under ``opentelemetry-instrument`` feeding a real ``servewatch detect``.

One ``opentelemetry-instrument serve run`` starts a local Ray cluster for the whole module and deploys five
applications: the example's ``fraud`` (a plain deployment) and ``fraud_batched`` (``@serve.batch``), and, from
``tests/instrumentation/ray_serve/serve_testapp.py``, ``twin`` (two replicas; raises when asked) and
``gateway`` (a FastAPI ingress calling ``echo`` through a deployment handle). The detector runs the example's
spec on a compressed time scale (1 s buckets and profiles, metrics exported every second, an 8 s warm-up
reference and a 5 s window for ``fraud``). Only the drift test sends ``fraud`` rows (its reference is the first
traffic the detector sees for it); the other tests count deltas, so they pass in any order.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import load_module

pytest.importorskip("ray", reason="the ray extra is not installed")
ROOT = Path(__file__).resolve().parents[2]

harness = load_module("ray_serve_harness", ROOT / "bench" / "ray_serve_harness.py")
traffic = load_module("ray_serve_example_traffic", harness.EXAMPLE / "traffic.py")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

TEST_APP = ROOT / "tests" / "instrumentation" / "ray_serve"
WINDOW = "5s"
APPLICATIONS = {
    "fraud": ("app:scorer", "/fraud"),
    "fraud_batched": ("app:batched", "/fraud-batched"),
    "twin": ("serve_testapp:twin", "/twin"),
    "gateway": ("serve_testapp:gateway", "/gateway"),
}
# readiness probes that put no row into any profile (fraud's reference is the first traffic it sees)
PROBES = {"/fraud": [], "/fraud-batched": {"amount": 10.0, "age": 30, "country": "US"}, "/twin": {"x": 0},
          "/gateway/": {"amount": 1.0, "country": "US"}}
LOOSE = {"ks": {"warning": 0.25, "critical": 0.5}, "psi": {"warning": 0.25, "critical": 0.5},
         "d1": {"warning": 0.5, "critical": 0.8}, "linf": {"warning": 0.25, "critical": 0.5}}


def compressed_spec() -> dict[str, Any]:
    """The example's spec on a test's time scale (thresholds loose enough that sampling noise never warns),
    plus ``twin`` with a window long enough to hold everything sent to it."""
    spec = yaml.safe_load((harness.EXAMPLE / "servewatch.yaml").read_text())
    fraud, batched = spec["models"]
    fraud.update(reference={"warmup": "8s"}, windows=[WINDOW], min_samples=100, thresholds=LOOSE)
    batched.update(reference={"warmup": "1h"}, windows=["1h"])
    spec["models"].append({"name": "twin", "reference": {"warmup": "1h"}, "windows": ["1h"]})
    spec["detector"] = {"bucket": "1s", "interval": "1s"}
    return spec


class Stack:
    """The detector and the Serve applications, with what the tests read from them."""

    def __init__(self, detector: Any, app: Any) -> None:
        self.detector, self.app = detector, app

    def wait(self, condition: Any, what: str, timeout: float = 120.0) -> Any:
        try:
            return harness.wait_for(condition, timeout, what, interval=0.5)
        except TimeoutError as error:
            raise AssertionError(f"{error}\n{self.app.log_tail()}\n{self.detector.log_tail()}") from None

    def total(self, name: str, **labels: str) -> float:
        return self.detector.total(name, **labels)

    def send(self, path: str, bodies: list[Any], clients: int = 8) -> list[tuple[int, Any]]:
        with ThreadPoolExecutor(clients) as pool:
            return list(pool.map(lambda body: self.app.post(path, body), bodies))

    def settle(self, *names: str) -> None:
        """Wait until the detector's ``names`` stop changing: what earlier requests added has arrived (profiles
        and metrics leave the replicas every second, the detector evaluates every second)."""
        def snapshot() -> list[Any]:
            return sorted((name, sorted(labels.items()), value) for name in names
                          for labels, value in self.detector.samples(name))
        previous = snapshot()
        while True:
            time.sleep(2.5)
            current = snapshot()
            if current == previous:
                return
            previous = current

    def reaches(self, name: str, expected: float, what: str, **labels: str) -> None:
        """Wait until the detector's ``name`` (summed over replicas) equals ``expected``; fail if it passes it."""
        self.wait(lambda: self.total(name, **labels) >= expected, what)
        assert self.total(name, **labels) == expected, what


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("ray_serve")
    spec = work / "servewatch.yaml"
    spec.write_text(yaml.safe_dump(compressed_spec()))
    with harness.Detector(work / "detector", spec) as detector:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": detector.otlp_url, "SERVEWATCH_SPEC": str(spec),
               "SERVEWATCH_PROFILE_INTERVAL": "1", "OTEL_METRIC_EXPORT_INTERVAL": "1000"}
        config = harness.serve_config(APPLICATIONS, port=harness.free_port())
        with harness.ServeApp(work / "serve", config, pythonpath=[harness.EXAMPLE, TEST_APP], instrumented=True,
                              env=env, probes=PROBES) as app:
            yield Stack(detector, app)


def _severities(stack: Stack, model: str) -> dict[tuple[str, str], float]:
    return {(labels["signal"], labels["feature"]): value
            for labels, value in stack.detector.samples("servewatch_drift_severity", model=model, window=WINDOW)}


def test_only_the_shifted_feature_is_flagged(stack: Stack) -> None:
    shift = {"scale": 1.0}
    stop = threading.Event()
    sent: list[Any] = []
    failed: list[Any] = []

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            status, answer = stack.app.post("/fraud", [traffic.transaction(rng, shift["scale"]) for _ in range(20)])
            (sent if status == 200 and len(answer) == 20 else failed).append(answer)

    clients = [threading.Thread(target=client, args=(seed,), daemon=True) for seed in range(4)]
    for thread in clients:
        thread.start()
    try:
        # reference traffic until the warm-up reference exists and the window is evaluated against it
        stack.wait(lambda: ("input", "amount") in _severities(stack, "fraud"), "the fraud window to be evaluated")
        assert set(_severities(stack, "fraud").values()) == {0.0}, _severities(stack, "fraud")
        shift["scale"] = 3.0  # three times larger amounts: critical once the window holds only those
        stack.wait(lambda: _severities(stack, "fraud").get(("input", "amount"), 0) == 2, "amount to be critical",
                   timeout=60)
        severities = _severities(stack, "fraud")
    finally:
        stop.set()
        for thread in clients:
            thread.join(30)
    assert not failed, failed[:3]
    assert severities[("input", "age")] == 0.0 and severities[("input", "country")] == 0.0, severities
    assert severities[("prediction", "score")] >= 1.0, severities  # the score depends on the amount
    # every request (20 rows each) has its latency; the readiness probes add a few more
    stack.wait(lambda: stack.total("servewatch_inference_duration_seconds_count", ml_model_name="fraud") >= len(sent),
               "fraud's latency histogram to count every request")
    assert stack.total("servewatch_inference_requests_total", ml_model_name="fraud", outcome="error") == 0


def test_batch_sizes_latency_and_requests_of_a_batched_deployment(stack: Stack) -> None:
    names = ("servewatch_inference_requests_total", "servewatch_inference_duration_seconds_count",
             "servewatch_inference_batch_size_sum", "servewatch_inference_batch_size_count")
    stack.settle(*names, "servewatch_input_values_total", "servewatch_prediction_values_total")
    before = {name: stack.total(name, ml_model_name="fraud_batched") for name in names}
    values = {name: stack.total(name, ml_model_name="fraud_batched", ml_feature_name=feature)
              for name, feature in (("servewatch_input_values_total", "amount"),
                                    ("servewatch_prediction_values_total", "score"))}
    rng = random.Random(7)
    answers = stack.send("/fraud-batched", [traffic.transaction(rng) for _ in range(64)], clients=16)
    assert all(status == 200 and 0 < answer["score"] < 1 for status, answer in answers), answers

    for name in ("servewatch_inference_requests_total", "servewatch_inference_duration_seconds_count",
                 "servewatch_inference_batch_size_sum"):  # every request is one item of one batch
        stack.reaches(name, before[name] + 64, f"{name} of fraud_batched", ml_model_name="fraud_batched")
    for name, feature in (("servewatch_input_values_total", "amount"), ("servewatch_prediction_values_total", "score")):
        stack.reaches(name, values[name] + 64, f"{name} of fraud_batched (each row once)",
                      ml_model_name="fraud_batched", ml_feature_name=feature)
    batches = stack.total("servewatch_inference_batch_size_count", ml_model_name="fraud_batched") - \
        before["servewatch_inference_batch_size_count"]
    assert 4 <= batches < 64, f"{batches} batches for 64 concurrent requests (at most 16 per batch)"


def test_a_raising_deployment_is_counted_as_errors(stack: Stack) -> None:
    def count(name: str, **labels: str) -> float:
        return stack.total(name, ml_model_name="twin", **labels)

    stack.settle("servewatch_inference_requests_total")
    before = {outcome: count("servewatch_inference_requests_total", outcome=outcome) for outcome in ("ok", "error")}
    latencies = count("servewatch_inference_duration_seconds_count", outcome="error")
    predictions = count("servewatch_prediction_values_total", ml_feature_name="y")
    answers = stack.send("/twin", [{"x": i} for i in range(20)] + [{"fail": True}] * 10)
    assert [status for status, _ in answers] == [200] * 20 + [500] * 10
    assert [answer["y"] for _, answer in answers[:20]] == [2.0 * i for i in range(20)]  # the body reached twin

    stack.reaches("servewatch_inference_requests_total", before["error"] + 10, "twin's errors", ml_model_name="twin",
                  outcome="error")
    stack.reaches("servewatch_inference_requests_total", before["ok"] + 20, "twin's successes", ml_model_name="twin",
                  outcome="ok")
    assert count("servewatch_inference_duration_seconds_count", outcome="error") == latencies + 10
    assert count("servewatch_prediction_values_total", ml_feature_name="y") == predictions + 20  # no error answers
    # every request reached twin over HTTP: each series carries the route prefix Ray matched
    assert {labels.get("http_route") for labels, _ in
            stack.detector.samples("servewatch_inference_requests_total", ml_model_name="twin")} == {"/twin"}


def test_two_replicas_are_two_producers_merged_by_the_detector(stack: Stack) -> None:
    window = {"model": "twin", "signal": "input", "feature": "x", "window": "1h"}
    stack.settle("servewatch_window_samples")
    before = stack.total("servewatch_window_samples", **window)
    answers = stack.send("/twin", [{"x": i % 7} for i in range(200)])
    assert all(status == 200 for status, _ in answers)

    stack.reaches("servewatch_window_samples", before + 200, "the 1h window of twin to hold every row", **window)
    instances = {labels["instance"] for labels, _ in
                 stack.detector.samples("servewatch_inference_requests_total", ml_model_name="twin")}
    assert len(instances) == 2, instances
    with sqlite3.connect(f"file:{stack.detector.directory / 'state' / 'detector.db'}?mode=ro", uri=True) as db:
        producers = {row[0] for row in db.execute("SELECT DISTINCT producer FROM received WHERE model = 'twin'")}
    assert producers == instances  # the producer of a profile is its process's service.instance.id


def test_handle_calls_and_a_fastapi_ingress(stack: Stack) -> None:
    def values(model: str, signal: str, feature: str) -> float:
        return stack.total(f"servewatch_{signal}_values_total", ml_model_name=model, ml_feature_name=feature)

    watched = [("echo", "input", "amount"), ("echo", "input", "country"), ("echo", "prediction", "risk"),
               ("gateway", "input", "amount"), ("gateway", "prediction", "risk")]
    stack.settle("servewatch_input_values_total", "servewatch_prediction_values_total")
    before = {key: values(*key) for key in watched}
    rng = random.Random(3)
    bodies = [{"amount": round(rng.uniform(1, 500), 2), "country": rng.choice(["US", "DE"])} for _ in range(30)]
    answers = stack.send("/gateway/", bodies)
    # FastAPI parsed each body the instrumentation copied, and echo got the amount and the country
    assert answers == [(200, {"risk": body["amount"] / 1000.0, "country": body["country"]}) for body in bodies]

    for key in watched:  # echo's arguments are named by its signature: risk(self, amount, country)
        stack.reaches(f"servewatch_{key[1]}_values_total", before[key] + 30, f"{key} values", ml_model_name=key[0],
                      ml_feature_name=key[2])

    def routes(model: str) -> set[str | None]:
        return {labels.get("http_route") for labels, _ in
                stack.detector.samples("servewatch_inference_requests_total", ml_model_name=model)}

    # the ingress's requests carry the route Ray's proxy matched: its FastAPI route under the prefix, or the
    # prefix itself while the proxy does not know the app's routes yet (the first requests); echo's handle
    # calls carry none, although their metadata holds the gateway's route
    stack.wait(lambda: routes("echo") and routes("gateway"), "requests of echo and gateway")
    assert "/gateway/" in routes("gateway") and routes("gateway") <= {"/gateway/", "/gateway"}
    assert routes("echo") == {None}


def test_ray_keeps_its_own_metrics(stack: Stack) -> None:
    stack.send("/twin", [{"x": 1}] * 5)

    def serve_series() -> set[str]:
        return {labels.get("deployment", "") for name, labels, _ in stack.app.ray_metrics()
                if name == "ray_serve_deployment_request_counter_total"}

    stack.wait(lambda: "twin" in serve_series(), "Ray's ray_serve_deployment_request_counter_total for twin")
    families = {name for name, _, _ in stack.app.ray_metrics() if name.startswith("ray_serve_")}
    assert {"ray_serve_num_http_requests_total", "ray_serve_deployment_processing_latency_ms_bucket",
            "ray_serve_replica_processing_queries"} <= families, sorted(families)
    logs = stack.app.ray_logs()
    overridden = [path.name for path in logs.glob("*") if path.is_file()
                  and "Overriding of current MeterProvider" in path.read_text(errors="replace")]
    assert not overridden


def test_nothing_reports_but_the_replicas(stack: Stack) -> None:
    stack.send("/twin", [{"x": 2}] * 3)
    stack.wait(lambda: stack.detector.samples("target_info"), "a resource on the detector")
    resources = [labels for labels, _ in stack.detector.samples("target_info")]
    deployments = {"fraud", "fraud_batched", "twin", "gateway", "echo"}
    # the driver, the controller, the proxy and Ray's agents loaded the instrumentor too, but never export
    assert all(labels.get("ray_serve_deployment") in deployments for labels in resources), resources
    serving = {labels["instance"] for labels, _ in stack.detector.samples("servewatch_inference_requests_total")}
    assert serving <= {labels["instance"] for labels in resources}
    assert stack.total("servewatch_instrumentation_errors_total") == 0, \
        stack.detector.samples("servewatch_instrumentation_errors_total")
