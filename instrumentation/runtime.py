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
  exporter, and collects metrics every ``OTEL_METRIC_EXPORT_INTERVAL``. A slow or absent receiver delays only
  this thread.
- **Fork.** ``os.register_at_fork`` drops the runtime in the child: a forked worker starts its own on its first
  inference, with a new ``service.instance.id``, and never re-sends its parent's data. A fork waits (at most
  :data:`FORK_TIMEOUT`) until the background thread is between two cycles, so that no module import or lock
  of ours is half-way in the child. A process started with
  ``subprocess``/``exec`` is a new interpreter and gets its own in the same way.
- **Exit.** When the main thread ends, and again at ``atexit``, the last (partial) interval is closed and
  exported together with a last metric collection, waiting at most :data:`EXIT_TIMEOUT` seconds each time.
  The metrics leave once: an exit flush collects only when something was recorded since the last flush
  (threads still serving after the main thread ended). A process that ends with ``os._exit`` (a
  ``multiprocessing`` child) loses its last interval.
- **Bridges' metrics.** :func:`register_metrics` adds a framework bridge's own instruments and pre-aggregated
  metrics to this pipeline (same resource, same ``service.instance.id``, same thread); like
  :func:`observe_queue_time` it starts nothing, and only a serving process ever collects them.

Cheap to import: the recorder (numpy, datasketches), the spec and the exporters (the OpenTelemetry SDK) load
when the runtime starts, so the framework hooks that import this module cost nothing in processes that never
serve.
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .guard import errors, guard
from .sentinel import NOTHING
from .settings import Settings

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter
    from opentelemetry.sdk.metrics.export import Metric

    from servewatch.spec import Spec

__all__ = ["EXIT_TIMEOUT", "Runtime", "current", "flush", "observe_queue_time", "profile_rows", "record",
           "record_queue_time", "register_metrics"]

EXIT_TIMEOUT = 5.0
"""Seconds the process waits at exit for the last profiles and metrics to leave."""
FORK_TIMEOUT = 2.0
"""Seconds ``os.fork`` waits at most for the background thread to finish an export in progress."""

log = logging.getLogger("servewatch.instrumentation")

