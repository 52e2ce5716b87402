"""What framework bridges add to the metrics of a serving process: queue-time sources and their own metrics.

Usage (in a bridge; see :mod:`servewatch.instrumentation` for the contract)::

    from servewatch.instrumentation import observe_queue_time, register_metrics

    observe_queue_time(lambda: {"resnet": 1.25}, framework="triton")         # cumulative seconds per model
    register_metrics(bridge.register, produce=bridge.produce, scope="servewatch.triton")

Registering starts nothing and costs nothing: the sources wait here until a serving process builds its
metrics pipeline (:mod:`~servewatch.instrumentation.runtime`), which polls the queue-time sources at each
collection (:mod:`~servewatch.instrumentation.telemetry`) and takes the metric sources with
:func:`add_metric_sources`, those registered later at its next cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .guard import errors, guard

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter
    from opentelemetry.sdk.metrics.export import Metric

__all__ = ["add_metric_sources", "observe_queue_time", "pending", "queue_sources", "register_metrics"]

_queue_sources: list[tuple[Callable[[], Mapping[str, float]], str]] = []
_metric_sources: list[tuple[Callable[[Meter], object] | None, Callable[[], Iterable[Metric]] | None, str]] = []


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
    :func:`~servewatch.instrumentation.runtime.current`) builds the pipeline, and takes the sources registered
    before or after it did at its next cycle. Nothing is registered with ``OTEL_METRICS_EXPORTER=none`` (there
    is no pipeline)."""
    _metric_sources.append((setup, produce, scope))


def queue_sources() -> list[tuple[Callable[[], Mapping[str, float]], str]]:
    """The queue-time sources: the list itself, so that a pipeline built now sees those registered later."""
    return _queue_sources


def add_metric_sources(pipeline: Any, taken: int) -> int:
    """Give ``pipeline`` (a :class:`~servewatch.exporters.metrics.MetricsPipeline`) the metric sources from the
    ``taken``-th on; returns how many it has now."""
    sources = _metric_sources[taken:]
    for setup, produce, scope in sources:
        with guard("metrics.source"):
            if setup is not None:
                setup(pipeline.meter(scope))
            if produce is not None:
                pipeline.add_producer(_guarded(produce), scope=scope)
    return taken + len(sources)


def pending(taken: int) -> bool:
    """Whether metric sources were registered after the first ``taken``."""
    return len(_metric_sources) > taken


def _guarded(produce: Callable[[], Iterable[Metric]]) -> Callable[[], list[Metric]]:
    """``produce`` made safe for the pipeline: a failure is counted (``metrics.source``) and produces nothing."""
    def producer() -> list[Metric]:
        try:
            return list(produce())
        except Exception as error:
            errors.report("metrics.source", error)
            return []
    return producer
