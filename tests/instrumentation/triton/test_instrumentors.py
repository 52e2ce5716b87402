"""The two instrumentors: entry points, laziness, patch and restore (the latter where the frameworks are installed)."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys

import pytest
from servewatch.instrumentation.triton import PyTritonInstrumentor, TritonClientInstrumentor


def test_entry_points_name_the_instrumentors() -> None:
    points = {point.name: point for point in importlib.metadata.entry_points(group="opentelemetry_instrumentor")}
    assert points["servewatch_pytriton"].load() is PyTritonInstrumentor
    assert points["servewatch_tritonclient"].load() is TritonClientInstrumentor
    assert PyTritonInstrumentor().instrumentation_dependencies() == ("nvidia-pytriton >= 0.7, < 0.8",)


def test_importing_and_instrumenting_loads_no_framework() -> None:
    code = (
        "import sys\n"
        "import servewatch.instrumentation.triton as triton\n"
        "from servewatch.instrumentation.triton import MonitoredPythonModel\n"
        "assert 'opentelemetry.instrumentation' not in sys.modules, 'the stub path loads no instrumentor machinery'\n"
        "triton.PyTritonInstrumentor().instrument(); triton.TritonClientInstrumentor().instrument()\n"
        "loaded = [name for name in ('pytriton', 'tritonclient', 'numpy.distutils') if name in sys.modules]\n"
        "assert not loaded, loaded\n"
        "import servewatch.instrumentation.runtime as runtime\n"
        "assert runtime.active() is None, 'no runtime before an inference'\n"
        "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_pytriton_patch_and_restore() -> None:
    inference = pytest.importorskip("pytriton.proxy.inference")
    triton = pytest.importorskip("pytriton.triton")
    original_init = inference.InferenceHandler.__dict__["__init__"]
    original_server = triton.Triton.__dict__["_initialize_server"]
    instrumentor = PyTritonInstrumentor()
    instrumentor.instrument()
    try:
        assert inference.InferenceHandler.__dict__["__init__"] is not original_init
        assert triton.Triton.__dict__["_initialize_server"] is not original_server
    finally:
        instrumentor.uninstrument()
    assert inference.InferenceHandler.__dict__["__init__"] is original_init
    assert triton.Triton.__dict__["_initialize_server"] is original_server


def test_tritonclient_patch_and_restore() -> None:
    pytest.importorskip("tritonclient.grpc")
    from tritonclient.grpc import _client as grpc_client
    from tritonclient.http import _client as http_client
    from tritonclient.http import _infer_input as http_input

    originals = {(owner, name): owner.__dict__[name] for owner, name in (
        (http_client.InferenceServerClient, "infer"), (http_client.InferenceServerClient, "async_infer"),
        (http_client.InferAsyncRequest, "get_result"), (grpc_client.InferenceServerClient, "infer"),
        (grpc_client.InferenceServerClient, "async_infer"), (http_input.InferInput, "set_data_from_numpy"))}
    instrumentor = TritonClientInstrumentor()
    instrumentor.instrument()
    try:
        assert all(owner.__dict__[name] is not function for (owner, name), function in originals.items())
    finally:
        instrumentor.uninstrument()
    assert all(owner.__dict__[name] is function for (owner, name), function in originals.items())


@pytest.mark.parametrize("name", ["", ".bridge", ".client", ".instrumentors", ".metrics", ".package",
                                  ".python_backend", ".pytriton", ".tensors"])
def test_every_module_documents_and_exports_itself_without_the_frameworks(name: str) -> None:
    module = importlib.import_module(f"servewatch.instrumentation.triton{name}")
    assert module.__doc__ and module.__doc__.strip()
    exported = list(module.__all__)
    assert exported == sorted(exported)
    for symbol in exported:
        assert getattr(module, symbol) is not None, symbol
