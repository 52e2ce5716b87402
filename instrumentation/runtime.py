"""The per-process runtime: started by the first inference, exporting from one background thread.

Usage::

    from servewatch.instrumentation import flush, record

    record("fraud", inputs=x, outputs=y, duration=0.003)   # the first call in a process starts the runtime
    flush()                                                 # close profiles and export now (tests, shutdown hooks)

Lifecycle:

- **Inert until the first inference.** Importing, decorating, instrumenting and registering queue-time sources
  create nothing; the first :func:`record` in a process reads the settings (reporting bad values once), loads
  the spec, creates the recorder and starts the thread ``servewatch``. Launchers and helper processes that never
  serve export nothing. ``SERVEWATCH_DISABLED=true`` keeps every call a no-op.
- **One background thread** builds the exporters (so the first request never waits for them), closes profiles
  every ``SERVEWATCH_PROFILE_INTERVAL`` seconds on wall-clock multiples of it (a 60 s interval closes on the
  minute, matching the detector's buckets), numbers them per (model, signal) and hands them to the profile
  exporter, and collects metrics every ``OTEL_METRIC_EXPORT_INTERVAL``. :func:`flush` hands it the work
  too and waits for it, at most its ``timeout``. A slow or absent receiver delays only this thread.
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
- **Bridges' metrics** (:mod:`~servewatch.instrumentation.sources`): :func:`register_metrics` adds a framework
  bridge's own instruments and pre-aggregated metrics to this pipeline (same resource, same
  ``service.instance.id``, same thread); like :func:`observe_queue_time` it starts nothing, and only a serving
  process ever collects them.

Cheap to import: the recorder (numpy, datasketches), the spec and the exporters (the OpenTelemetry SDK) load
when the runtime starts, so the framework hooks that import this module cost nothing in processes that never
serve.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import sources
from .guard import errors, guard
from .sentinel import NOTHING
from .settings import Settings
from .sources import observe_queue_time, register_metrics

if TYPE_CHECKING:
    from servewatch.profile import Profile
    from servewatch.spec import Spec

__all__ = ["EXIT_TIMEOUT", "Runtime", "current", "flush", "observe_queue_time", "profile_rows", "record",
           "record_queue_time", "register_metrics"]

EXIT_TIMEOUT = 5.0
"""Seconds the process waits at exit, in all, for the last profiles and metrics to leave (both exit hooks
together); also :func:`flush`'s default timeout."""
FORK_TIMEOUT = 2.0
"""Seconds ``os.fork`` waits at most for the background thread to finish an export in progress."""

log = logging.getLogger("servewatch.instrumentation")

_lock = threading.Lock()
_runtime: Runtime | None = None
_disabled = False


