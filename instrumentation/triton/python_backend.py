"""The opt-in for Triton python-backend models: derive ``TritonPythonModel`` from :class:`MonitoredPythonModel`.

Usage, in the model repository's ``<model>/1/model.py``::

    import triton_python_backend_utils as pb_utils
    from servewatch.instrumentation.triton import MonitoredPythonModel

    class TritonPythonModel(MonitoredPythonModel):        # the one line that changes
        def initialize(self, args): ...
        def execute(self, requests):
            x = pb_utils.get_input_tensor_by_name(requests[0], "x").as_numpy()
            ...

Triton runs each model instance in its own stub process whose embedded interpreter ignores ``PYTHONPATH``'s
``sitecustomize``, so ``opentelemetry-instrument`` cannot reach it: the base class is the way in. Defining
the subclass wraps its ``initialize`` (to learn the model's name and whether Triton batches it, from
``args``) and its ``execute``: each call reports, before it returns (the request tensors are freed once
``execute`` returns), for the model name:

- duration of ``execute`` (per request of the batch), requests (``len(requests)``) and batch size (the rows
  of the requests' tensors for a model with ``max_batch_size > 0``, else the number of requests);
- outcome: ``error`` for every request when ``execute`` raised, and for each response that carries an error
  (``pb_utils.InferenceResponse(error=...)``); the others are ``ok``;
- inputs (every input tensor of the requests, by name) and outputs (the tensors of the successful responses).
  A decoupled model (``execute`` returns None, answers through response senders) reports its inputs only.

``execute`` may be a coroutine function (async decoupled models). Every stub is its own producer (its own
``service.instance.id``): instances of a model send separate profiles, which the detector merges. The stub
inherits ``tritonserver``'s environment, so set ``SERVEWATCH_*`` and ``OTEL_*`` where the server starts.
Tensors that do not live in CPU memory are skipped (python-backend inputs are on the CPU unless
``FORCE_CPU_ONLY_INPUT_TENSORS`` is ``no``).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import Any

from servewatch.instrumentation import NOTHING, record
from servewatch.instrumentation.guard import errors

from .tensors import merge_requests, rows

__all__ = ["FRAMEWORK", "MonitoredPythonModel"]

FRAMEWORK = "triton"
"""The ``ml.framework`` of what python-backend models report."""
_BINDING = "_servewatch_binding"


class MonitoredPythonModel:
    """Base class of a python-backend ``TritonPythonModel`` whose ``execute`` calls are reported (module
    docstring). Subclasses keep their own ``initialize``/``execute``/``finalize`` unchanged."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        initialize = cls.__dict__.get("initialize")
        if callable(initialize) and not getattr(initialize, "_servewatch", False):
            cls.initialize = _wrap_initialize(initialize)  # type: ignore[method-assign]
        execute = cls.__dict__.get("execute")
        if callable(execute) and not getattr(execute, "_servewatch", False):
            cls.execute = _wrap_execute(execute)  # type: ignore[attr-defined]  # each subclass defines its own execute

    def initialize(self, args: dict[str, str]) -> None:
        """Triton's ``initialize``; this base only notes the model's name and batching."""
        _bind(self, args)


def _bind(model: Any, args: Any) -> None:
    """Note (name, batched) from Triton's ``initialize`` arguments; never raises."""
    try:
        config = json.loads(args.get("model_config") or "{}")
        name = str(args.get("model_name") or config.get("name") or _name_from_file(model))
        setattr(model, _BINDING, (name, int(config.get("max_batch_size") or 0) > 0))
    except Exception as error:
        errors.report("triton.initialize", error)


def _binding(model: Any) -> tuple[str, bool]:
    """(name, batched) of a model; without ``initialize`` (never under Triton) from where its file lies."""
    binding = getattr(model, _BINDING, None)
    if binding is None:
        binding = (_name_from_file(model), True)
        setattr(model, _BINDING, binding)
    return binding


def _name_from_file(model: Any) -> str:
    """A model repository lays out ``<repository>/<model>/<version>/model.py``: the model's folder name."""
    path = getattr(sys.modules.get(type(model).__module__), "__file__", None)
    if path:
        return os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path)))) or type(model).__name__
    return type(model).__name__


def _wrap_initialize(initialize: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(initialize)
    def wrapper(self: Any, args: Any, *rest: Any, **kwargs: Any) -> Any:
        _bind(self, args)
        return initialize(self, args, *rest, **kwargs)

    wrapper._servewatch = True  # type: ignore[attr-defined]
    return wrapper


def _wrap_execute(execute: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(execute):
        @functools.wraps(execute)
        async def async_wrapper(self: Any, requests: Any, *rest: Any, **kwargs: Any) -> Any:
            start = perf_counter()
            try:
                responses = await execute(self, requests, *rest, **kwargs)
            except Exception:
                _report(self, requests, NOTHING, perf_counter() - start)
                raise
            _report(self, requests, responses, perf_counter() - start)
            return responses

        async_wrapper._servewatch = True  # type: ignore[attr-defined]
        return async_wrapper

    @functools.wraps(execute)
    def wrapper(self: Any, requests: Any, *rest: Any, **kwargs: Any) -> Any:
        start = perf_counter()
        try:
            responses = execute(self, requests, *rest, **kwargs)
        except Exception:
            _report(self, requests, NOTHING, perf_counter() - start)
            raise
        _report(self, requests, responses, perf_counter() - start)
        return responses

    wrapper._servewatch = True  # type: ignore[attr-defined]
    return wrapper


def _report(model: Any, requests: Sequence[Any], responses: Any, duration: float) -> None:
    """Record one ``execute``; ``responses`` is NOTHING when it raised. Never raises."""
    try:
        name, batched = _binding(model)
        count = len(requests)
        inputs = merge_requests([_tensors(request.inputs()) for request in requests], batched=batched)
        size = rows(inputs) if batched else count
        if responses is NOTHING:
            record(name, inputs, duration=duration, batch_size=size, outcome="error", framework=FRAMEWORK,
                   requests=count)
            return
        if responses is None:  # decoupled: answers go through response senders
            record(name, inputs, duration=duration, batch_size=size, framework=FRAMEWORK, requests=count)
            return
        answered = [response for response in responses if not response.has_error()]
        failed = len(responses) - len(answered)
        outputs = merge_requests([_tensors(response.output_tensors()) for response in answered], batched=batched)
        if answered:
            record(name, inputs, outputs, duration=duration, batch_size=size, framework=FRAMEWORK,
                   requests=count - failed)
        if failed:
            record(name, NOTHING if answered else inputs, duration=duration, batch_size=None if answered else size,
                   outcome="error", framework=FRAMEWORK, requests=failed)
    except Exception as error:
        errors.report("triton.execute", error)


def _tensors(tensors: Sequence[Any]) -> dict[str, Any]:
    """name -> numpy array of python-backend tensors held in CPU memory."""
    arrays: dict[str, Any] = {}
    for tensor in tensors:
        if tensor.is_cpu():
            arrays[tensor.name()] = tensor.as_numpy()
    return arrays
