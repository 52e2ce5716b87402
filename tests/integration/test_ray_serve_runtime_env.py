"""The recipe for an existing cluster: ``ray start`` without servewatch, then an application whose
``runtime_env`` carries :func:`servewatch.instrumentation.ray_serve.runtime_env` (``env_vars``: OpenTelemetry's
``sitecustomize`` on ``PYTHONPATH`` plus the ``OTEL_*``/``SERVEWATCH_*`` settings).

``fraud`` gets that runtime_env and reports to a real ``servewatch detect``; ``fraud_batched``, deployed next to
it on the same cluster without it, must stay untouched: the recipe instruments exactly the applications that
ask for it.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from servewatch.instrumentation.ray_serve import runtime_env
from support import load_module

pytest.importorskip("ray", reason="the ray extra is not installed")
ROOT = Path(__file__).resolve().parents[2]

harness = load_module("ray_serve_harness", ROOT / "bench" / "ray_serve_harness.py")
traffic = load_module("ray_serve_example_traffic", harness.EXAMPLE / "traffic.py")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def test_runtime_env_instruments_the_applications_that_carry_it(tmp_path: Path) -> None:
    spec = tmp_path / "servewatch.yaml"
    spec.write_text(yaml.safe_dump({**yaml.safe_load((harness.EXAMPLE / "servewatch.yaml").read_text()),
                                    "detector": {"bucket": "1s", "interval": "1s"}}))
    code = {"working_dir": f"local://{harness.EXAMPLE}"}  # the application's code, already on the (only) node
    with harness.Detector(tmp_path / "detector", spec) as detector, \
            harness.RayCluster(tmp_path / "cluster") as cluster:
        settings = {"OTEL_EXPORTER_OTLP_ENDPOINT": detector.otlp_url, "SERVEWATCH_SPEC": str(spec),
                    "SERVEWATCH_PROFILE_INTERVAL": "1", "OTEL_METRIC_EXPORT_INTERVAL": "1000"}
        recipe = runtime_env(settings)
        config = harness.serve_config({"fraud": ("app:scorer", "/fraud"), "fraud_batched": ("app:batched",
                                                                                         "/fraud-batched")},
                                      port=harness.free_port())
        config["applications"][0]["runtime_env"] = {**code, **recipe}
        config["applications"][1]["runtime_env"] = dict(code)
        probes = {"/fraud": [], "/fraud-batched": {"amount": 1.0, "age": 30, "country": "US"}}
        with harness.ServeApp(tmp_path / "serve", config, instrumented=False, address=cluster.address,
                              probes=probes) as app:
            rng = random.Random(11)
            for _ in range(25):
                assert app.post("/fraud", [traffic.transaction(rng) for _ in range(4)])[0] == 200
                assert app.post("/fraud-batched", traffic.transaction(rng))[0] == 200

            def reported() -> bool:
                return detector.total("servewatch_window_samples", model="fraud", signal="input", feature="amount",
                                      window="1m") >= 100
            try:
                harness.wait_for(reported, 120, "fraud's rows at the detector", interval=0.5)
            except TimeoutError as error:
                raise AssertionError(f"{error}\n{app.log_tail()}\n{detector.log_tail()}") from None
            assert detector.total("servewatch_window_samples", model="fraud", signal="input", feature="amount",
                                  window="1m") == 100
            requests = detector.samples("servewatch_inference_requests_total", ml_model_name="fraud", outcome="ok")
            assert sum(value for _, value in requests) >= 25
            resources = [labels for labels, _ in detector.samples("target_info")]
            assert {labels.get("ray_serve_application") for labels in resources} == {"fraud"}, resources
            assert not detector.samples("servewatch_inference_requests_total", ml_model_name="fraud_batched")
