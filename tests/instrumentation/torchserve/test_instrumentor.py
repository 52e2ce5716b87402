"""The instrumentor in fresh interpreters: the entry point, lazy patching, the zero-code path through
``opentelemetry-instrument`` to profiles and metrics, and TorchServe's metric collector staying silent."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from servewatch.exporters import read_spool
from servewatch.instrumentation.torchserve import TorchServeInstrumentor
from support import load_module

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
harness = load_module("torchserve_harness", ROOT / "bench" / "torchserve_harness.py")
needs_torchserve = pytest.mark.skipif(not all(importlib.util.find_spec(name) for name in ("ts", "torch")),
                                      reason="the torchserve extra is not installed")   # for the scripts below

SERVE = '''
import json, shutil, sys
from pathlib import Path
from ts.metrics.metric_cache_yaml_impl import MetricsCacheYamlImpl
from ts.model_loader import TsModelLoader

model_dir = Path(sys.argv[1])
sys.path.insert(0, str(model_dir))
cache = MetricsCacheYamlImpl(config_file_path=sys.argv[2])
cache.initialize_cache()
service = TsModelLoader().load("churn", str(model_dir), "handler.py", None, 4, None, True, cache)
service.set_cl_socket(None)
rows = json.loads(sys.argv[3])
for start in range(0, len(rows), 4):
    service.predict([{"requestId": f"r{i}".encode(), "parameters": [{"name": "body", "value": row,
                      "contentType": "application/json"}]} for i, row in enumerate(rows[start:start + 4])])
bad = {"name": "body", "value": [1], "contentType": "application/json"}
service.predict([{"requestId": b"bad", "parameters": [bad]}])
'''


def run(code: str, env: dict[str, str] | None = None, *args: str, instrument: bool = False,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", textwrap.dedent(code), *args]
    if instrument:
        command.insert(0, str(BIN / "opentelemetry-instrument"))
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SERVEWATCH_"))}
    environ.pop("PYTHONPATH", None)
    environ.update(env or {})
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_entry_point() -> None:
    [entry] = [e for e in importlib.metadata.entry_points(group="opentelemetry_instrumentor")
               if e.name == "servewatch_torchserve"]
    assert entry.load() is TorchServeInstrumentor
    assert TorchServeInstrumentor().instrumentation_dependencies() == ("torchserve == 0.12.0",)


@needs_torchserve
def test_patches_when_torchserve_is_imported_and_never_imports_it() -> None:
    result = run("""
        import sys
        from servewatch.instrumentation.torchserve import TorchServeInstrumentor
        TorchServeInstrumentor().instrument()
        assert "ts" not in sys.modules and "torch" not in sys.modules, "instrument() imported the framework"
        import ts.service
        assert hasattr(ts.service.Service.predict, "__wrapped__")
        TorchServeInstrumentor().uninstrument()
        assert not hasattr(ts.service.Service.predict, "__wrapped__")
        import servewatch.instrumentation.runtime as runtime
        assert runtime.active() is None, "patching started the runtime"
    """)
    assert result.returncode == 0, result.stderr


@needs_torchserve
def test_disabled_patches_nothing() -> None:
    result = run("""
        from servewatch.instrumentation.torchserve import TorchServeInstrumentor
        TorchServeInstrumentor().instrument()
        import ts.service
        assert not hasattr(ts.service.Service.predict, "__wrapped__")
    """, {"SERVEWATCH_DISABLED": "true"})
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("churn")
    subprocess.run([sys.executable, str(harness.EXAMPLE / "model.py"), str(directory / "churn.pt")], check=True)
    (directory / "handler.py").write_bytes((harness.EXAMPLE / "handler.py").read_bytes())
    (directory / "MAR-INF").mkdir()
    (directory / "MAR-INF" / "MANIFEST.json").write_text(json.dumps(
        {"model": {"modelName": "churn", "serializedFile": "churn.pt", "handler": "handler.py"}}))
    return directory


@needs_torchserve
def test_zero_code_path_to_profiles_and_metrics(model_dir: Path, tmp_path: Path) -> None:
    """``opentelemetry-instrument python <worker-like script>``: the entry point hooks TorchServe's Service, the
    exit flush writes the profiles (spool) and the metrics (OTLP) of the batches served."""
    import ts

    rows = [[i / 10, -i / 10, (i % 7) - 3.0] for i in range(10)]
    with harness.OTLPTap() as tap:
        env = {"SERVEWATCH_SPEC": str(harness.EXAMPLE / "servewatch.yaml"), "SERVEWATCH_SPOOL_DIR": str(tmp_path),
               "OTEL_EXPORTER_OTLP_ENDPOINT": tap.url, "SERVEWATCH_TORCHSERVE_METRICS_URL": "none"}
        metrics_yaml = str(Path(ts.__file__).parent / "configs" / "metrics.yaml")
        result = run(SERVE, env, str(model_dir), metrics_yaml, json.dumps(rows), instrument=True)
        assert result.returncode == 0, result.stderr[-3000:]
    profiles = {profile.signal: profile for _, profile in read_spool(tmp_path)}
    assert set(profiles) == {"input", "prediction"}, result.stderr[-3000:]
    inputs = profiles["input"]
    assert inputs.model == "churn" and inputs.rows == len(rows)
    assert set(inputs.columns) == {"tenure", "monthly_charges", "support_calls"}
    assert inputs.columns["support_calls"].sketch.get_max_value() == 3.0
    assert set(profiles["prediction"].columns) == {"churn_probability"}
    metrics = [entry for entry in tap.requests if entry["path"] == "/v1/metrics"][-1]
    assert {"servewatch.inference.requests", "servewatch.inference.duration",
            "servewatch.inference.batch.size"} <= set(metrics["metrics"])
    assert metrics["resource"]["ml.framework"] == "torchserve"


@needs_torchserve
@pytest.mark.parametrize(("command", "output"), [
    (["ts/metrics/metric_collector.py", "--gpu", "0"], "CPUUtilization"),  # as the frontend starts it
    (["-m", "ts.model_server", "--version"], "TorchServe Version"),       # the torchserve launcher
], ids=["metric-collector", "launcher"])
def test_helper_processes_load_the_instrumentor_and_send_nothing(command: list[str], output: str) -> None:
    """TorchServe's helper processes, run with the environment ``opentelemetry-instrument`` gives every child,
    import the instrumentor (the import-time trace shows it) and export nothing."""
    import ts

    with harness.OTLPTap() as tap:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": tap.url, "SERVEWATCH_PROFILE_INTERVAL": "0.1",
               "OTEL_METRIC_EXPORT_INTERVAL": "100", "PYTHONPROFILEIMPORTTIME": "1"}
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SERVEWATCH_"))}
        result = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, *command],
                                env={**environ, **env}, cwd=Path(ts.__file__).parents[1], input="",
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-3000:]
        assert output in result.stdout  # it did its job
        assert "servewatch.instrumentation.torchserve" in result.stderr  # our entry point was loaded
        assert tap.requests == []
