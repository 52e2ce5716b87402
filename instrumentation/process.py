"""The :class:`Runtime` of one serving process: its spec, recorder and exporters, and the background thread
``servewatch``; :mod:`~servewatch.instrumentation.runtime` holds the process's one instance and the entry
points that reach it.

Usage (:func:`servewatch.instrumentation.runtime.current` creates a process's only one; nothing else does)::

    from servewatch.instrumentation.process import Runtime

    runtime = Runtime(settings, "python")   # loads the spec and creates the recorder; starts nothing
    runtime.start()                         # the thread builds the exporters, then closes and collects
    runtime.flush(5.0, final=True)          # last profiles and metrics out, exporters shut down, thread ended

The background thread builds the exporters (so the first request never waits for them), closes profiles every
``SERVEWATCH_PROFILE_INTERVAL`` seconds on wall-clock multiples of it (a 60 s interval closes on the minute,
matching the detector's buckets), numbers them per (model, signal) and hands them to the profile exporter, and
collects metrics every ``OTEL_METRIC_EXPORT_INTERVAL``. :meth:`Runtime.flush` hands it the work too and waits
for it, at most its ``timeout``. A slow or absent receiver delays only this thread.
"""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
from collections import deque
from typing import TYPE_CHECKING, Any

from . import bridges
from .guard import errors, guard
from .settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource

    from servewatch.exporters.metrics import MetricsPipeline
    from servewatch.exporters.profiles import ProfileExporter
    from servewatch.profile import Profile
    from servewatch.spec import Spec

__all__ = ["Runtime"]


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
        self.resource: Resource | None = None
        self.profile_exporter: ProfileExporter | None = None
        self.metrics: MetricsPipeline | None = None
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

    def pause(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds until the background thread is between two cycles and keep it there
        (True), so that ``os.fork`` copies no lock held mid-export; :meth:`resume` lets it go on."""
        return self._cycle.acquire(timeout=timeout)

    def resume(self) -> None:
        """Let the background thread go on after a successful :meth:`pause`."""
        self._cycle.release()

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
        if self.metrics is not None and bridges.pending(self._sources):
            self._sources = bridges.add_metric_sources(self.metrics, self._sources)
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

    def _profile_exporter(self, resource: Resource) -> ProfileExporter:
        def dropped(count: int) -> None:
            errors.report("profiles.dropped", None, count)

        if self.settings.spool_dir:
            from servewatch.exporters.spool import SpoolProfileExporter

            return SpoolProfileExporter(self.settings.spool_dir, resource, on_drop=dropped)
        from servewatch.exporters.profiles import OTLPProfileExporter

        return OTLPProfileExporter(resource, protocol=self.settings.logs_protocol, on_drop=dropped)

    def _metrics_pipeline(self, resource: Resource) -> MetricsPipeline:
        from servewatch.exporters.metrics import MetricsPipeline, otlp_metric_exporter

        from .gpu import register_gpu_metrics
        from .telemetry import Telemetry

        settings = self.settings
        telemetry = Telemetry(self.recorder, queue_sources=bridges.queue_sources(),
                              delta_histograms=settings.delta_histograms, start=self.started)
        protocol = "console" if settings.metrics_exporter == "console" else settings.metrics_protocol
        pipeline = MetricsPipeline(resource, otlp_metric_exporter(protocol), producers=[telemetry.produce],
                                   timeout=settings.metric_timeout,
                                   on_failure=lambda: errors.report("export.metrics"))
        meter = pipeline.meter()
        telemetry.register(meter)
        with guard("gpu"):
            self.gpus = register_gpu_metrics(meter)
        self._sources = bridges.add_metric_sources(pipeline, self._sources)
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
