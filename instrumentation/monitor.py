"""The generic API for any Python server: a decorator, a context manager, and ``observe`` for hook authors.

Usage::

    from servewatch.instrumentation import monitor

    @monitor("fraud")                          # sync or async; profiles the first argument and the return value
    def predict(features):
        return model.predict_proba(features)

    @monitor("fraud", inputs="features", outputs=lambda response: response["scores"])
    async def handle(request_id, features): ...

    with monitor("fraud") as call:             # the caller says what went in and what came out
        call.inputs = features
        call.outputs = model.predict(features)

A decorated function's own exceptions propagate unchanged (the call counts as ``outcome="error"``); nothing
servewatch does can raise into it. ``inputs`` picks the argument holding the model's input: a parameter
name, a position, or a callable taking the function's ``(*args, **kwargs)``; by default the first parameter
other than ``self``/``cls``. ``outputs`` maps the return value to what is profiled (default: all of it).
``batched=False`` says the function takes and returns one sample, not a batch. Generator functions are left
undecorated (reported once as ``monitor``): use the context manager around what they yield.

``observe`` is the same for a hook wrapping a framework's function whose model name and input are only known
per call (everything but the wrapped call runs guarded)::

    def wrapper(wrapped, instance, args, kwargs):          # a wrapt-style wrapper
        return observe(wrapped, args, kwargs, framework="torchserve",
                       model=lambda: instance.context.model_name, inputs=lambda: args[0])
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar, Token
from time import perf_counter
from types import TracebackType
from typing import Any, TypeVar

from .guard import errors
from .runtime import active, record
from .sentinel import NOTHING

__all__ = ["Inference", "Monitor", "monitor", "observe"]

F = TypeVar("F", bound=Callable[..., Any])
_current: ContextVar[Inference | None] = ContextVar("servewatch_inference", default=None)


class Inference:
    """One call being monitored by ``with monitor(...) as call``: set what it received and answered."""

    __slots__ = ("inputs", "outputs", "batch_size", "requests", "_monitor", "_start", "_token")

    def __init__(self, owner: Monitor) -> None:
        self.inputs: Any = NOTHING
        """What the model received (a batch, unless the monitor says ``batched=False``)."""
        self.outputs: Any = NOTHING
        """What the model answered."""
        self.batch_size: int | None = None
        """Rows in the call (default: counted from ``inputs``)."""
        self.requests: int | None = None
        """Client requests the call served (default 1)."""
        self._monitor = owner
        self._start = perf_counter()
        self._token: Token[Inference | None] | None = None


class Monitor:
    """Monitors calls of one model; use :func:`monitor` to make one."""

    def __init__(self, model: str, *, framework: str = "python", inputs: str | int | Callable[..., Any] | None = None,
                 outputs: Callable[[Any], Any] | None = None, batched: bool = True) -> None:
        self.model = model
        self.framework = framework
        self.inputs = inputs
        self.outputs = outputs
        self.batched = batched

    # -- as a context manager --------------------------------------------------------------------------------

    def __enter__(self) -> Inference:
        inference = Inference(self)
        inference._token = _current.set(inference)
        return inference

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        inference = _current.get()
        if inference is None or inference._monitor is not self:
            return
        duration = perf_counter() - inference._start
        if inference._token is not None:
            _current.reset(inference._token)
        self._record(inference.inputs, NOTHING if error is not None else inference.outputs, duration,
                     "error" if error is not None else "ok", inference.batch_size, inference.requests)

    # -- as a decorator -------------------------------------------------------------------------------------

    def __call__(self, function: F) -> F:
        if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
            errors.report("monitor", TypeError(f"monitor({self.model!r}) cannot follow the generator "
                                               f"{getattr(function, '__qualname__', function)}; it is left as it is"))
            return function
        pick = _picker(function, self.inputs)
        record_call = self._record

        if inspect.iscoroutinefunction(function):
            @functools.wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                start = perf_counter()
                try:
                    result = await function(*args, **kwargs)
                except Exception:
                    record_call(pick(args, kwargs), NOTHING, perf_counter() - start, "error")
                    raise
                record_call(pick(args, kwargs), result, perf_counter() - start, "ok")
                return result
            return async_wrapper  # type: ignore[return-value]

        model, framework, plain = self.model, self.framework, self.outputs is None and self.batched

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = perf_counter()
            try:
                result = function(*args, **kwargs)
            except Exception:
                record_call(pick(args, kwargs), NOTHING, perf_counter() - start, "error")
                raise
            duration = perf_counter() - start
            # record(), inlined on purpose: the per-call path of a started process skips record()'s checks of
            # arguments that are known good here (and its starting the runtime, which the first call did)
            started = active()
            if plain and started is not None:
                try:
                    started.recorder.record(model, framework, pick(args, kwargs), result, duration, None, "ok", 1)
                except Exception as error:
                    errors.report("record", error)
            else:
                record_call(pick(args, kwargs), result, duration, "ok")
            return result
        return wrapper  # type: ignore[return-value]

    def _record(self, inputs: Any, outputs: Any, duration: float, outcome: str, batch_size: int | None = None,
                requests: int | None = None) -> None:
        if outputs is not NOTHING and self.outputs is not None:
            try:
                outputs = self.outputs(outputs)
            except Exception as error:
                errors.report("monitor", error)
                outputs = NOTHING
        if not self.batched:
            inputs = NOTHING if inputs is NOTHING else [inputs]
            outputs = NOTHING if outputs is NOTHING else [outputs]
        record(self.model, inputs, outputs, duration=duration, outcome=outcome, framework=self.framework,
               batch_size=batch_size, requests=requests)


def monitor(model: str, *, framework: str = "python", inputs: str | int | Callable[..., Any] | None = None,
            outputs: Callable[[Any], Any] | None = None, batched: bool = True) -> Monitor:
    """Monitor calls of ``model``: use the result as a decorator or as a context manager (module docstring)."""
    return Monitor(model, framework=framework, inputs=inputs, outputs=outputs, batched=batched)


def observe(wrapped: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *, framework: str,
            model: str | Callable[[], str], inputs: Callable[[], Any] | None = None,
            outputs: Callable[[Any], Any] | None = None, batch_size: Callable[[], int | None] | None = None,
            requests: Callable[[], int | None] | None = None,
            route: str | Callable[[], str | None] | None = None) -> Any:
    """Call ``wrapped(*args, **kwargs)`` and record it. Its result or exception passes through untouched; the
    callables (model name, inputs, outputs from the result, batch size, requests, HTTP route) run afterwards,
    guarded.

    When ``wrapped`` is a coroutine function, the coroutine it returns is wrapped in one that records on
    completion (await it as before); a returned future (``add_done_callback``) is recorded when it is done."""
    start = perf_counter()
    report = functools.partial(_observed, framework, model, inputs, outputs, start, batch_size, requests, route)
    try:
        result = wrapped(*args, **kwargs)
    except Exception:
        report(NOTHING, "error")
        raise
    if inspect.iscoroutine(result):
        return _completed(result, report)
    if callable(getattr(result, "add_done_callback", None)) and callable(getattr(result, "exception", None)):
        try:
            result.add_done_callback(lambda done: _future_done(done, report))
            return result
        except Exception as error:
            errors.report(f"{framework}.hook", error)
    report(result, "ok")
    return result


async def _completed(coroutine: Any, report: Callable[[Any, str], None]) -> Any:
    try:
        result = await coroutine
    except Exception:
        report(NOTHING, "error")
        raise
    report(result, "ok")
    return result


def _future_done(future: Any, report: Callable[[Any, str], None]) -> None:
    try:
        failed = future.cancelled() or future.exception() is not None
        report(NOTHING if failed else future.result(), "error" if failed else "ok")
    except Exception as error:
        errors.report("monitor", error)


def _observed(framework: str, model: str | Callable[[], str], inputs: Callable[[], Any] | None,
              outputs: Callable[[Any], Any] | None, start: float, batch_size: Callable[[], int | None] | None,
              requests: Callable[[], int | None] | None, route: str | Callable[[], str | None] | None, result: Any,
              outcome: str) -> None:
    duration = perf_counter() - start
    try:
        name = model() if callable(model) else model
        received = inputs() if inputs is not None else NOTHING
        answered = result if result is NOTHING or outputs is None else outputs(result)
        rows = batch_size() if batch_size is not None else None
        served = requests() if requests is not None else None
        path = route() if callable(route) else route
    except Exception as error:
        errors.report(f"{framework}.hook", error)
        return
    record(name, received, answered, duration=duration, outcome=outcome, framework=framework, batch_size=rows,
           requests=served, route=path)


def _picker(function: Callable[..., Any], inputs: str | int | Callable[..., Any] | None,
            ) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
    """``(args, kwargs) -> the model input`` for ``function``; never raises (NOTHING when absent)."""
    if callable(inputs):
        chosen = inputs

        def pick_with(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            try:
                return chosen(*args, **kwargs)
            except Exception as error:
                errors.report("monitor", error)
                return NOTHING
        return pick_with
    try:
        parameters = [p for p in inspect.signature(function).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    except (TypeError, ValueError):
        parameters = []
    names = [p.name for p in parameters]
    if inputs is None:
        index = 1 if names and names[0] in ("self", "cls") else 0
        name = names[index] if index < len(names) else None
    elif isinstance(inputs, int):
        index, name = inputs, names[inputs] if inputs < len(names) else None
    else:
        name = inputs
        index = names.index(inputs) if inputs in names else -1
    positional = index if 0 <= index < len(parameters) and parameters[index].kind != parameters[index].KEYWORD_ONLY \
        else -1
    if not parameters and inputs in (None, 0):  # def f(*args): the first argument
        positional = 0

    def pick(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if 0 <= positional < len(args):
            return args[positional]
        return kwargs.get(name, NOTHING) if name is not None else NOTHING
    return pick
