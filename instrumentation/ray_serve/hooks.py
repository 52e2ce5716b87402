"""The wrappers patched into Ray Serve 2.60 (wrapt signature: ``wrapper(wrapped, instance, args, kwargs)``).

Usage: :class:`~servewatch.instrumentation.ray_serve.RayServeInstrumentor` applies :data:`PATCHES` when
``ray.serve._private.replica`` is imported; nothing here imports Ray.

=============================================================  ===============================================
patched (``ray.serve._private.replica`` unless said)           what it gives servewatch
=============================================================  ===============================================
``Replica.__init__``                                           the deployment and application served by this
                                                               process; whether it batches; starts the runtime
``UserCallableWrapper.call_user_method``                       a handle call's arguments and result
``UserCallableWrapper.call_http_entrypoint`` and               an HTTP request's body and the response body,
``UserCallableWrapper._call_http_entrypoint``                  copied as they pass (:mod:`.exchange`)
``Replica._record_errors_and_metrics``                         once per request, after Ray's own metrics:
                                                               latency, outcome, route; records the request
``ray.serve.batching`` ``_BatchQueue._process_batch_inner``     a ``@serve.batch`` call: batch size, the
                                                               batched inputs and outputs
=============================================================  ===============================================

Each request is recorded once, when Ray has measured it (``latency_ms``, so no clock of ours on the request
path): ``outcome`` is ``error`` when the user code raised (cancellations included, as in Ray's
``ray_serve_deployment_error_counter_total``) or the answer's HTTP status is 4xx or 5xx; an HTTP request
carries ``RequestMetadata.route`` as ``http.route`` (the route Ray's proxy matched: the application's route
prefix, or the FastAPI route template such as ``/items/{item_id}``, never the raw path), a handle call none
(its metadata holds the route of the HTTP request upstream, not a route of this deployment). In a deployment
with a ``@serve.batch`` method the batch calls carry the profiles and the batch sizes, and requests only
their latency and outcome, so no row is counted twice. The wrapped Ray function always runs outside anything
of ours: its result and its exceptions pass through untouched; our own work is guarded, a failure counted in
``servewatch.instrumentation.errors`` under ``error.type`` ``ray_serve.replica``, ``.request``,
``.arguments``, ``.http``, ``.batch`` or ``.in_flight`` (``ray_serve.instrument`` for the patching).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from servewatch.instrumentation import NOTHING, errors, guard, record
from servewatch.instrumentation.runtime import current as start_runtime

from . import replica
from .arguments import batch_inputs, call_inputs
from .exchange import Exchange, _TeeReceive

__all__ = ["FRAMEWORK", "PATCHES"]

FRAMEWORK = "ray_serve"
MAX_IN_FLIGHT = 65536
"""Exchanges kept for requests in flight at most (each is dropped when Ray records its request)."""

_exchanges: dict[str, Exchange] = {}
"""The :class:`~.exchange.Exchange` of each request in flight, by Ray's internal request id. Never kept on the
``RequestMetadata`` itself: Ray pickles that object into every call the replica makes to the proxy for more
of the request's body, so anything hung on it would be serialized (and sent) again and again."""


def _open_exchange(request_metadata: Any) -> Exchange:
    if len(_exchanges) >= MAX_IN_FLIGHT:  # only requests Ray never recorded would be left: forget them all
        errors.report("ray_serve.in_flight", None, len(_exchanges))
        _exchanges.clear()
    exchange = _exchanges[request_metadata.internal_request_id] = Exchange()
    return exchange


