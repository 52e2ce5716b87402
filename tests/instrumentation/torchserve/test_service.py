"""The worker hooks on TorchServe's own ``Service``, in-process: models loaded by TorchServe's ``TsModelLoader`` as a
worker loads them, batches in the frontend's wire layout, calls recorded by a list instead of the runtime."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from servewatch.instrumentation import NOTHING, errors
from servewatch.instrumentation.torchserve import TorchServeInstrumentor
from servewatch.instrumentation.torchserve.service import _host_array, attach, attached, find_handler, request_payload

torch = pytest.importorskip("torch", reason="the torchserve extra is not installed")
pytest.importorskip("ts", reason="the torchserve extra is not installed")

from ts.metrics.metric_cache_yaml_impl import MetricsCacheYamlImpl  # noqa: E402
from ts.model_loader import TsModelLoader  # noqa: E402
from ts.service import Service  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "torchserve"
METRICS_YAML = Path(sys.modules["ts.service"].__file__).parent / "configs" / "metrics.yaml"
ROWS = [[0.1, 0.2, 0.3], [-1.0, 0.5, 2.0], [0.0, 0.0, 0.0]]

RAISING_INFERENCE = '''
import torch
from ts.torch_handler.base_handler import BaseHandler
from churn_handler_base import ChurnHandler


class Broken(ChurnHandler):
    def inference(self, data, *args, **kwargs):
        raise RuntimeError("the model fell over")
'''
CHUNKED_INFERENCE = '''
import torch
from churn_handler_base import ChurnHandler


class Chunked(ChurnHandler):
    def inference(self, data, *args, **kwargs):
        return torch.cat([super(Chunked, self).inference(chunk) for chunk in torch.split(data, 2)])
'''
REJECT_SECOND = '''
from churn_handler_base import ChurnHandler


class RejectSecond(ChurnHandler):
    def postprocess(self, data):
        self.context.set_response_status(422, "no", idx=1)
        return super().postprocess(data)
'''
FUNCTION_HANDLER = '''
def handle(data, context):
    if data is None:
        return None
    return [{"n": len(request.get("body"))} for request in data]
'''
PLAIN_BASE_HANDLER = '''
from ts.torch_handler.base_handler import BaseHandler


class Plain(BaseHandler):
    pass
'''


class Calls(list):
    """Stands in for ``servewatch.instrumentation.record``: remembers each call."""

    def __call__(self, model: str, inputs: Any = NOTHING, outputs: Any = NOTHING, **kwargs: Any) -> None:
        self.append({"model": model, "inputs": inputs, "outputs": outputs, **kwargs})


@pytest.fixture(scope="module")
def instrumented() -> Iterator[None]:
    instrumentor = TorchServeInstrumentor()
    instrumentor.instrument()
    yield
    instrumentor.uninstrument()


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.spec_from_file_location("churn_model", EXAMPLE / "model.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    path = tmp_path_factory.mktemp("weights") / "churn.pt"
    module.main(str(path))
    return path


_loaded = 0


def load(tmp_path: Path, weights: Path, handler_source: str | None = None, envelope: str | None = None) -> Service:
    """A Service as a worker's ``load`` command builds it: model dir with manifest, handler module on the path."""
    global _loaded
    _loaded += 1
    model_dir = tmp_path / f"model{_loaded}"
    (model_dir / "MAR-INF").mkdir(parents=True)
    shutil.copy(weights, model_dir / "churn.pt")
    shutil.copy(EXAMPLE / "handler.py", model_dir / "churn_handler_base.py")
    name = f"churn_handler_{_loaded}"
    if handler_source is None:
        shutil.copy(EXAMPLE / "handler.py", model_dir / f"{name}.py")
    else:
        (model_dir / f"{name}.py").write_text(textwrap.dedent(handler_source))
    manifest = {"model": {"modelName": "churn", "serializedFile": "churn.pt", "handler": f"{name}.py",
                          "modelVersion": "1.0"}}
    (model_dir / "MAR-INF" / "MANIFEST.json").write_text(json.dumps(manifest))
    sys.path.insert(0, str(model_dir))
    sys.modules.pop("churn_handler_base", None)
    try:
        cache = MetricsCacheYamlImpl(config_file_path=str(METRICS_YAML))
        cache.initialize_cache()
        service = TsModelLoader().load("churn", str(model_dir), f"{name}.py", None, 4, envelope, True, cache)
    finally:
        sys.path.remove(str(model_dir))
    service.set_cl_socket(None)
    return service


