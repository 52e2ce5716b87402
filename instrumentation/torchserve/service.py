"""The hooks inside a TorchServe worker: ``ts.service.Service.predict`` and the handler's ``inference``.

Usage (what :class:`~servewatch.instrumentation.torchserve.TorchServeInstrumentor` installs)::

    import wrapt
    from servewatch.instrumentation.torchserve.service import predict_wrapper

    wrapt.wrap_function_wrapper("ts.service", "Service.predict", predict_wrapper)

Per call of ``Service.predict(batch)`` (one batch that the frontend formed, one request per item):

- duration: the wall time of ``predict`` (request decoding, pre-processing, inference, post-processing);
- batch size: ``len(batch)``; request ids: ``context.request_ids``;
- outcome: ``error`` for every request when ``predict`` raised or its response carries a 4xx/5xx code (a handler
  that raised is answered 503 or 507 by ``predict`` itself), and for each request the handler marked 4xx/5xx with
  ``context.set_response_status``; ``ok`` otherwise;
- inputs and predictions: for a handler object with an ``inference`` method (``BaseHandler`` and its
  subclasses, whether or not they override it) the model-ready input of ``inference`` (its first argument,
  after ``preprocess``) and its raw return value (before ``postprocess``), captured by wrapping ``inference``
  on the handler instance; for a function handler (``handle(data, context)`` in a module) the request
  payloads (each request's ``data`` or ``body``) and the list it returns. A handler that calls ``inference``
  once per chunk of the batch is reported as one batch (the chunks concatenated). The values are recorded
  when ``predict`` returns: a ``postprocess`` that changes the raw output tensor in place (``sigmoid_()``)
  changes what is profiled as well. CPU tensors reach the recorder as numpy arrays sharing their memory.

The first ``predict`` of a service attaches a :class:`ServiceHooks` to it: so nothing happens in processes that
never predict (the ``torchserve`` launcher, the metric collector). Workers of rank > 0 (``LOCAL_RANK``, torchrun
launches) record nothing, since rank 0 answers for them. A failure of ours is counted under
``servewatch.instrumentation.errors`` (kinds ``torchserve.attach``, ``torchserve.record``, ``torchserve.combine``)
and never reaches the request; the handler's own exceptions and TorchServe's answers pass through untouched.
Cost, measured by ``bench/torchserve_worker.py``: about 35 us of worker CPU per single-request batch, 10 us per
request in batches of 4.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Collection, Sequence
from typing import Any

from servewatch.instrumentation import NOTHING, errors, guard, observe_queue_time, record

from .frontend import QueueTimeBridge

__all__ = ["FRAMEWORK", "ServiceHooks", "attach", "attached", "detach_all", "find_handler", "predict_wrapper",
           "request_payload"]

FRAMEWORK = "torchserve"
"""The ``ml.framework`` attribute of everything recorded here."""
_ATTRIBUTE = "_servewatch_hooks"
_FIRST_ERROR = (400).to_bytes(4, "big")
_PAYLOAD_KEYS = ("data", "body")

log = logging.getLogger("servewatch.instrumentation")
_services: weakref.WeakSet[Any] = weakref.WeakSet()
_services_lock = threading.Lock()


class ServiceHooks:
    """What one ``ts.service.Service`` reports: its model, how its inputs are read, and the call in progress."""

    def __init__(self, service: Any, record: Callable[..., None]) -> None:
        self.service = service
        self.model = str(service.context.model_name)
        self.record = record
        self.calls: list[tuple[Any, Any]] | None = None
        self.handler = find_handler(service._entry_point)
        self.mode = "tensors" if self.handler is not None else "payloads"
        self._tensor = getattr(sys.modules.get("torch"), "Tensor", None)  # torch is loaded: a handler imported it
        if self.handler is not None:
            self._restore = _wrap_inference(self.handler, self)
        else:
            self._restore = _wrap_entry_point(service, self)

    def detach(self) -> None:
        """Undo the instance-level wrap (``inference`` or ``_entry_point``)."""
        self._restore()
        self.service.__dict__.pop(_ATTRIBUTE, None)

    def finish(self, batch: Any, response: Any, duration: float, raised: bool) -> None:
        """Record the call that just ended (never raises)."""
        calls, self.calls = self.calls, None
        try:
            size = len(batch) if batch is not None else 0
            context = self.service.context
            ids = list((getattr(context, "request_ids", None) or {}).values())  # in batch order
            if len(ids) != size:
                ids = [None] * size
            failed = _failed(context, response, size, raised)
            inputs, outputs = _combine(calls) if calls else (NOTHING, NOTHING)
            if self.mode == "payloads":
                if inputs is not NOTHING:
                    inputs = [request_payload(request) for request in inputs]
            else:
                tensor = self._tensor
                if type(inputs) is tensor:
                    inputs = _host_array(inputs)
                if type(outputs) is tensor:
                    outputs = _host_array(outputs)
            if not failed or len(failed) == size:
                self.record(self.model, inputs, outputs, duration=duration, batch_size=size,
                            outcome="error" if failed else "ok", framework=FRAMEWORK, request_ids=ids)
                return
            self.record(self.model, inputs, outputs, duration=duration, batch_size=size, outcome="ok",
                        framework=FRAMEWORK, request_ids=[rid for i, rid in enumerate(ids) if i not in failed])
            self.record(self.model, duration=duration, outcome="error", framework=FRAMEWORK,  # the batch counts once
                        request_ids=[rid for i, rid in enumerate(ids) if i in failed])
        except Exception as error:
            errors.report("torchserve.record", error)


def predict_wrapper(wrapped: Callable[..., Any], service: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """``wrapt`` wrapper of ``Service.predict``: times the call and records it through the service's hooks."""
    hooks = service.__dict__.get(_ATTRIBUTE, NOTHING) if service is not None else None
    if hooks is NOTHING:
        hooks = attach(service)
    if hooks is None:
        return wrapped(*args, **kwargs)
    batch = args[0] if args else kwargs.get("batch")
    hooks.calls = []
    start = time.perf_counter()
    try:
        response = wrapped(*args, **kwargs)
    except BaseException:
        hooks.finish(batch, None, time.perf_counter() - start, raised=True)
        raise
    hooks.finish(batch, response, time.perf_counter() - start, raised=False)
    return response


