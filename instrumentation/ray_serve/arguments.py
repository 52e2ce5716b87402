"""The model input of a handle call or a ``@serve.batch`` call, from the arguments Ray Serve passes.

Usage (inside the hooks)::

    from servewatch.instrumentation.ray_serve.arguments import batch_inputs, call_inputs

    call_inputs(info, method, args, kwargs)   # handle.predict.remote(x): x
    call_inputs(info, method, args, kwargs)   # handle.score.remote(3.5, "DE"): {"amount": 3.5, "country": ...}
    batch_inputs(info, func, requests)        # @serve.batch of 8 requests: [x1, ..., x8]

Rules, the same for one call and for a batch:

- one positional argument and no keywords: that argument (for a batch, the list of what each request passed,
  which is exactly what the batch method receives);
- anything else: a mapping from parameter names (read from the method's signature; ``arg<i>`` where it has
  none) and keywords to the values, so each argument becomes a named column (for a batch: name -> the list of
  values, one per request);
- starlette ``Request`` objects (a ``@serve.batch`` method behind HTTP ingress) stand for their decoded body
  or query parameters (:func:`~servewatch.instrumentation.ray_serve.exchange.request_value`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from servewatch.instrumentation import NOTHING

from .exchange import request_value
from .replica import ReplicaInfo

__all__ = ["batch_inputs", "call_inputs"]


def call_inputs(info: ReplicaInfo, method: Callable[..., Any] | None, args: Sequence[Any],
                kwargs: dict[str, Any]) -> Any:
    """The input of one call of the user ``method`` (bound) with ``args`` and ``kwargs``."""
    if not kwargs:
        if len(args) == 1:
            return _plain(args[0])
        if not args:
            return NOTHING
    return _named(_names(info, method, False, len(args)), args, kwargs)


def batch_inputs(info: ReplicaInfo, func: Callable[..., Any], requests: Sequence[Any]) -> Any:
    """The input of one batch: ``requests`` are Ray's ``_SingleRequest`` items (``flattened_args`` alternate
    key and value; the key of a positional argument is a marker, not a string), ``func`` the undecorated batch
    function."""
    flat = requests[0].flattened_args
    if len(flat) == 2 and not isinstance(flat[0], str):
        values = [_plain(request.flattened_args[1]) for request in requests]
        known = [value for value in values if value is not NOTHING]
        return values if len(known) == len(values) else known or NOTHING
    keys = flat[0::2]
    positional = sum(1 for key in keys if not isinstance(key, str))
    names = _names(info, func, requests[0].self_arg is not None, positional)
    columns: dict[str, list[Any]] = {}
    for position, key in enumerate(keys):
        name = key if isinstance(key, str) else names[position]
        columns[name] = [_plain(request.flattened_args[2 * position + 1]) for request in requests]
    return columns


def _names(info: ReplicaInfo, function: Callable[..., Any] | None, skip_first: bool, count: int) -> list[str]:
    """Names for ``count`` positional arguments of ``function``."""
    known = info.parameter_names(function, skip_first) if function is not None else None
    known = known or ()
    return [known[i] if i < len(known) else f"arg{i}" for i in range(count)]


def _named(names: list[str], args: Sequence[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    named = {name: _plain(value) for name, value in zip(names, args)}
    named.update((str(key), _plain(value)) for key, value in kwargs.items())
    return named


def _plain(value: Any) -> Any:
    """``value``, or what it carries when it is a starlette ``Request``."""
    if type(value).__name__ == "Request" and hasattr(value, "scope") and hasattr(value, "receive"):
        return request_value(value)
    return value
