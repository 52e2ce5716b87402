"""The python-backend opt-in with stand-ins for ``triton_python_backend_utils`` objects (the real stub runs in
tests/integration/test_triton_server.py)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from servewatch.exporters.spool import read_spool
from servewatch.instrumentation import errors, flush, runtime
from servewatch.instrumentation.triton import MonitoredPythonModel


class Tensor:
    def __init__(self, name: str, array: np.ndarray, cpu: bool = True) -> None:
        self._name, self._array, self._cpu = name, array, cpu

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array

    def is_cpu(self) -> bool:
        return self._cpu


class Request:
    def __init__(self, **arrays: np.ndarray) -> None:
        self._inputs = [Tensor(name, array) for name, array in arrays.items()]

    def inputs(self) -> list[Tensor]:
        return self._inputs


class Response:
    def __init__(self, tensors: list[Tensor] | None = None, error: str | None = None) -> None:
        self._tensors, self._error = tensors or [], error

    def output_tensors(self) -> list[Tensor]:
        return self._tensors

    def has_error(self) -> bool:
        return self._error is not None


def args(name: str, max_batch_size: int) -> dict[str, str]:
    return {"model_name": name, "model_version": "1", "model_instance_name": f"{name}_0_0",
            "model_config": json.dumps({"name": name, "max_batch_size": max_batch_size})}


class Doubler(MonitoredPythonModel):
    def initialize(self, args: dict[str, str]) -> None:
        self.initialized = True

    def execute(self, requests: list[Request]) -> list[Response]:
        responses = []
        for request in requests:
            x = request.inputs()[0].as_numpy()
            if (x < 0).any():
                responses.append(Response(error="negative input"))
            else:
                responses.append(Response([Tensor("y", x * 2)]))
        return responses


def stats(model: str) -> dict[str, int]:
    active = runtime.active()
    assert active is not None
    state = next(state for state in active.recorder.states() if state.name == model)
    return {outcome: values.requests for outcome, values in state.stats.outcomes.items()}


def profiles(spool: Path) -> dict[tuple[str, str], Any]:
    assert flush(10.0)
    return {(profile.model, profile.signal): profile for _, profile in read_spool(spool)}


def test_batched_execute_reports_inputs_outputs_and_outcomes(spool: Path) -> None:
    model = Doubler()
    model.initialize(args("doubler", 8))
    assert model.initialized
    responses = model.execute([Request(x=np.ones((3, 2), np.float32)), Request(x=np.full((2, 2), 5.0, np.float32)),
                               Request(x=-np.ones((1, 2), np.float32))])
    assert [response.has_error() for response in responses] == [False, False, True]
    assert stats("doubler") == {"ok": 2, "error": 1}
    found = profiles(spool)
    inputs, outputs = found[("doubler", "input")], found[("doubler", "prediction")]
    assert inputs.rows == 6 and sorted(inputs.columns) == ["x.0", "x.1"]      # every row the model received
    assert outputs.rows == 5 and sorted(outputs.columns) == ["y.0", "y.1"]    # the successful answers


def test_a_model_without_batching_counts_one_row_per_request(spool: Path) -> None:
    model = Doubler()
    model.initialize(args("single", 0))
    model.execute([Request(x=np.ones(4, np.float32)), Request(x=np.zeros(4, np.float32))])
    found = profiles(spool)
    assert found[("single", "input")].rows == 2 and len(found[("single", "input")].columns) == 4


def test_an_exception_in_execute_propagates_and_counts_every_request_as_an_error(spool: Path) -> None:
    class Broken(MonitoredPythonModel):
        def execute(self, requests: list[Request]) -> list[Response]:
            raise RuntimeError("model bug")

    model = Broken()
    model.initialize(args("broken", 4))
    with pytest.raises(RuntimeError, match="model bug"):
        model.execute([Request(x=np.ones((2, 2))), Request(x=np.ones((1, 2)))])
    assert stats("broken") == {"ok": 0, "error": 2}


def test_decoupled_and_async_models_report_their_inputs(spool: Path) -> None:
    class Streaming(MonitoredPythonModel):
        async def execute(self, requests: list[Request]) -> None:
            await asyncio.sleep(0)
            return None

    model = Streaming()
    model.initialize(args("streaming", 4))
    assert asyncio.run(model.execute([Request(x=np.ones((3, 2)))])) is None
    assert stats("streaming") == {"ok": 1, "error": 0}
    found = profiles(spool)
    assert found[("streaming", "input")].rows == 3 and ("streaming", "prediction") not in found


def test_the_name_comes_from_the_repository_layout_without_initialize(spool: Path, tmp_path: Path) -> None:
    folder = tmp_path / "repository" / "layout_model" / "1"
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(
        "from servewatch.instrumentation.triton import MonitoredPythonModel\n"
        "class TritonPythonModel(MonitoredPythonModel):\n"
        "    def execute(self, requests):\n"
        "        return None\n")
    spec = importlib.util.spec_from_file_location("1.model", folder / "model.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["1.model"] = module
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        module.TritonPythonModel().execute([Request(x=np.ones((2, 2)))])
    finally:
        del sys.modules["1.model"]
    assert stats("layout_model") == {"ok": 1, "error": 0}
    assert profiles(spool)[("layout_model", "input")].rows == 2


def test_unreadable_tensors_never_reach_the_model(spool: Path) -> None:
    class Odd(MonitoredPythonModel):
        def execute(self, requests: list[Any]) -> list[Any]:
            return ["not a response"]

    model = Odd()
    model.initialize({"model_name": "odd", "model_config": "{not json"})
    assert model.execute([object()]) == ["not a response"]
    assert errors.counts().get("triton.execute", 0) == 1
    gpu = Request(x=np.ones((2, 2)))
    gpu._inputs[0]._cpu = False
    model2 = Doubler()
    model2.initialize(args("gpu", 4))
    model2.execute([gpu])            # the GPU tensor is skipped, the call still counts
    assert stats("gpu") == {"ok": 1, "error": 0}