def attach(service: Any, *, recorder: Callable[..., None] = record, queue_time: bool = True) -> ServiceHooks | None:
    """The hooks of ``service``, created now (None: record nothing for it: a worker of rank > 0, or a failure).
    ``recorder`` receives the calls (:func:`servewatch.instrumentation.record`); ``queue_time`` registers the
    model's :class:`~servewatch.instrumentation.torchserve.frontend.QueueTimeBridge`."""
    hooks = None
    with guard("torchserve.attach"):
        rank = os.environ.get("LOCAL_RANK", "0").strip()
        if rank not in ("", "0"):
            log.info("servewatch: TorchServe worker of rank %s records nothing (rank 0 answers)", rank)
        else:
            hooks = ServiceHooks(service, recorder)
            if queue_time:
                observe_queue_time(QueueTimeBridge(hooks.model).read, framework=FRAMEWORK)
            log.info("servewatch: TorchServe model %r instrumented (%s)", hooks.model,
                     f"inference of {type(hooks.handler).__name__}" if hooks.handler is not None
                     else "request payloads of a function handler")
    service.__dict__[_ATTRIBUTE] = hooks
    with _services_lock:
        _services.add(service)
    return hooks


def attached(service: Any) -> ServiceHooks | None:
    """The hooks attached to ``service`` (None when none are)."""
    return service.__dict__.get(_ATTRIBUTE)


def detach_all() -> None:
    """Undo every instance-level wrap made so far (``_uninstrument``)."""
    with _services_lock:
        services = list(_services)
        _services.clear()
    for service in services:
        hooks = service.__dict__.pop(_ATTRIBUTE, None)
        if hooks is not None:
            with guard("torchserve.detach"):
                hooks.detach()


def find_handler(entry_point: Any) -> Any:
    """The handler object behind a service's entry point, when it has an ``inference`` method (looking
    through a request envelope's ``_handle_fn``); None for a function handler."""
    owner = getattr(entry_point, "__self__", None)
    inner = getattr(owner, "_handle_fn", None)
    if inner is not None:
        owner = getattr(inner, "__self__", None)
    if owner is None or isinstance(owner, type) or not callable(getattr(owner, "inference", None)):
        return None
    return owner