class Runtime:
    """What one serving process holds: settings, spec, recorder, exporters and the background thread."""

    def __init__(self, settings: Settings, framework: str) -> None:
        self.pid = os.getpid()
        self.settings = settings
        self.framework = framework
        self.instance_id = str(uuid.uuid4())
        self.started = time.time()
        self.spec = _load_spec(settings.spec_path)
        from .recorder import Recorder

        self.recorder = Recorder(self.spec, max_columns=settings.max_columns)
        self.resource: Any = None
        self.profile_exporter: Any = None
        self.metrics: Any = None
        self.gpus = 0
        self._sequences: dict[tuple[str, str], int] = {}
        self._sources = 0  # how many of _metric_sources the pipeline has taken
        self._flushed: tuple[Any, ...] | None = None  # the recorder's totals at the last flush's collection
        self._cycle = threading.Lock()
        self._wake = threading.Event()
        self._flushes: deque[_Flush] = deque()  # asked of the thread, oldest first
        self._flushes_lock = threading.Lock()
        self._ended = False  # the final flush was taken: the thread takes no more
        self._thread = threading.Thread(target=self._run, name="servewatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # -- the background thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        with self._cycle:
            self._setup()
        interval, metric_interval = self.settings.profile_interval, self.settings.metric_interval
        next_close = _next_multiple(time.time(), interval)
        next_collect = time.time() + metric_interval
        while True:
            self._wake.wait(max(0.0, min(next_close, next_collect) - time.time()))
            self._wake.clear()
            if self._run_flushes():
                return
            if time.time() < min(next_close, next_collect):  # woken for a flush
                continue
            with self._cycle, guard("runtime"):
                now = time.time()
                self._setup()
                if now >= next_close:
                    next_close = _next_multiple(now, interval)
                    self._close_profiles(now)
                if now >= next_collect:
                    next_collect = max(next_collect + metric_interval, now + metric_interval / 2)
                    self._collect()

    def _setup(self) -> None:
        """Build whichever exporter is still missing (a failure is counted and retried next cycle) and hand the
        metrics pipeline the sources registered since."""
        if self.metrics is not None and sources.pending(self._sources):
            self._sources = sources.add_metric_sources(self.metrics, self._sources)
        if self.profile_exporter is not None and (self.metrics is not None or self.settings.metrics_exporter == "none"):
            return
        with guard("export.setup"):
            from servewatch.exporters.resource import process_resource

            self.resource = self.resource or process_resource(framework=self.framework, instance_id=self.instance_id)
        resource = self.resource
        if resource is None:
            return
        if self.profile_exporter is None:
            with guard("export.setup"):
                self.profile_exporter = self._profile_exporter(resource)
        if self.metrics is None and self.settings.metrics_exporter != "none":
            with guard("export.setup"):
                self.metrics = self._metrics_pipeline(resource)

    def _profile_exporter(self, resource: Any) -> Any:
        def dropped(count: int) -> None:
            errors.report("profiles.dropped", None, count)

        if self.settings.spool_dir:
            from servewatch.exporters.spool import SpoolProfileExporter

            return SpoolProfileExporter(self.settings.spool_dir, resource, on_drop=dropped)
        from servewatch.exporters.profiles import OTLPProfileExporter

        return OTLPProfileExporter(resource, protocol=self.settings.logs_protocol, on_drop=dropped)

    def _metrics_pipeline(self, resource: Any) -> Any:
        from servewatch.exporters.metrics import MetricsPipeline, otlp_metric_exporter

        from .gpu import register_gpu_metrics
        from .telemetry import Telemetry

        settings = self.settings
        telemetry = Telemetry(self.recorder, queue_sources=sources.queue_sources(),
                              delta_histograms=settings.delta_histograms, start=self.started)
        protocol = "console" if settings.metrics_exporter == "console" else settings.metrics_protocol
        pipeline = MetricsPipeline(resource, otlp_metric_exporter(protocol), producers=[telemetry.produce],
                                   timeout=settings.metric_timeout,
                                   on_failure=lambda: errors.report("export.metrics"))
        meter = pipeline.meter()
        telemetry.register(meter)
        with guard("gpu"):
            self.gpus = register_gpu_metrics(meter)
        self._sources = sources.add_metric_sources(pipeline, self._sources)
        return pipeline

    def _close_profiles(self, now: float) -> None:
        exporter = self.profile_exporter
        if exporter is None:
            dropped = len(self.recorder.close(now))
            if dropped:
                errors.report("profiles.dropped", None, dropped)
            return
        with guard("export.profiles"):
            exporter.export(self._numbered(self.recorder.close(now)))  # the exporter holds the only reference:
            if exporter.pending:                                       # sketches are freed before delivery
                errors.report("export.profiles")

    def _numbered(self, profiles: list[Profile]) -> list[Profile]:
        """``profiles`` with this process as producer and their sequence numbers, per (model, signal)."""
        for profile in profiles:
            key = (profile.model, profile.signal)
            self._sequences[key] = sequence = self._sequences.get(key, 0) + 1
            profile.producer, profile.sequence = self.instance_id, sequence
        return profiles

    def _collect(self, *, exiting: bool = False, flushing: bool = False) -> None:
        """Export the metrics; at exit only if anything changed since the last flush (they leave once)."""
        if self.metrics is None:
            return
        totals = self.recorder.totals() if exiting or flushing else None
        if exiting and totals == self._flushed:
            return
        self._flushed = totals
        with guard("export.metrics"):
            self.metrics.collect()

    # -- on demand -------------------------------------------------------------------------------------------

    def flush(self, timeout: float, *, final: bool = False, exiting: bool = False) -> bool:
        """Close the current profiles and export them and the metrics now, waiting at most ``timeout`` seconds;
        ``final`` also stops the thread and the exporters and forgets what the recorder holds; ``exiting`` (the
        exit hooks) skips the metrics when nothing was recorded since the previous flush. True when it finished
        in time (also after the final flush, when nothing is left to do).

        The background thread does the work (a process that is exiting may start no thread: Python 3.12 refuses
        it in every exit hook), so a flush waits behind an export in progress; what is not done in ``timeout``
        goes on there while the caller proceeds. Without the thread (it ended, or this is the thread itself) the
        work runs in a thread of its own, or, where none can start, in the caller."""
        request = _Flush(final, exiting)
        with self._flushes_lock:
            if self._ended:
                return True
            self._ended = final
            queued = self._thread.is_alive() and threading.current_thread() is not self._thread
            if queued:
                self._flushes.append(request)
        if queued:
            self._wake.set()
            done = request.done.wait(timeout)
        else:
            done = self._flush_elsewhere(request, timeout)
        if final:
            self.recorder.discard()  # what could still be recorded can no longer leave; no sketch outlives us
        return done

    def _run_flushes(self) -> bool:
        """Run the flushes asked of the thread, oldest first; True once the final one ran (the thread ends)."""
        while True:
            with self._flushes_lock:
                if not self._flushes:
                    return False
                request = self._flushes.popleft()
            self._flush_now(request)
            if request.final:
                return True

    def _flush_elsewhere(self, request: _Flush, timeout: float) -> bool:
        worker = threading.Thread(target=self._flush_now, args=(request,), name="servewatch-flush", daemon=True)
        try:
            worker.start()
        except RuntimeError:  # no new threads at this point of interpreter shutdown: do it here
            self._flush_now(request)
        return request.done.wait(timeout)

    def _flush_now(self, request: _Flush) -> None:
        try:
            with self._cycle, guard("flush"):
                self._setup()
                self._close_profiles(time.time())
                self._collect(exiting=request.exiting or request.final, flushing=True)
                if request.final:
                    self.recorder.discard()
                    for part in (self.profile_exporter, self.metrics):
                        if part is not None:
                            with guard("export.shutdown"):
                                part.shutdown()
        finally:
            request.done.set()


class _Flush:
    """A flush asked of the background thread; ``done`` is set when it ran."""

    __slots__ = ("final", "exiting", "done")

    def __init__(self, final: bool, exiting: bool) -> None:
        self.final = final
        self.exiting = exiting
        self.done = threading.Event()


def _next_multiple(now: float, interval: float) -> float:
    return (math.floor(now / interval) + 1) * interval


def _load_spec(path: str | None) -> Spec:
    from servewatch.spec import Spec, load_spec

    if not path:
        return Spec()
    try:
        return load_spec(path)
    except Exception as error:
        errors.report("spec", error)
        return Spec()


# -- the process-level entry points ----------------------------------------------------------------------------

def current(framework: str = "python") -> Runtime | None:
    """This process's runtime, started now if it is not yet (None when disabled)."""
    runtime = _runtime
    if runtime is not None or _disabled:
        return runtime
    return _start(framework)


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
        from . import lifecycle

        lifecycle.install()
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
