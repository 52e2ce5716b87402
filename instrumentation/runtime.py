"""This process's runtime and its entry points: started by the first inference, exporting from one thread.

Usage::

    from servewatch.instrumentation import flush, record

    record("fraud", inputs=x, outputs=y, duration=0.003)   # the first call in a process starts the runtime
    flush()                                                 # close profiles and export now (tests, shutdown hooks)

    from servewatch.instrumentation import runtime

    runtime.active()          # the Runtime (process.py) if this process has started one, else None; starts nothing
    runtime.current()         # the same, started now if need be (None when SERVEWATCH_DISABLED=true)
    runtime.forget()          # drop it unflushed (a forked child does): the next inference starts a new one

This module is the one home of that runtime: other modules read it through these functions, never its globals.

Lifecycle:

- **Inert until the first inference.** Importing, decorating, instrumenting and registering queue-time sources
  create nothing; the first :func:`record` in a process reads the settings (reporting bad values once), loads
  the spec, creates the recorder and starts the thread ``servewatch``. Launchers and helper processes that never
  serve export nothing. ``SERVEWATCH_DISABLED=true`` keeps every call a no-op.
- **One background thread** (:mod:`~servewatch.instrumentation.process`) builds the exporters and exports:
  profiles every ``SERVEWATCH_PROFILE_INTERVAL`` seconds, metrics every ``OTEL_METRIC_EXPORT_INTERVAL``.
  :func:`flush` hands it the work too and waits for it, at most its ``timeout``.
- **Fork** (:mod:`~servewatch.instrumentation.lifecycle`): a forked child drops the runtime and starts its own
  on its first inference, with a new ``service.instance.id``, never re-sending its parent's data; a process
  started with ``subprocess``/``exec`` is a new interpreter and gets its own in the same way.
- **Exit** (:mod:`~servewatch.instrumentation.lifecycle`): when the main thread ends, and again at ``atexit``,
  the last (partial) interval is closed and exported with a last metric collection (which only leaves when
  something was recorded since the last flush: metrics leave once). Both together wait at most
  :data:`EXIT_TIMEOUT` seconds (5 s), whatever the receiver does (refuses connections, accepts them and never
  answers, or makes the exporter retry for its ``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s per signal by default);
  what has not left by then is lost. Not configurable: no standard variable means "time allowed at shutdown"
  (``OTEL_EXPORTER_OTLP_TIMEOUT`` is per export request, and its default is the very wait being bounded); a
  shutdown hook that can afford more calls ``flush(timeout)`` itself. The recorder then forgets its models,
  so no sketch is alive at interpreter teardown (datasketches would print "leaked" warnings). A process
  ending with ``os._exit`` (a ``multiprocessing`` child) loses its last interval.
- **Bridges' metrics** (:mod:`~servewatch.instrumentation.bridges`): :func:`register_metrics` adds a framework
  bridge's own instruments and pre-aggregated metrics to this pipeline (same resource, same
  ``service.instance.id``, same thread); like :func:`observe_queue_time` it starts nothing, and only a serving
  process ever collects them.

Cheap to import: the recorder (numpy, datasketches), the spec and the exporters (the OpenTelemetry SDK) load
when the runtime starts, so the framework hooks that import this module cost nothing in processes that never
serve.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from .bridges import observe_queue_time, register_metrics
from .guard import errors
from .lifecycle import EXIT_TIMEOUT, install
from .process import Runtime
from .sentinel import NOTHING
from .settings import Settings

__all__ = ["EXIT_TIMEOUT", "Runtime", "active", "current", "flush", "forget", "observe_queue_time", "profile_rows",
           "record", "record_queue_time", "register_metrics"]

log = logging.getLogger("servewatch.instrumentation")

_lock = threading.Lock()
_runtime: Runtime | None = None  # read and written here only; elsewhere through active(), current(), forget()
_disabled = False


def active() -> Runtime | None:
    """This process's runtime if it has started; never starts one (for code that only looks)."""
    return _runtime


def current(framework: str = "python") -> Runtime | None:
    """This process's runtime, started now if it is not yet (None when disabled)."""
    runtime = _runtime
    if runtime is not None or _disabled:
        return runtime
    return _start(framework)


