"""The recorder's state as OpenTelemetry metrics, read at collection time.

Usage::

    from servewatch.instrumentation.telemetry import Telemetry

    telemetry = Telemetry(recorder, queue_sources=sources, start=time.time())
    pipeline = MetricsPipeline(resource, exporter, producers=[telemetry.produce])
    telemetry.register(pipeline.meter())

Instruments (DESIGN.md's contract; every one carries ``ml.model.name`` and ``ml.framework``):

==========================================  ==============  ====================================================
name                                        kind, unit      further attributes
==========================================  ==============  ====================================================
``servewatch.inference.duration``           histogram, s    ``outcome`` (ok, error); ``http.route`` when the call
                                                            named one (at most 32 per model, the rest ``other``)
``servewatch.inference.batch.size``         histogram       ``outcome``
``servewatch.inference.requests``           counter         ``outcome``; ``http.route`` as for the duration
``servewatch.inference.queue.time``         counter, s
``servewatch.input.values``                 counter         ``ml.feature.name`` (values offered, missing included)
``servewatch.input.missing`` / ``.invalid``  counter         ``ml.feature.name`` (None/NaN; wrong type or ±inf)
``servewatch.prediction.values``            counter         ``ml.feature.name`` (the prediction column)
``servewatch.prediction.class``             counter         ``ml.prediction.class`` (first categorical prediction
                                                            column; 20 classes, the rest ``other``)
``servewatch.instrumentation.errors``       counter         ``error.type`` (no model attributes)
==========================================  ==============  ====================================================

Counters are observable (their callbacks read cumulative totals under each model's lock); the two histograms
are aggregated on the hot path (:mod:`servewatch.instrumentation.stats`) and handed to the exporter by
:meth:`Telemetry.produce`, cumulative, or delta when ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` asks
for it. The request counter and the histograms of one collection come from one reading of each model's
statistics, routes included (the counter's callback takes it, ``produce`` uses it), so an export's
``duration`` count always equals its request count, per outcome and route, even while requests keep arriving.
``http.route`` (Prometheus ``http_route``) comes from the ``route`` a call was recorded with (Ray Serve's HTTP
ingress passes it); calls without one report series without the attribute, and profiles never carry it.
Queue time comes from :func:`~servewatch.instrumentation.record_queue_time` (pushed) and from sources
registered with :func:`~servewatch.instrumentation.observe_queue_time` (polled here, at each collection).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics.export import AggregationTemporality, Histogram, HistogramDataPoint, Metric

from .. import metrics as m
from .guard import errors, guard
from .recorder import ModelState, Recorder
from .stats import Histogram as Buckets

__all__ = ["QueueSource", "Telemetry"]

_Reading = list[tuple[ModelState, list[tuple[str, str | None, int, Buckets, Buckets | None]]]]
"""Per model: ``(outcome, route, requests, duration, batch size)``; the batch size only where route is None."""
QueueSource = tuple[Callable[[], Mapping[str, float]], str]
"""A callable returning cumulative queue seconds per model, and the framework it speaks for (see
:func:`servewatch.instrumentation.observe_queue_time`)."""


class Telemetry:
    """Reads a :class:`~servewatch.instrumentation.recorder.Recorder` for one metrics pipeline."""

    def __init__(self, recorder: Recorder, *, queue_sources: list[QueueSource] | None = None,
                 delta_histograms: bool = False, start: float | None = None) -> None:
        self.recorder = recorder
        self.queue_sources = queue_sources if queue_sources is not None else []
        self.delta = delta_histograms
        self._start_ns = int((start if start is not None else time.time()) * 1e9)
        self._previous: dict[tuple[Any, ...], tuple[int, list[int], int, float]] = {}
        self._reading: _Reading | None = None
        self._queue_seen: dict[tuple[int, str], float] = {}

    def register(self, meter: Meter) -> None:
        """Create the observable instruments on ``meter``."""
        counter = meter.create_observable_counter
        counter(m.INFERENCE_REQUESTS.name, [self._requests], unit=m.INFERENCE_REQUESTS.unit,
                description="Inference requests served, by outcome")
        counter(m.QUEUE_TIME.name, [self._queue_time], unit=m.QUEUE_TIME.unit,
                description="Time requests spent queued before inference (cumulative)")
        for signal, noun, values in (("input", "input feature", m.INPUT_VALUES),
                                     ("prediction", "prediction", m.PREDICTION_VALUES)):
            counter(values.name, [self._column_counts(signal, 0)], unit=values.unit,
                    description=f"Values seen per {noun}")
        counter(m.INPUT_MISSING.name, [self._column_counts("input", 1)], unit=m.INPUT_MISSING.unit,
                description="Missing values (None, NaN) per input feature")
        counter(m.INPUT_INVALID.name, [self._column_counts("input", 2)], unit=m.INPUT_INVALID.unit,
                description="Values of the wrong type or infinite per input feature")
        counter(m.PREDICTION_CLASS.name, [self._classes], unit=m.PREDICTION_CLASS.unit,
                description="Predictions per class (the first 20 classes seen; the rest as other)")
        counter(m.INSTRUMENTATION_ERRORS.name, [self._errors], unit=m.INSTRUMENTATION_ERRORS.unit,
                description="Failures inside the servewatch instrumentation (never raised into requests)")

    # -- observable callbacks ------------------------------------------------------------------------------

    def _read_stats(self) -> _Reading:
        """Every model's request statistics, routes included, copied under its lock (delta: the extremes are
        taken)."""
        delta = self.delta
        reading = []
        for state in self.recorder.states():
            with state.lock:
                entries: list[tuple[str, str | None, int, Buckets, Buckets | None]] = []
                for outcome, stats in state.stats.outcomes.items():
                    entries.append((outcome, None, stats.requests, stats.duration.copy(take_extremes=delta),
                                    stats.batch_size.copy(take_extremes=delta)))
                    entries.extend((outcome, route, counted.requests, counted.duration.copy(take_extremes=delta),
                                    None) for route, counted in stats.routes.items())
            reading.append((state, entries))
        return reading

    def _requests(self, options: CallbackOptions) -> Iterable[Observation]:
        reading = self._reading = self._read_stats()  # produce() reports the histograms of this same reading
        for state, entries in reading:
            for outcome, route, requests, _, _ in entries:
                if requests:
                    yield Observation(requests, _attributes(state, outcome, route))

    def _queue_time(self, options: CallbackOptions) -> Iterable[Observation]:
        self._poll_queue_sources()
        for state in self.recorder.states():
            with state.lock:
                seconds = state.queue_seconds
            if seconds:
                yield Observation(seconds, state.attributes)

    def _poll_queue_sources(self) -> None:
        for index, (source, framework) in enumerate(list(self.queue_sources)):
            with guard("queue_time"):
                for model, total in dict(source()).items():
                    total = float(total)
                    key = (index, str(model))
                    last = self._queue_seen.get(key)
                    self._queue_seen[key] = total
                    if last is not None:  # the first reading is the baseline: earlier queueing is not ours
                        self.recorder.add_queue_time(str(model), framework, total - last if total >= last else total)

    def _column_counts(self, signal: str, which: int) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            for state in self.recorder.states():
                counts = _locked(state, (state.inputs if signal == "input" else state.predictions).counts)
                for name, values in (counts or {}).items():
                    yield Observation(values[which], {**state.attributes, m.FEATURE_ATTRIBUTE: name})
        return callback

    def _classes(self, options: CallbackOptions) -> Iterable[Observation]:
        for state in self.recorder.states():
            classes = _locked(state, state.predictions.classes)
            for name, count in (classes or {}).items():
                yield Observation(count, {**state.attributes, m.PREDICTION_CLASS_ATTRIBUTE: name})

    def _errors(self, options: CallbackOptions) -> Iterable[Observation]:
        for kind, count in errors.counts().items():
            yield Observation(count, {m.ERROR_TYPE_ATTRIBUTE: kind})

    # -- produced histograms -------------------------------------------------------------------------------

    def produce(self) -> list[Metric]:
        """``servewatch.inference.duration`` and ``servewatch.inference.batch.size`` as SDK metrics."""
        now = time.time_ns()
        temporality = AggregationTemporality.DELTA if self.delta else AggregationTemporality.CUMULATIVE
        points: dict[str, list[HistogramDataPoint]] = {"duration": [], "batch_size": []}
        reading, self._reading = self._reading, None
        for state, entries in reading if reading is not None else self._read_stats():
            for outcome, route, _, duration, batch_size in entries:
                for which, buckets in (("duration", duration), ("batch_size", batch_size)):
                    if buckets is not None:
                        point = self._point(state, outcome, route, which, buckets, now)
                        if point is not None:
                            points[which].append(point)
        metrics = []
        for which, instrument, description in (
                ("duration", m.INFERENCE_DURATION, "Duration of inference calls, per request"),
                ("batch_size", m.INFERENCE_BATCH_SIZE, "Rows per inference call")):
            if points[which]:
                metrics.append(Metric(name=instrument.name, description=description, unit=instrument.unit,
                                      data=Histogram(data_points=points[which], aggregation_temporality=temporality)))
        return metrics

    def _point(self, state: ModelState, outcome: str, route: str | None, which: str, buckets: Buckets, now: int,
               ) -> HistogramDataPoint | None:
        attributes = _attributes(state, outcome, route)
        if not self.delta:
            if not buckets.count:
                return None
            return HistogramDataPoint(attributes=attributes, start_time_unix_nano=max(self._start_ns,
                                      int(state.created * 1e9)), time_unix_nano=now, count=buckets.count,
                                      sum=buckets.sum, bucket_counts=list(buckets.counts),
                                      explicit_bounds=list(buckets.bounds), min=min(buckets.min, buckets.low),
                                      max=max(buckets.max, buckets.high))
        key = (state.name, outcome, route, which)
        since, counts, count, total = self._previous.get(key, (self._start_ns, [0] * len(buckets.counts), 0, 0.0))
        self._previous[key] = (now, buckets.counts, buckets.count, buckets.sum)
        if buckets.count == count:
            return None
        return HistogramDataPoint(attributes=attributes, start_time_unix_nano=since, time_unix_nano=now,
                                  count=buckets.count - count, sum=buckets.sum - total,
                                  bucket_counts=[a - b for a, b in zip(buckets.counts, counts)],
                                  explicit_bounds=list(buckets.bounds), min=buckets.low, max=buckets.high)


def _attributes(state: ModelState, outcome: str, route: str | None) -> dict[str, str]:
    if route is None:
        return {**state.attributes, m.OUTCOME: outcome}
    return {**state.attributes, m.OUTCOME: outcome, m.ROUTE_ATTRIBUTE: route}


def _locked(state: ModelState, read: Callable[[], Any]) -> Any:
    """``read()`` under the model's lock; a failure is counted and reads as nothing."""
    with state.lock:
        with guard("export.metrics"):
            return read()
    return None
