"""tritonclient hooks: the client side of any Triton model (TensorRT, ONNX, ... backends), per call.

Usage (what :class:`~servewatch.instrumentation.triton.TritonClientInstrumentor` does)::

    for module, name, wrapper in PATCHES:
        instrumentor.wrap(module, name, wrapper)

Each inference call of ``tritonclient.http`` / ``tritonclient.grpc`` (``infer``, ``async_infer``) and of their
``aio`` clients (``await infer``) reports, for the ``model_name`` it names (``ml.framework`` =
``tritonclient``):

- duration as the caller sees it: from the call until the answer arrived (``infer``), the gRPC callback ran,
  or, for HTTP ``async_infer``, until ``get_result()`` first returned it; outcome ``error`` when the client
  raised ``InferenceServerException`` (or the gRPC callback got an error);
- inputs: the arrays given to ``InferInput.set_data_from_numpy`` (kept by reference, no copy, until the call
  reads them), by input name; inputs set from shared memory are not seen;
- outputs: every output tensor of the answer, by name (``InferResult.as_numpy``; numeric outputs are views
  of the response buffer, so this costs no copy).

The first dimension of an input is taken as the batch (Triton's convention for models with
``max_batch_size > 0``; for a model without batching a spec's ``source`` still names the columns). Streaming
calls (``start_stream``/``async_stream_infer``, aio ``stream_infer``) are not covered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

from servewatch.instrumentation import NOTHING, guard, observe, record
from servewatch.instrumentation.guard import errors

__all__ = ["FRAMEWORK", "PATCHES", "client_inputs", "result_outputs"]

FRAMEWORK = "tritonclient"
"""The ``ml.framework`` of what client calls report."""
_ARRAY = "_servewatch_array"
_CALL = "_servewatch_call"


def client_inputs(inputs: Any) -> dict[str, Any]:
    """Input name -> the array given to ``set_data_from_numpy``, for the ``InferInput`` objects of a call."""
    arrays: dict[str, Any] = {}
    for item in inputs or ():
        array = getattr(item, _ARRAY, None)
        if array is not None:
            arrays[item.name()] = array
    return arrays


def result_outputs(result: Any) -> dict[str, Any]:
    """Output name -> array of an ``InferResult`` (http or grpc)."""
    response = result.get_response()
    described = response.get("outputs", ()) if isinstance(response, dict) else response.outputs
    names = [output["name"] if isinstance(output, dict) else output.name for output in described]
    arrays = {}
    for name in names:
        array = result.as_numpy(name)
        if array is not None:
            arrays[name] = array
    return arrays


def _outputs(result: Any) -> Any:
    """:func:`result_outputs`, or NOTHING (counted) when the answer cannot be read: the call still counts."""
    try:
        return result_outputs(result)
    except Exception as error:
        errors.report("tritonclient.outputs", error)
        return NOTHING


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _set_data(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``InferInput.set_data_from_numpy``: keep a reference to the array."""
    result = wrapped(*args, **kwargs)
    with guard("tritonclient.input"):
        setattr(instance, _ARRAY, _argument(args, kwargs, 0, "input_tensor"))
    return result


def _infer(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``InferenceServerClient.infer`` (http and grpc)."""
    return observe(wrapped, args, kwargs, framework=FRAMEWORK,
                   model=lambda: str(_argument(args, kwargs, 0, "model_name")),
                   inputs=lambda: client_inputs(_argument(args, kwargs, 1, "inputs")), outputs=_outputs)


def _aio_infer(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``InferenceServerClient.infer`` of the aio clients: a coroutine."""

    async def call() -> Any:
        start = perf_counter()
        try:
            result = await wrapped(*args, **kwargs)
        except Exception:
            _report(args, kwargs, NOTHING, perf_counter() - start)
            raise
        _report(args, kwargs, result, perf_counter() - start)
        return result

    return call()


def _http_async_infer(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
    """http ``async_infer``: the call is reported when ``get_result`` first hands out its outcome."""
    start = perf_counter()
    try:
        handle = wrapped(*args, **kwargs)
    except Exception:  # refused before it was sent
        _report(args, kwargs, NOTHING, perf_counter() - start)
        raise
    with guard("tritonclient.async"):
        setattr(handle, _CALL, (args, kwargs, start))
    return handle


def _http_get_result(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Any:
    """``InferAsyncRequest.get_result``."""
    try:
        result = wrapped(*args, **kwargs)
    except Exception:
        call = _take_call(instance, finished=lambda: bool(instance._greenlet.ready()))
        if call is not None:
            _report(call[0], call[1], NOTHING, perf_counter() - call[2])
        raise
    call = _take_call(instance)
    if call is not None:
        _report(call[0], call[1], result, perf_counter() - call[2])
    return result


def _take_call(handle: Any, finished: Callable[[], bool] | None = None) -> tuple[Any, ...] | None:
    """The pending call of an async handle, once (None when already reported or not yet finished)."""
    call = getattr(handle, _CALL, None)
    if call is None:
        return None
    with guard("tritonclient.async"):
        if finished is not None and not finished():  # get_result(block=False) on a request still running
            return None
        delattr(handle, _CALL)
        return tuple(call)
    return None


def _grpc_async_infer(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
    """grpc ``async_infer(model_name, inputs, callback, ...)``: reported when the callback runs."""
    callback = _argument(args, kwargs, 2, "callback")
    if not callable(callback):
        return wrapped(*args, **kwargs)
    start = perf_counter()

    def reported(result: Any, error: Any) -> Any:
        _report(args, kwargs, NOTHING if error is not None or result is None else result, perf_counter() - start)
        return callback(result, error)

    if len(args) > 2:
        args = (*args[:2], reported, *args[3:])
    else:
        kwargs = {**kwargs, "callback": reported}
    try:
        return wrapped(*args, **kwargs)
    except Exception:  # refused before it was sent: the callback will never run
        _report(args, kwargs, NOTHING, perf_counter() - start)
        raise


def _report(args: tuple[Any, ...], kwargs: dict[str, Any], result: Any, duration: float) -> None:
    """Record one client call (``result`` NOTHING: it failed). Never raises."""
    try:
        model = str(_argument(args, kwargs, 0, "model_name"))
        inputs = client_inputs(_argument(args, kwargs, 1, "inputs"))
        if result is NOTHING:
            record(model, inputs, duration=duration, outcome="error", framework=FRAMEWORK)
        else:
            record(model, inputs, _outputs(result), duration=duration, framework=FRAMEWORK)
    except Exception as error:
        errors.report("tritonclient.hook", error)


PATCHES: Sequence[tuple[str, str, Callable[..., Any]]] = (
    ("tritonclient.http._infer_input", "InferInput.set_data_from_numpy", _set_data),
    ("tritonclient.grpc._infer_input", "InferInput.set_data_from_numpy", _set_data),
    ("tritonclient.http._client", "InferenceServerClient.infer", _infer),
    ("tritonclient.http._client", "InferenceServerClient.async_infer", _http_async_infer),
    ("tritonclient.http._client", "InferAsyncRequest.get_result", _http_get_result),
    ("tritonclient.grpc._client", "InferenceServerClient.infer", _infer),
    ("tritonclient.grpc._client", "InferenceServerClient.async_infer", _grpc_async_infer),
    ("tritonclient.http.aio", "InferenceServerClient.infer", _aio_infer),
    ("tritonclient.grpc.aio", "InferenceServerClient.infer", _aio_infer),
)
"""(module, attribute, wrapper) of every patch; each is applied when its module is imported."""
