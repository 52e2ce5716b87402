"""PyTriton hooks: every model a process binds with ``Triton.bind`` is observed where its callable runs.

Usage (what :class:`~servewatch.instrumentation.triton.PyTritonInstrumentor` does)::

    instrumentor.wrap("pytriton.proxy.inference", "InferenceHandler.__init__", handler_init)
    instrumentor.wrap("pytriton.triton", "Triton._initialize_server", server_init)

PyTriton runs the user's inference callable in the launching process: the ``tritonserver`` python-backend
stub only forwards the batch Triton formed over ZMQ / shared memory, and one ``InferenceHandler`` per bound
callable turns it into ``callable(requests)`` on its own event loop. ``handler_init`` wraps the handler's
adapted callable (an async generator, whatever the user's callable is: function, ``@batch``-decorated
function, method, coroutine or generator) so that each call reports, for the bound model name:

- duration: from the call until the callable produced its last response (a decoupled model's stream
  included); outcome ``error`` when the callable raised or its answer failed PyTriton's validation;
- requests: how many client requests Triton batched into the call; batch size: their rows (the sum of the
  requests' first dimensions for a model with ``max_batch_size > 0``, else the number of requests);
- inputs and outputs by tensor name (column ``i`` of a 2-D tensor ``x`` is ``x.<i>``; wide, image and text
  tensors become projections, see :mod:`servewatch.instrumentation.extraction`).

``server_init`` notes the metrics endpoint of the ``tritonserver`` a ``Triton`` object starts; from the first
inference on, :mod:`~servewatch.instrumentation.triton.bridge` reads it for the models bound here: queue time
(``servewatch.inference.queue.time``), compute time and the GPU gauges. ``RemoteTriton`` models get no bridge
(the server is someone else's; run the bridge next to it).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from time import perf_counter
from typing import Any

from servewatch.instrumentation import NOTHING, guard, record
from servewatch.instrumentation.guard import errors

from .tensors import merge_requests, rows

__all__ = ["FRAMEWORK", "bound_models", "handler_init", "server_init", "set_active"]

FRAMEWORK = "pytriton"
"""The ``ml.framework`` of what PyTriton models report."""

_lock = threading.Lock()
_active = True
_bound: set[str] = set()
_metrics_urls: list[str] = []
_bridge_started = False


def set_active(active: bool) -> None:
    """Turn reporting on or off (``uninstrument`` turns it off: handlers created before keep their wrapper,
    which then only passes the calls through)."""
    global _active
    _active = active


def bound_models() -> frozenset[str]:
    """Names of the models this process has bound (the ones the metrics bridge reports)."""
    return frozenset(_bound)


def handler_init(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Wrapper of ``InferenceHandler.__init__``: observe the handler's callable."""
    wrapped(*args, **kwargs)
    with guard("pytriton.bind"):
        model_callable = args[0] if args else kwargs["model_callable"]
        name, batched = _binding(model_callable)
        with _lock:
            _bound.add(name)
        instance._model_callable = _observed(instance._model_callable, name, batched)


def server_init(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Wrapper of ``Triton._initialize_server``: remember the server's metrics endpoint."""
    result = wrapped(*args, **kwargs)
    with guard("pytriton.metrics"):
        if getattr(instance._config, "allow_metrics", None) is not False:
            url = instance._triton_server.get_endpoint("metrics").rstrip("/") + "/metrics"
            with _lock:
                if url not in _metrics_urls:
                    _metrics_urls.append(url)
    return result


def _binding(model_callable: Any) -> tuple[str, bool]:
    """(model name, whether Triton batches it) of a bound callable, from the context ``Triton.bind`` gave it."""
    from pytriton.decorators import get_model_config

    config = get_model_config(model_callable, getattr(model_callable, "__self__", None))
    return str(config.model_name), bool(config.batching and config.max_batch_size)


def _observed(inner: Callable[[Any], AsyncIterator[Any]], model: str, batched: bool,
              ) -> Callable[[Any], AsyncIterator[Any]]:
    """``inner`` (PyTriton's async-generator form of the callable), recording each call."""

    async def observed(requests: Any) -> AsyncIterator[Any]:
        start = done = perf_counter()
        answers: list[Any] = []
        outcome = "error"
        try:
            async for responses in inner(requests):
                done = perf_counter()
                answers.append(responses)
                yield responses
            outcome = "ok"
        finally:  # also on GeneratorExit: PyTriton stopped reading (its validation refused the answer)
            _report(model, batched, requests, answers, outcome, (done if outcome == "ok" else perf_counter()) - start)

    return observed


def _report(model: str, batched: bool, requests: Any, answers: list[Any], outcome: str, duration: float) -> None:
    """Record one call; never raises (it runs in the ``finally`` of the callable's generator)."""
    if not _active:
        return
    try:
        count = len(requests)
        try:
            inputs = merge_requests([request.data for request in requests], batched=batched)
            outputs: Any = NOTHING
            if outcome == "ok":
                outputs = merge_requests([answer for responses in answers for answer in responses], batched=batched)
            size = rows(inputs) if batched else count
        except Exception as error:  # odd request objects: the call still counts
            errors.report("pytriton.hook", error)
            inputs, outputs, size = NOTHING, NOTHING, None
        record(model, inputs, outputs, duration=duration, batch_size=size, outcome=outcome, framework=FRAMEWORK,
               requests=count)
        if not _bridge_started:
            _start_bridge()
    except Exception as error:
        errors.report("pytriton.hook", error)


def _start_bridge() -> None:
    """Start the metrics bridge for the servers this process started (once, at the first inference)."""
    global _bridge_started
    with _lock:
        if _bridge_started:
            return
        _bridge_started = True
        urls = list(_metrics_urls)
    with guard("pytriton.metrics"):
        from .bridge import start_in_process

        for url in urls:
            start_in_process(url, bound_models, framework=FRAMEWORK)