_lock = threading.Lock()
_runtime: Runtime | None = None
_disabled = False
_hooks_installed = False
_queue_sources: list[tuple[Callable[[], Mapping[str, float]], str]] = []
_metric_sources: list[tuple[Callable[[Meter], object] | None, Callable[[], Iterable[Metric]] | None, str]] = []


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
        self._stop = threading.Event()
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
        while not self._stop.wait(max(0.0, min(next_close, next_collect) - time.time())):
            with self._cycle, guard("runtime"):
                if self._stop.is_set():
                    break
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
        if self.metrics is not None and self._sources < len(_metric_sources):
            self._add_sources(self.metrics)
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
        telemetry = Telemetry(self.recorder, queue_sources=_queue_sources, delta_histograms=settings.delta_histograms,
                              start=self.started)
        protocol = "console" if settings.metrics_exporter == "console" else settings.metrics_protocol
        pipeline = MetricsPipeline(resource, otlp_metric_exporter(protocol), producers=[telemetry.produce],
                                   timeout=settings.metric_timeout,
                                   on_failure=lambda: errors.report("export.metrics"))
        meter = pipeline.meter()
        telemetry.register(meter)
        with guard("gpu"):
            self.gpus = register_gpu_metrics(meter)
        self._add_sources(pipeline)
        return pipeline

    def _add_sources(self, pipeline: Any) -> None:
        """Give ``pipeline`` the metric sources registered since the last call (each one once)."""
        sources, self._sources = _metric_sources[self._sources:], len(_metric_sources)
        for setup, produce, scope in sources:
            with guard("metrics.source"):
                if setup is not None:
                    setup(pipeline.meter(scope))
                if produce is not None:
                    pipeline.add_producer(_guarded(produce), scope=scope)

    def _close_profiles(self, now: float) -> None:
        profiles = self.recorder.close(now)
        for profile in profiles:
            key = (profile.model, profile.signal)
            self._sequences[key] = sequence = self._sequences.get(key, 0) + 1
            profile.producer, profile.sequence = self.instance_id, sequence
        exporter = self.profile_exporter
        if exporter is None:
            if profiles:
                errors.report("profiles.dropped", None, len(profiles))
            return
        with guard("export.profiles"):
            exporter.export(profiles)
            if exporter.pending:
                errors.report("export.profiles")

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
        ``final`` also stops the thread and the exporters; ``exiting`` (the exit hooks) skips the metrics when
        nothing was recorded since the previous flush. True when it finished in time."""
        if final:
            self._stop.set()

        def work() -> None:
            with self._cycle, guard("flush"):
                self._setup()
                self._close_profiles(time.time())
                self._collect(exiting=exiting or final, flushing=True)
                if final:
                    for part in (self.profile_exporter, self.metrics):
                        if part is not None:
                            with guard("export.shutdown"):
                                part.shutdown()

        worker = threading.Thread(target=work, name="servewatch-flush", daemon=True)
        try:
            worker.start()
        except RuntimeError:  # no new threads at this point of interpreter shutdown: do it here
            work()
            return True
        worker.join(timeout)
        return not worker.is_alive()


def _next_multiple(now: float, interval: float) -> float:
    return (math.floor(now / interval) + 1) * interval


def _guarded(produce: Callable[[], Iterable[Metric]]) -> Callable[[], list[Metric]]:
    """``produce`` made safe for the pipeline: a failure is counted (``metrics.source``) and produces nothing."""
    def producer() -> list[Metric]:
        try:
            return list(produce())
        except Exception as error:
            errors.report("metrics.source", error)
            return []
    return producer


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
        _install_process_hooks()
        runtime = Runtime(settings, framework)
        runtime.start()
        _runtime = runtime
        log.info("servewatch: instrumenting process %d as service.instance.id %s (profiles every %gs to %s)",
                 runtime.pid, runtime.instance_id, settings.profile_interval,
                 settings.spool_dir or "OTLP " + settings.logs_protocol)
        return runtime


def _install_process_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    atexit.register(_at_exit)
    # Flush once more as soon as the main thread ends, before concurrent.futures and the threading module shut
    # down: the OpenTelemetry SDK cannot even be imported after that (its resource detection needs a thread
    # pool), which would lose everything of a process that exits within a moment of its first inference.
    import concurrent.futures.thread  # noqa: F401 - registers its own hook first, so ours runs before it

    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_before_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                            after_in_child=_after_fork_in_child)


_forking: Runtime | None = None


def _before_fork() -> None:
    """Let the background thread finish what it is doing (building exporters imports modules; a module being
    imported at fork time stays locked forever in the child), waiting at most FORK_TIMEOUT."""
    global _forking
    runtime = _runtime
    if runtime is not None and runtime.pid == os.getpid() and runtime._cycle.acquire(timeout=FORK_TIMEOUT):
        _forking = runtime


def _after_fork_in_parent() -> None:
    global _forking
    if _forking is not None:
        _forking._cycle.release()
        _forking = None


def _after_fork_in_child() -> None:
    global _runtime, _lock, _forking
    _runtime, _forking = None, None
    _lock = threading.Lock()
    errors.reset()


def _before_exit() -> None:
    runtime = _runtime
    if runtime is not None and runtime.pid == os.getpid():
        runtime.flush(EXIT_TIMEOUT, exiting=True)


def _at_exit() -> None:
    runtime = _runtime
    if runtime is not None and runtime.pid == os.getpid():
        runtime.flush(EXIT_TIMEOUT, final=True)


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


def observe_queue_time(source: Callable[[], Mapping[str, float]], *, framework: str) -> None:
    """Poll ``source`` at each metric collection for cumulative queue seconds per model (a framework's own
    counter, e.g. scraped from its metrics port); increases are added to ``servewatch.inference.queue.time``,
    the first reading is the baseline and a decrease (the framework restarted) counts from zero. Registering
    starts nothing: only a process that serves polls."""
    _queue_sources.append((source, framework))


def register_metrics(setup: Callable[[Meter], object] | None = None, *,
                     produce: Callable[[], Iterable[Metric]] | None = None, scope: str) -> None:
    """Add a bridge's own metrics to this process's metrics pipeline, exported with the instrumentation's own
    (same resource and ``service.instance.id``, same collection, no thread of the bridge's own).

    ``setup(meter)`` is called once with a meter of instrumentation scope ``scope`` (name it after the bridge,
    e.g. ``"servewatch.triton"``; never plain ``"servewatch"``, whose instruments are the runtime's): create
    observable instruments there; their callbacks run at each collection. ``produce()`` is called at each
    collection and returns finished OpenTelemetry SDK ``Metric`` objects (pre-aggregated data, e.g. histograms
    read from the framework), exported under the same scope. A failure of either is counted
    (``metrics.source``) and the rest of the collection proceeds.

    Registering starts nothing: only a serving process (one that recorded an inference, or called
    :func:`current`) builds the pipeline, and takes the sources registered before or after it did at its next
    cycle. Nothing is registered with ``OTEL_METRICS_EXPORTER=none`` (there is no pipeline)."""
    _metric_sources.append((setup, produce, scope))


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
