"""Triton's own metrics (its Prometheus endpoint, port 8002) under servewatch's names.

Usage::

    from servewatch.instrumentation.triton.metrics import TritonMetrics, parse_metrics

    snapshot = parse_metrics(text)                   # Snapshot(models={name: ModelFigures}, gpus={uuid: ...})
    bridge = TritonMetrics("http://127.0.0.1:8002/metrics", models={"resnet"}, requests=True)
    bridge.queue_seconds()                           # {"resnet": 1.25}: for observe_queue_time
    bridge.register(meter); pipeline producers=[bridge.produce]   # the rest (see the table)

Mapping (cumulative Triton counters are summed over a model's versions and reported as they stand, so a
Triton restart is a counter reset downstream; attributes ``ml.model.name`` = Triton's ``model`` label and
``ml.framework``):

========================================================  =====================================================
Triton                                                    servewatch
========================================================  =====================================================
``nv_inference_queue_duration_us``                        ``servewatch.inference.queue.time`` (s), through
                                                          :func:`servewatch.instrumentation.observe_queue_time`
``nv_inference_compute_input_duration_us``,               ``servewatch.inference.compute.time`` (s), attribute
``..._compute_infer_...``, ``..._compute_output_...``     ``phase`` = ``input`` | ``infer`` | ``output``
``nv_inference_request_success`` / ``_failure`` (all      ``servewatch.inference.requests``, ``outcome`` = ``ok``
reasons)                                                  / ``error``  (only with ``requests=True``)
``nv_inference_request_duration_us`` with ``_success``    ``servewatch.inference.duration`` (s), ``outcome=ok``:
                                                          ``_sum`` and ``_count`` only, no buckets (Triton
                                                          keeps no distribution; ``requests=True``)
``nv_inference_count`` / ``nv_inference_exec_count``      ``servewatch.inference.batch.size``: ``_sum`` = rows,
                                                          ``_count`` = executions (mean batch; ``requests=True``)
``nv_gpu_utilization``                                    ``hw.gpu.utilization`` (1), ``hw.id`` = ``gpu_uuid``
``nv_gpu_memory_used_bytes`` / ``_total_bytes``           ``hw.gpu.memory.usage`` / ``hw.gpu.memory.limit`` (By)
========================================================  =====================================================

Triton's success and failure counters follow its own notion: a request answered with an error *response*
(a python-backend ``InferenceResponse(error=...)``) counts as a success; failures are requests whose execution
failed, or that were rejected or cancelled. The python-backend opt-in and the client count error responses as
``outcome=error``, so the two can differ.

``requests=True`` is for models that nothing in-process instruments (TensorRT, ONNX, ... behind a standalone
``tritonserver``); where a hook already records them (PyTriton, the python-backend opt-in) leave it off, or
every request would count twice. Triton's CPU, pinned-memory, cache and energy families have no servewatch
name and are left to a direct scrape. One read of the endpoint serves a whole collection (readings are
reused for :data:`MAX_AGE` seconds); a failed read is counted (``triton.metrics``) and reports nothing.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import urllib.request
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics.export import AggregationTemporality, Histogram, HistogramDataPoint, Metric
from servewatch import metrics as m
from servewatch.instrumentation.exposition import samples
from servewatch.instrumentation.guard import guard

__all__ = ["GpuFigures", "MAX_AGE", "ModelFigures", "Snapshot", "TritonMetrics", "parse_metrics"]

MAX_AGE = 1.0
"""Seconds one reading of the endpoint is reused (one collection asks several times)."""
TIMEOUT = 2.0
"""Seconds one read of the endpoint may take."""
MAX_BYTES = 16 << 20
"""The most of a response that is read (Triton's text for hundreds of models is well under a megabyte)."""

_MODEL_COUNTERS = {
    "nv_inference_request_success": "success",
    "nv_inference_request_failure": "failure",
    "nv_inference_count": "inferences",
    "nv_inference_exec_count": "executions",
    "nv_inference_request_duration_us": "request_us",
    "nv_inference_queue_duration_us": "queue_us",
    "nv_inference_compute_input_duration_us": "input_us",
    "nv_inference_compute_infer_duration_us": "infer_us",
    "nv_inference_compute_output_duration_us": "output_us",
}
_GPU_GAUGES = {
    "nv_gpu_utilization": "utilization",
    "nv_gpu_memory_used_bytes": "memory_used",
    "nv_gpu_memory_total_bytes": "memory_total",
}
log = logging.getLogger("servewatch.instrumentation")
_PHASES = (("input", "input_us"), ("infer", "infer_us"), ("output", "output_us"))
_NAMES = frozenset(_MODEL_COUNTERS) | frozenset(_GPU_GAUGES)


@dataclass
class ModelFigures:
    """One model's cumulative counters (summed over its versions)."""

    success: float = 0.0
    failure: float = 0.0
    inferences: float = 0.0
    executions: float = 0.0
    request_us: float = 0.0
    queue_us: float = 0.0
    input_us: float = 0.0
    infer_us: float = 0.0
    output_us: float = 0.0


@dataclass
class GpuFigures:
    """One GPU's gauges (None where Triton did not report it)."""

    utilization: float | None = None
    memory_used: float | None = None
    memory_total: float | None = None


@dataclass
class Snapshot:
    """One reading of the endpoint."""

    models: dict[str, ModelFigures] = field(default_factory=dict)
    gpus: dict[str, GpuFigures] = field(default_factory=dict)


def parse_metrics(text: str) -> Snapshot:
    """The figures servewatch maps, from Triton's Prometheus text; lines it cannot read are skipped, and a
    value that is not a finite number is left out."""
    snapshot = Snapshot()
    for name, labels, value in samples(text, _NAMES):
        if not math.isfinite(value):
            continue
        counter = _MODEL_COUNTERS.get(name)
        if counter is not None:
            model = labels.get("model")
            if model:
                figures = snapshot.models.setdefault(model, ModelFigures())
                setattr(figures, counter, getattr(figures, counter) + value)
        else:
            gpu = labels.get("gpu_uuid")
            if gpu:
                setattr(snapshot.gpus.setdefault(gpu, GpuFigures()), _GPU_GAUGES[name], value)
    return snapshot


class TritonMetrics:
    """Reads one Triton metrics endpoint for the watched ``models`` (a collection, a callable returning one,
    or None for every model) and reports it under servewatch's names (module docstring). ``requests`` adds
    the request series, ``gpus=False`` leaves the GPU gauges to NVML in the process
    (:mod:`servewatch.instrumentation.gpu`), ``delta`` makes the histograms delta."""

    def __init__(self, url: str, *, models: Collection[str] | Callable[[], Collection[str]] | None = None,
                 framework: str = "triton", requests: bool = False, gpus: bool = True, delta: bool = False,
                 read: Callable[[str], str] | None = None) -> None:
        self.url = url
        self.framework = framework
        self.requests = requests
        self.gpus = gpus
        self.delta = delta
        self._models = models
        self._read = read or _read_url
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._read_at = -math.inf
        self._start_ns = time.time_ns()
        self._previous: dict[tuple[str, str], tuple[int, int, float]] = {}
        self._queue_read = False
        self._closed = False

    # -- reading ---------------------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """The figures of the watched models, read now or at most :data:`MAX_AGE` seconds ago; an empty
        snapshot when the endpoint cannot be read (counted as ``triton.metrics``) or after :meth:`close`."""
        with self._lock:
            if self._closed:
                return Snapshot()
            now = time.monotonic()
            if self._snapshot is None or now - self._read_at > MAX_AGE:
                snapshot = None
                with guard("triton.metrics"):
                    snapshot = parse_metrics(self._read(self.url))
                self._snapshot, self._read_at = snapshot or Snapshot(), now
            snapshot = self._snapshot
        watched = self._models() if callable(self._models) else self._models
        if watched is None:
            return snapshot
        return Snapshot({name: figures for name, figures in snapshot.models.items() if name in watched}, snapshot.gpus)

    def close(self) -> None:
        """Stop reading: from now on every figure is empty (a queue-time source registered with the
        instrumentation stays registered, and reports nothing)."""
        with self._lock:
            self._closed = True

    def queue_seconds(self) -> dict[str, float]:
        """``{model: cumulative queue seconds}``: the source for ``observe_queue_time`` (whose first reading is
        the baseline: queue time from before it is not reported)."""
        seconds = {name: figures.queue_us / 1e6 for name, figures in self.snapshot().models.items()}
        if not self._queue_read:
            self._queue_read = True
            log.info("servewatch: queue time of %s counted from now on (%d models watched)", self.url, len(seconds))
        return seconds

    # -- as OpenTelemetry instruments ------------------------------------------------------------------------

    def register(self, meter: Meter) -> None:
        """Create the observable instruments on ``meter`` (histograms come from :meth:`produce`)."""
        meter.create_observable_counter(
            m.COMPUTE_TIME.name, [self._compute], unit=m.COMPUTE_TIME.unit,
            description="Time the server spent computing, by phase: input, infer, output (cumulative)")
        if self.requests:
            meter.create_observable_counter(
                m.INFERENCE_REQUESTS.name, [self._requests], unit=m.INFERENCE_REQUESTS.unit,
                description="Inference requests served, by outcome")
        if not self.gpus:
            return
        for instrument, which, description in (
                (m.GPU_UTILIZATION, "utilization", "Fraction of time the GPU was busy"),
                (m.GPU_MEMORY_USAGE, "memory_used", "GPU memory in use"),
                (m.GPU_MEMORY_LIMIT, "memory_total", "GPU memory in total")):
            meter.create_observable_gauge(instrument.name, [self._gpu(which)], unit=instrument.unit,
                                          description=description)

    def _attributes(self, model: str) -> dict[str, str]:
        return {m.MODEL_ATTRIBUTE: model, m.FRAMEWORK_ATTRIBUTE: self.framework}

    def _compute(self, options: CallbackOptions) -> Iterable[Observation]:
        for model, figures in self.snapshot().models.items():
            for phase, which in _PHASES:
                yield Observation(getattr(figures, which) / 1e6, {**self._attributes(model), m.PHASE: phase})

    def _requests(self, options: CallbackOptions) -> Iterable[Observation]:
        for model, figures in self.snapshot().models.items():
            yield Observation(figures.success, {**self._attributes(model), m.OUTCOME: "ok"})
            yield Observation(figures.failure, {**self._attributes(model), m.OUTCOME: "error"})

    def _gpu(self, which: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            for gpu, figures in self.snapshot().gpus.items():
                value = getattr(figures, which)
                if value is not None:
                    yield Observation(value, {m.HW_ID_ATTRIBUTE: gpu})
        return callback

    def produce(self) -> list[Metric]:
        """``servewatch.inference.duration`` and ``.batch.size`` as bucket-less histograms (``requests=True``)."""
        if not self.requests:
            return []
        now = time.time_ns()
        durations: list[HistogramDataPoint] = []
        batches: list[HistogramDataPoint] = []
        for model, figures in self.snapshot().models.items():
            attributes = {**self._attributes(model), m.OUTCOME: "ok"}
            for points, which, count, total in ((durations, "duration", figures.success, figures.request_us / 1e6),
                                                (batches, "batch_size", figures.executions, figures.inferences)):
                point = self._point(model, which, attributes, int(count), total, now)
                if point is not None:
                    points.append(point)
        temporality = AggregationTemporality.DELTA if self.delta else AggregationTemporality.CUMULATIVE
        return [Metric(name=instrument.name, description=description, unit=instrument.unit,
                       data=Histogram(data_points=points, aggregation_temporality=temporality))
                for instrument, description, points in (
                    (m.INFERENCE_DURATION, "Duration of inference calls, per request", durations),
                    (m.INFERENCE_BATCH_SIZE, "Rows per inference call", batches))
                if points]

    def _point(self, model: str, which: str, attributes: dict[str, Any], count: int, total: float, now: int,
               ) -> HistogramDataPoint | None:
        start = self._start_ns
        if self.delta:
            key = (model, which)
            since, last_count, last_total = self._previous.get(key, (self._start_ns, 0, 0.0))
            if count < last_count:  # the server restarted: its totals start over
                last_count, last_total = 0, 0.0
            self._previous[key] = (now, count, total)
            start, count, total = since, count - last_count, total - last_total
        if count <= 0:
            return None
        return HistogramDataPoint(attributes=attributes, start_time_unix_nano=start, time_unix_nano=now, count=count,
                                  sum=total, bucket_counts=[count], explicit_bounds=[],
                                  min=None, max=None)  # type: ignore[arg-type]  # unknown: protobuf leaves None unset


def _read_url(url: str) -> str:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:  # noqa: S310 - the operator's URL
        return response.read(MAX_BYTES).decode("utf-8", "replace")