def forget() -> None:
    """Drop this process's runtime without flushing it (a forked child's copy, which belongs to its parent):
    the next inference starts a new one."""
    global _runtime, _lock
    _runtime, _lock = None, threading.Lock()


def _start(framework: str) -> Runtime | None:
    global _runtime, _disabled
    with _lock:
        if _runtime is not None or _disabled:
            return _runtime
        settings, problems = Settings.from_environ()
        if settings.disabled:
            _disabled = True
            log.info("servewatch: SERVEWATCH_DISABLED=true, the instrumentation does nothing")
            return None
        for problem in problems:
            log.warning("servewatch: %s", problem)
        install(active, forget)
        runtime = Runtime(settings, framework)
        runtime.start()
        _runtime = runtime
        log.info("servewatch: instrumenting process %d as service.instance.id %s (profiles every %gs to %s)",
                 runtime.pid, runtime.instance_id, settings.profile_interval,
                 settings.spool_dir or "OTLP " + settings.logs_protocol)
        return runtime


def record(model: str, inputs: Any = NOTHING, outputs: Any = NOTHING, *, duration: float | None = None,
           batch_size: int | None = None, outcome: str = "ok", framework: str = "python",
           requests: int | None = None, request_ids: Sequence[Any] | None = None, route: str | None = None) -> None:
    """Record one inference call of ``model``. Never raises; see :mod:`servewatch.instrumentation`."""
    try:
        runtime = _runtime or current(framework)
        if runtime is None:
            return
        if requests is None:
            requests = len(request_ids) if request_ids is not None else 1
        elif type(requests) is not int or requests < 0:
            requests = _count(requests)
        if duration is not None and type(duration) is not float:
            duration = _number(duration, float, "duration")
        if batch_size is not None and type(batch_size) is not int:
            batch_size = _number(batch_size, int, "batch_size")
        runtime.recorder.record(model, framework, inputs, outputs, duration, batch_size, outcome, requests, route)
    except Exception as error:
        errors.report("record", error)


def _number(value: Any, kind: type, name: str) -> Any:
    """``value`` as ``kind``, or None (counted as ``record.argument``) when it is not a number."""
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError(f"{name} must be a number, got {type(value).__name__}")
        return kind(value)
    except (TypeError, ValueError, OverflowError) as error:
        errors.report("record.argument", error)
        return None


def profile_rows(model: str, inputs: Any = NOTHING, outputs: Any = NOTHING, *, framework: str = "python") -> None:
    """Add ``inputs`` and ``outputs`` to the profiles of ``model`` without counting a call: no request, duration
    or batch size (for a handler that runs its model chunk by chunk: profile each chunk, and :func:`record` the
    call once, without inputs and outputs). Never raises."""
    try:
        runtime = _runtime or current(framework)
        if runtime is not None:
            runtime.recorder.record(model, framework, inputs, outputs, None, None, "ok", None)
    except Exception as error:
        errors.report("record", error)


def _count(value: Any) -> int:
    """A request count: a whole number of 0 or more, else 1 (counted as ``record.argument``)."""
    number = _number(value, int, "requests")
    if number is not None and number < 0:
        errors.report("record.argument", ValueError(f"requests must be 0 or more, got {value!r}"))
        number = None
    return 1 if number is None else number


def record_queue_time(model: str, seconds: float, *, framework: str = "python") -> None:
    """Add ``seconds`` that requests of ``model`` spent queued (measured in-process). Never raises."""
    try:
        runtime = _runtime or current(framework)
        if runtime is not None:
            runtime.recorder.add_queue_time(model, framework, float(seconds))
    except Exception as error:
        errors.report("queue_time", error)


def flush(timeout: float = EXIT_TIMEOUT) -> bool:
    """Close the current profiles and export them and the metrics now; True when done within ``timeout``.
    Does nothing (True) in a process that has not served."""
    runtime = _runtime
    if runtime is None:
        return True
    try:
        return runtime.flush(timeout)
    except Exception as error:
        errors.report("flush", error)
        return False
