"""The instrumentor in fresh interpreters: what it patches and when, what it leaves alone, and the batch hook
on Ray's own ``@serve.batch`` queue (no cluster: the replica context is set by hand)."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from servewatch.instrumentation.ray_serve import RayServeInstrumentor, runtime_env
from servewatch.instrumentation.ray_serve.hooks import PATCHES

pytest.importorskip("ray.serve", reason="the ray extra is not installed")   # the scripts below import it

PATCHED = [f"{module}:{name}" for module, name, _ in PATCHES]
QUIET = "import warnings; warnings.simplefilter('ignore', DeprecationWarning)\n"
WRAPPED = QUIET + f"""
import importlib
def wrapped():
    found = []
    for path in {PATCHED!r}:
        module, name = path.split(":")
        owner, attribute = name.split(".")
        value = vars(getattr(importlib.import_module(module), owner))[attribute]
        if type(value).__name__ == "FunctionWrapper":  # wrapt's
            found.append(path)
    return found
"""


def test_the_entry_point_names_the_instrumentor() -> None:
    found = [entry for entry in entry_points(group="opentelemetry_instrumentor") if entry.name == "servewatch_ray_serve"]
    assert [entry.load() for entry in found] == [RayServeInstrumentor]


def test_patches_wait_for_serve_and_come_off_again(run_python: Any) -> None:
    result = run_python(WRAPPED + """
import sys, threading
from servewatch.instrumentation.ray_serve import RayServeInstrumentor
from servewatch.instrumentation import runtime

instrumentor = RayServeInstrumentor()
instrumentor.instrument()
assert not any(name.startswith("ray") for name in sys.modules), "instrumenting imported Ray"
import ray.serve._private.replica
print("patched", sorted(wrapped()))
assert runtime.active() is None and all(t.name != "servewatch" for t in threading.enumerate()), "started"
instrumentor.uninstrument()
print("after", wrapped())
""")
    lines = result.stdout.splitlines()
    assert lines == [f"patched {sorted(PATCHED)}", "after []"], result.stdout + result.stderr


def test_an_unsupported_ray_is_left_alone_with_one_message(run_python: Any) -> None:
    result = run_python(WRAPPED + """
import ray
ray.__version__ = "2.61.0"
from servewatch.instrumentation.ray_serve import RayServeInstrumentor
RayServeInstrumentor().instrument()
import ray.serve._private.replica
print("patched", wrapped())
""")
    assert result.stdout.strip() == "patched []"
    messages = [line for line in result.stderr.splitlines() if "servewatch" in line]
    assert len(messages) == 1 and "Ray 2.61.0 is outside the range" in messages[0], result.stderr
    assert "ray[serve]>=2.60,<2.61" in messages[0] and "serves as usual" in messages[0]


def test_disabled_patches_nothing(run_python: Any) -> None:
    result = run_python(WRAPPED + """
from servewatch.instrumentation.ray_serve import RayServeInstrumentor
RayServeInstrumentor().instrument()
import ray.serve._private.replica
print("patched", wrapped())
""", env={"SERVEWATCH_DISABLED": "true"})
    assert result.stdout.strip() == "patched []"


BATCHING = QUIET + """
import asyncio, json
from ray import serve
from ray.serve import context
from ray.serve._private.common import DeploymentID, ReplicaID
from ray.serve._private.config import DeploymentConfig
from servewatch.instrumentation.ray_serve import RayServeInstrumentor, replica
from servewatch.instrumentation import flush, runtime

RayServeInstrumentor().instrument()
import ray.serve._private.replica
deployment = DeploymentID(name="scorer", app_name="app")
context._set_internal_replica_context(replica_id=ReplicaID(unique_id="r1", deployment_id=deployment),
    servable_object=None, _deployment_config=DeploymentConfig(max_ongoing_requests=64), rank=None, world_size=1)

class Scorer:
    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.2)
    async def score(self, rows):
        if any(row.get("fail") for row in rows):
            raise ValueError("bad batch")
        return [{"score": row["a"] * 2} for row in rows]

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.2)
    async def pair(self, amounts, countries):
        return [f"{a}-{c}" for a, c in zip(amounts, countries)]

async def calls(scorer):
    results = await asyncio.gather(*(scorer.score({"a": float(i)}) for i in range(10)))
    failed = await asyncio.gather(scorer.score({"a": 1.0, "fail": True}), return_exceptions=True)
    pairs = await asyncio.gather(*(scorer.pair(float(i), countries="DE") for i in range(3)))
    return results, [type(error).__name__ for error in failed], pairs

async def main():
    scorer = Scorer()
    outside = await calls(scorer)  # no replica known yet: plain batching, nothing recorded
    replica._current = replica.ReplicaInfo(model="scorer", application="app", replica_id="r1", batched=True)
    inside = await calls(scorer)
    assert outside == inside
    return inside

print(json.dumps(asyncio.run(main())))
state = runtime.current().recorder.state("scorer", "ray_serve")
for outcome, stats in state.stats.outcomes.items():
    print(outcome, stats.requests, stats.batch_size.count, stats.batch_size.sum)
flush()
"""


def test_batches_report_their_size_inputs_and_outputs(run_python: Any, tmp_path: Path) -> None:
    from servewatch.exporters.spool import read_spool

    spool = tmp_path / "spool"
    result = run_python(BATCHING, env={"SERVEWATCH_SPOOL_DIR": str(spool), "OTEL_METRICS_EXPORTER": "none",
                                       "SERVEWATCH_PROFILE_INTERVAL": "3600"})
    lines = result.stdout.splitlines()
    assert lines[0] == ('[[' + ", ".join(f'{{"score": {2.0 * i}}}' for i in range(10)) + '], ["ValueError"], '
                        '["0.0-DE", "1.0-DE", "2.0-DE"]]')
    # requests are counted by the request hook, not here; batches of 4, 4, 2 and 3, and one failed batch of 1
    assert lines[1:] == ["ok 0 4 13.0", "error 0 1 1.0"], result.stdout + result.stderr
    profiles = {profile.signal: profile for _, profile in read_spool(spool) if profile.model == "scorer"}
    counts = {signal: (profile.rows, {name: column.count for name, column in profile.columns.items()})
              for signal, profile in profiles.items()}
    # one profile per signal: the rows of both batch methods; a failed batch's inputs, not its (missing) outputs
    assert counts == {"input": (14, {"a": 11, "fail": 11, "amounts": 3, "countries": 3}),
                      "prediction": (13, {"score": 10, "class": 3})}


def test_runtime_env_carries_the_sitecustomize_and_the_settings() -> None:
    env = runtime_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://detector:4318", "SERVEWATCH_SPEC": "/etc/sw.yaml",
                       "HOME": "/root", "PYTHONPATH": "/mine"})
    variables = env["env_vars"]
    assert set(variables) == {"OTEL_EXPORTER_OTLP_ENDPOINT", "SERVEWATCH_SPEC", "PYTHONPATH"}
    assert (Path(variables["PYTHONPATH"]) / "sitecustomize.py").is_file()