def replica_init(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
    result = wrapped(*args, **kwargs)
    with guard("ray_serve.replica"):
        deployment_def = kwargs["deployment_def"] if "deployment_def" in kwargs else args[1]
        replica.attach(instance, deployment_def)
        start_runtime(FRAMEWORK)  # exporters are built on servewatch's thread, never on the request path
    return result


def record_errors_and_metrics(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                              kwargs: dict[str, Any]) -> Any:
    result = wrapped(*args, **kwargs)
    try:
        _record_request(*args, **kwargs)
    except Exception as error:
        errors.report("ray_serve.request", error)
    return result


def _record_request(user_exception: BaseException | None, status_code: str | None, latency_ms: float,
                    request_metadata: Any) -> None:
    info = replica.current()
    if info is None:
        return
    exchange = _exchanges.pop(request_metadata.internal_request_id, None)
    status = str(status_code or "")[:1]
    failed = user_exception is not None or status in ("4", "5")
    inputs, outputs = exchange.values() if exchange is not None else (NOTHING, NOTHING)
    if failed or status not in ("", "2"):  # only a successful answer is a prediction
        outputs = NOTHING
    route = request_metadata.route if request_metadata.is_http_request else None
    record(info.model, inputs, outputs, duration=latency_ms / 1000.0, outcome="error" if failed else "ok",
           framework=FRAMEWORK, route=route or None)


def call_user_method(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                     kwargs: dict[str, Any]) -> Any:
    exchange = None
    with guard("ray_serve.arguments"):
        exchange = _handle_exchange(instance, *args, **kwargs)
    result = wrapped(*args, **kwargs)
    if exchange is None:
        return result
    return _keep_output(result, exchange)


def _handle_exchange(wrapper: Any, request_metadata: Any, request_args: tuple[Any, ...],
                     request_kwargs: dict[str, Any]) -> Exchange | None:
    info = replica.current()
    if info is None or info.batched or wrapper._local_testing_mode or request_metadata.is_grpc_request:
        return None
    try:
        method = wrapper.get_user_method_info(request_metadata.call_method).callable
    except Exception:  # no such method: Ray answers the caller; the arguments get positional names
        method = None
    exchange = _open_exchange(request_metadata)
    exchange.inputs = call_inputs(info, method, request_args, request_kwargs)
    return exchange


async def _keep_output(awaitable: Awaitable[Any], exchange: Exchange) -> Any:
    result = await awaitable
    exchange.outputs = result
    return result


def call_http_entrypoint(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                         kwargs: dict[str, Any]) -> Any:
    if len(args) == 4 and not kwargs:  # (request_metadata, status_code_callback, scope, receive)
        with guard("ray_serve.http"):
            request_metadata, _, scope, receive = args
            info = replica.current()
            if info is not None and not info.batched and scope.get("type") == "http":
                args = (*args[:3], _open_exchange(request_metadata).tee_receive(receive))
    return wrapped(*args, **kwargs)


def call_http_inner(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
    if len(args) == 4 and not kwargs and type(args[2]) is _TeeReceive:  # (method_info, scope, receive, send)
        with guard("ray_serve.http"):
            args = (*args[:3], args[2]._exchange.tee_send(args[3]))
    return wrapped(*args, **kwargs)


def process_batch_inner(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                        kwargs: dict[str, Any]) -> Any:
    info = replica.current()
    if info is None or len(args) != 2 or kwargs:  # (func, batch); outside a replica: plain Python batching
        return wrapped(*args, **kwargs)
    return _observe_batch(wrapped(*args, **kwargs), info, *args)


async def _observe_batch(processing: Awaitable[Any], info: replica.ReplicaInfo, func: Callable[..., Any],
                         batch: list[Any]) -> Any:
    result = await processing
    try:
        _record_batch(info, func, batch)
    except Exception as error:
        errors.report("ray_serve.batch", error)
    return result


def _record_batch(info: replica.ReplicaInfo, func: Callable[..., Any], batch: list[Any]) -> None:
    served = [request for request in batch if not request.future.cancelled()]
    if not served:
        return
    futures = [request.future for request in served]
    failed = any(future.done() and future.exception() is not None for future in futures)
    outputs: Any = NOTHING
    if not failed and not inspect.isasyncgenfunction(func) and all(future.done() for future in futures):
        outputs = [future.result() for future in futures]
    inputs = NOTHING
    with guard("ray_serve.arguments"):
        inputs = batch_inputs(info, func, served)
    record(info.model, inputs, outputs, batch_size=len(served), outcome="error" if failed else "ok",
           framework=FRAMEWORK, requests=0)


PATCHES: tuple[tuple[str, str, Callable[..., Any]], ...] = (
    ("ray.serve._private.replica", "Replica.__init__", replica_init),
    ("ray.serve._private.replica", "Replica._record_errors_and_metrics", record_errors_and_metrics),
    ("ray.serve._private.replica", "UserCallableWrapper.call_user_method", call_user_method),
    ("ray.serve._private.replica", "UserCallableWrapper.call_http_entrypoint", call_http_entrypoint),
    ("ray.serve._private.replica", "UserCallableWrapper._call_http_entrypoint", call_http_inner),
    ("ray.serve.batching", "_BatchQueue._process_batch_inner", process_batch_inner),
)
"""(module, attribute, wrapper) for every patch."""