def request_payload(request: Any) -> Any:
    """What a function handler's request carries: its ``data`` or ``body`` parameter (JSON already decoded by
    TorchServe), or all of its parameters when it has others (multipart forms)."""
    if isinstance(request, dict):
        keys = [key for key in _PAYLOAD_KEYS if key in request]
        if len(keys) == 1 and len(request) == 1:
            return request[keys[0]]
    return request


def _capturing(original: Callable[..., Any], hooks: ServiceHooks) -> Callable[..., Any]:
    """``original`` (the handler's ``inference`` or a function handler), remembering its first argument and its
    result in the call in progress; outside a ``predict`` (a warm-up in ``initialize``) it only calls through."""

    def captured(data: Any, *args: Any, **kwargs: Any) -> Any:
        calls = hooks.calls
        if calls is None:
            return original(data, *args, **kwargs)
        try:
            result = original(data, *args, **kwargs)
        except BaseException:
            calls.append((data, NOTHING))
            raise
        calls.append((data, result))
        return result

    captured.__wrapped__ = original  # type: ignore[attr-defined]
    return captured


def _wrap_inference(handler: Any, hooks: ServiceHooks) -> Callable[[], None]:
    """Wrap ``handler.inference`` on the instance; returns the function that restores it."""
    had_own = "inference" in handler.__dict__
    original = handler.inference
    handler.inference = _capturing(original, hooks)

    def restore() -> None:
        if had_own:
            handler.inference = original
        else:
            handler.__dict__.pop("inference", None)

    return restore


def _wrap_entry_point(service: Any, hooks: ServiceHooks) -> Callable[[], None]:
    """Wrap the service's entry point (a function handler's ``handle``); returns the function that restores it."""
    original = service._entry_point
    service._entry_point = captured = _capturing(original, hooks)

    def restore() -> None:
        if service._entry_point is captured:
            service._entry_point = original

    return restore


def _failed(context: Any, response: Any, size: int, raised: bool) -> Collection[int]:
    """Indices of the requests answered with a 4xx/5xx code: all of them when ``predict`` raised or answered
    the batch with such a code, else those the handler marked (``context.set_response_status``)."""
    if raised:
        return range(size)
    if type(response) is not bytearray and not isinstance(response, bytes) or len(response) < 4:
        return ()
    if response[:4] >= _FIRST_ERROR:  # the batch's code, a big-endian int
        return range(size)
    processors = getattr(context, "request_processor", None) or ()
    return {index for index, processor in enumerate(processors)
            if (processor.get_response_status_code() or 0) >= 400} or ()


def _host_array(tensor: Any) -> Any:
    """A CPU tensor as the numpy array sharing its memory: what the recorder would make of it, without its type
    dispatch (a third of the cost of recording a small batch). Other tensors as they are: the recorder
    subsamples images on a GPU before copying, and converts what numpy cannot hold (bfloat16)."""
    if tensor.is_cpu and not tensor.requires_grad:
        try:
            return tensor.numpy()
        except (TypeError, RuntimeError):
            pass
    return tensor


def _combine(calls: Sequence[tuple[Any, Any]]) -> tuple[Any, Any]:
    """The inputs and outputs of the call's ``inference`` (or entry-point) invocations as one batch each."""
    if not calls:
        return NOTHING, NOTHING
    if len(calls) == 1:
        return calls[0]
    return _concatenate([inputs for inputs, _ in calls]), _concatenate([outputs for _, outputs in calls])


def _concatenate(parts: list[Any]) -> Any:
    """Chunks of one batch (a handler that calls ``inference`` per chunk) as one value; the first chunk alone
    when they cannot be joined (counted as ``torchserve.combine``)."""
    parts = [part for part in parts if part is not NOTHING]
    if not parts:
        return NOTHING
    first = parts[0]
    try:
        if all(isinstance(part, list) for part in parts):
            return [item for part in parts for item in part]
        if type(first).__module__.startswith("torch") and hasattr(first, "shape"):
            import torch

            return torch.cat(parts)
        if type(first).__module__ == "numpy" and hasattr(first, "shape"):
            import numpy as np

            return np.concatenate(parts)
    except Exception as error:
        errors.report("torchserve.combine", error)
        return first
    errors.report("torchserve.combine", TypeError(f"cannot join {len(parts)} chunks of {type(first).__name__}"))
    return first