def batch(rows: list[Any], key: str = "body") -> list[dict[str, Any]]:
    """Requests as the worker receives them from the frontend (JSON bodies already decoded)."""
    return [{"requestId": f"req-{i}".encode(), "parameters": [{"name": key, "value": row,
                                                               "contentType": "application/json"}]}
            for i, row in enumerate(rows)]


def original_predict(service: Service, requests: list[dict[str, Any]]) -> Any:
    return Service.predict.__wrapped__(service, requests)


@pytest.fixture
def calls() -> Calls:
    return Calls()


def test_base_handler_reports_its_input_and_output_tensors(instrumented: None, tmp_path: Path, weights: Path,
                                                           calls: Calls) -> None:
    service = load(tmp_path, weights)
    assert attach(service, recorder=calls, queue_time=False) is attached(service)
    response = service.predict(batch(ROWS))
    assert bytes(response) == bytes(original_predict(service, batch(ROWS)))  # nothing of ours in the answer
    [call] = calls
    assert call["model"] == "churn" and call["framework"] == "torchserve" and call["outcome"] == "ok"
    assert call["batch_size"] == 3 and call["request_ids"] == ["req-0", "req-1", "req-2"]
    assert np.array_equal(call["inputs"], np.float32(ROWS))
    assert call["outputs"].shape == (3, 2) and np.allclose(call["outputs"].sum(axis=1), 1.0)
    assert 0 < call["duration"] < 60


def test_a_handler_that_raises_is_an_error_for_the_whole_batch(instrumented: None, tmp_path: Path, weights: Path,
                                                               calls: Calls) -> None:
    service = load(tmp_path, weights)
    attach(service, recorder=calls, queue_time=False)
    response = service.predict(batch([[1.0, 2.0], [0.0, 0.0, 0.0]]))  # the first row is malformed
    assert int.from_bytes(response[:4], "big") == 503
    [call] = calls
    assert call["outcome"] == "error" and call["request_ids"] == ["req-0", "req-1"] and call["batch_size"] == 2
    assert call["inputs"] is NOTHING and call["outputs"] is NOTHING  # preprocess failed: no model input


def test_inference_that_raises_still_reports_its_input(instrumented: None, tmp_path: Path, weights: Path,
                                                       calls: Calls) -> None:
    service = load(tmp_path, weights, RAISING_INFERENCE)
    attach(service, recorder=calls, queue_time=False)
    response = service.predict(batch(ROWS))
    assert int.from_bytes(response[:4], "big") == 503
    [call] = calls
    assert call["outcome"] == "error" and np.array_equal(call["inputs"], np.float32(ROWS))
    assert call["outputs"] is NOTHING


def test_requests_the_handler_answers_4xx_count_as_errors(instrumented: None, tmp_path: Path, weights: Path,
                                                          calls: Calls) -> None:
    service = load(tmp_path, weights, REJECT_SECOND)
    attach(service, recorder=calls, queue_time=False)
    service.predict(batch(ROWS))
    ok, error = calls
    assert (ok["outcome"], ok["request_ids"], ok["batch_size"]) == ("ok", ["req-0", "req-2"], 3)
    assert np.array_equal(ok["inputs"], np.float32(ROWS))
    assert (error["outcome"], error["request_ids"]) == ("error", ["req-1"])
    assert error["inputs"] is NOTHING and error.get("batch_size") is None  # the batch counts once
    assert error["duration"] == ok["duration"]


def test_inference_called_per_chunk_is_reported_as_one_batch(instrumented: None, tmp_path: Path, weights: Path,
                                                             calls: Calls) -> None:
    service = load(tmp_path, weights, CHUNKED_INFERENCE)
    attach(service, recorder=calls, queue_time=False)
    service.predict(batch(ROWS))
    [call] = calls
    assert np.array_equal(call["inputs"], np.float32(ROWS)) and call["outputs"].shape == (3, 2)


def test_function_handler_reports_payloads_and_its_answers(instrumented: None, tmp_path: Path, weights: Path,
                                                           calls: Calls) -> None:
    service = load(tmp_path, weights, FUNCTION_HANDLER)
    hooks = attach(service, recorder=calls, queue_time=False)
    assert hooks is not None and hooks.mode == "payloads"
    service.predict(batch([{"amount": 3.5, "country": "DE"}, {"amount": 1.0, "country": "FR"}]))
    [call] = calls
    assert call["inputs"] == [{"amount": 3.5, "country": "DE"}, {"amount": 1.0, "country": "FR"}]
    assert call["outputs"] == [{"n": 2}, {"n": 2}] and call["outcome"] == "ok"


def test_handler_behind_a_request_envelope(instrumented: None, tmp_path: Path, weights: Path, calls: Calls) -> None:
    service = load(tmp_path, weights, PLAIN_BASE_HANDLER, envelope="json")
    hooks = attach(service, recorder=calls, queue_time=False)
    assert hooks is not None and type(hooks.handler).__name__ == "Plain"
    response = service.predict([{"requestId": b"r", "parameters": [
        {"name": "body", "value": {"instances": ROWS}, "contentType": "application/json"}]}])
    assert int.from_bytes(response[:4], "big") == 200
    [call] = calls
    assert np.array_equal(call["inputs"], np.float32(ROWS)) and call["batch_size"] == 1


def test_inference_outside_predict_is_not_a_request(instrumented: None, tmp_path: Path, weights: Path,
                                                    calls: Calls) -> None:
    service = load(tmp_path, weights)
    hooks = attach(service, recorder=calls, queue_time=False)
    hooks.handler.inference(torch.tensor(ROWS))  # e.g. a warm-up in initialize
    assert calls == []


def test_a_failure_of_ours_never_reaches_the_request(instrumented: None, tmp_path: Path, weights: Path) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("recorder broke")

    service = load(tmp_path, weights)
    attach(service, recorder=broken, queue_time=False)
    before = errors.counts().get("torchserve.record", 0)
    response = service.predict(batch(ROWS))
    assert bytes(response) == bytes(original_predict(service, batch(ROWS)))
    assert errors.counts()["torchserve.record"] == before + 1


def test_workers_of_rank_above_zero_record_nothing(instrumented: None, tmp_path: Path, weights: Path, calls: Calls,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    service = load(tmp_path, weights)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert attach(service, recorder=calls, queue_time=False) is None
    service.predict(batch(ROWS))  # answers None on rank 1, as TorchServe does
    assert calls == [] and "inference" not in vars(find_handler(service._entry_point))


def test_uninstrument_restores_every_wrap(instrumented: None, tmp_path: Path, weights: Path, calls: Calls) -> None:
    instrumentor = TorchServeInstrumentor()
    tensors = load(tmp_path, weights)
    function = load(tmp_path, weights, FUNCTION_HANDLER)
    entry_point = function._entry_point
    for service in (tensors, function):
        attach(service, recorder=calls, queue_time=False)
    assert "inference" in vars(tensors._entry_point.__self__) and function._entry_point is not entry_point
    instrumentor.uninstrument()
    assert not hasattr(Service.predict, "__wrapped__")
    assert "inference" not in vars(tensors._entry_point.__self__) and function._entry_point is entry_point
    assert attached(tensors) is None and attached(function) is None
    tensors.predict(batch(ROWS))
    assert calls == []
    instrumentor.instrument()  # as the module's other tests expect
    assert hasattr(Service.predict, "__wrapped__")


def test_request_payload() -> None:
    assert request_payload({"body": [1, 2]}) == [1, 2]
    assert request_payload({"data": b"\x89PNG"}) == b"\x89PNG"
    assert request_payload({"data": 1, "body": 2}) == {"data": 1, "body": 2}
    assert request_payload({"image": b"x", "mask": b"y"}) == {"image": b"x", "mask": b"y"}
    assert request_payload("raw") == "raw"


def test_cpu_tensors_reach_the_recorder_as_arrays_sharing_their_memory() -> None:
    tensor = torch.tensor(ROWS)
    array = _host_array(tensor)
    assert isinstance(array, np.ndarray) and np.shares_memory(array, tensor.numpy())
    for left_to_the_recorder in (tensor.to(torch.bfloat16), tensor.clone().requires_grad_()):
        assert _host_array(left_to_the_recorder) is left_to_the_recorder
