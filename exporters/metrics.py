"""The serving side's metrics pipeline: a MeterProvider of our own whose collection the caller drives.

Usage::

    from servewatch.exporters.metrics import MetricsPipeline, otlp_metric_exporter

    pipeline = MetricsPipeline(resource, otlp_metric_exporter(), producers=[histograms.produce])
    meter = pipeline.meter("servewatch")
    meter.create_observable_counter("servewatch.inference.requests", callbacks=[read_requests])
    pipeline.add_producer(bridge.produce, scope="servewatch.triton")   # more, under a scope of its own
    pipeline.collect()             # run the callbacks and producers, export once (call it every interval)
    pipeline.shutdown()            # stops the exporter; exports nothing more

Why not ``PeriodicExportingMetricReader`` with its thread: that thread and the SDK's at-fork hook would go on
exporting a forked parent's cumulative points from the child under the parent's identity, and a second
thread per process is one more thing to keep inert in helper processes. Here the reader never starts a
thread (its interval is infinite), so nothing is exported unless ``collect`` is called, and a forked child
simply builds a new pipeline. The provider is never made global.

``producers`` are callables returning finished SDK ``Metric`` objects (pre-aggregated data, e.g. histograms a
hot path keeps itself); they are added to this pipeline's scope (``servewatch``, or the scope given to
``add_producer``) at every collection, in the spirit of the OpenTelemetry ``MetricProducer`` interface that
the Python SDK does not offer yet.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.metrics import Meter, NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from servewatch import __version__

__all__ = ["MetricsPipeline", "Producer", "otlp_metric_exporter"]

Producer = Callable[[], Iterable[Metric]]
"""Returns pre-aggregated metrics to add to a collection."""

SCOPE = InstrumentationScope("servewatch", __version__)


class _DrivenReader(PeriodicExportingMetricReader):
    """A periodic reader without its period: exports on ``collect()``, adding the producers' metrics and
    reporting failed exports (the SDK's reader only logs them)."""

    def __init__(self, exporter: MetricExporter, resource: Resource, producers: Sequence[Producer],
                 timeout_millis: float, on_failure: Callable[[], None] | None) -> None:
        super().__init__(exporter, export_interval_millis=math.inf, export_timeout_millis=timeout_millis)
        self._target = exporter
        self._resource = resource
        self._producers: tuple[tuple[InstrumentationScope, Producer], ...] = tuple(
            (SCOPE, producer) for producer in producers)
        self._on_failure = on_failure
        self._lock = threading.Lock()
        self._received = False

    # The SDK marks collect final; this override is how producers export when no instrument has a point.
    def collect(self, timeout_millis: float = 10_000) -> None:  # type: ignore[misc]
        self._received = False
        super().collect(timeout_millis=timeout_millis)
        if not self._received:  # the SDK skips the export when no instrument has a point; producers may have
            self._receive_metrics(MetricsData(resource_metrics=[]), timeout_millis=timeout_millis)

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        self._received = True
        produced: dict[InstrumentationScope, list[Metric]] = {}
        for scope, producer in self._producers:
            metrics = list(producer())
            if metrics:
                produced.setdefault(scope, []).extend(metrics)
        if not produced and not metrics_data.resource_metrics:
            return
        if produced:
            metrics_data = _with(metrics_data, produced, self._resource)
        with self._lock, suppress_instrumentation():  # our own HTTP calls are not the application's traffic
            result = self._target.export(metrics_data, timeout_millis=timeout_millis)
        if result is not MetricExportResult.SUCCESS and self._on_failure is not None:
            self._on_failure()


def _with(data: MetricsData, produced: dict[InstrumentationScope, list[Metric]], resource: Resource) -> MetricsData:
    """``data`` plus ``produced``, each under its scope (merged into that scope where the SDK already has it)."""
    resources = list(data.resource_metrics)
    if not resources:
        resources = [ResourceMetrics(resource=resource, scope_metrics=[], schema_url="")]
    first = resources[0]
    scopes = list(first.scope_metrics)
    for ours, metrics in produced.items():
        for i, scope in enumerate(scopes):
            if scope.scope.name == ours.name:
                scopes[i] = ScopeMetrics(scope=scope.scope, metrics=list(scope.metrics) + metrics,
                                         schema_url=scope.schema_url)
                break
        else:
            scopes.append(ScopeMetrics(scope=ours, metrics=metrics, schema_url=""))
    resources[0] = ResourceMetrics(resource=first.resource, scope_metrics=scopes, schema_url=first.schema_url)
    return MetricsData(resource_metrics=resources)


class MetricsPipeline:
    """One MeterProvider + one exporter; ``collect()`` exports, nothing else does."""

    def __init__(self, resource: Resource, exporter: MetricExporter, *, producers: Sequence[Producer] = (),
                 timeout: float = 30.0, on_failure: Callable[[], None] | None = None) -> None:
        self._timeout_millis = timeout * 1000
        self._reader = _DrivenReader(exporter, resource, producers, self._timeout_millis, on_failure)
        self._provider = MeterProvider(resource=resource, metric_readers=[self._reader], shutdown_on_exit=False)

    def meter(self, name: str = SCOPE.name, version: str | None = __version__) -> Meter:
        """A meter of this pipeline's provider (use the default name to share the producers' scope)."""
        return self._provider.get_meter(name, version)

    def add_producer(self, producer: Producer, *, scope: str = SCOPE.name) -> None:
        """Add ``producer`` from the next collection on; its metrics go under instrumentation scope ``scope``
        (with the meter of that name's instruments, if any). A producer that raises fails that collection: wrap
        code you do not trust."""
        key = SCOPE if scope == SCOPE.name else InstrumentationScope(scope, __version__)
        reader = self._reader
        reader._producers = (*reader._producers, (key, producer))  # one assignment: a collection sees old or new

    def collect(self) -> None:
        """Run every callback and producer and export the result once (blocks for the export; a failed export
    calls ``on_failure``)."""
        self._reader.collect(timeout_millis=self._timeout_millis)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop the provider and the exporter. It exports nothing itself: ``collect`` first for a last export,
        once."""
        self._provider.shutdown(timeout_millis=timeout * 1000)


def otlp_metric_exporter(protocol: str = "http/protobuf") -> MetricExporter:
    """The standard OTLP metric exporter for ``protocol`` (``http/protobuf`` or ``grpc``); endpoint, headers,
    timeout, compression, temporality and histogram aggregation come from the ``OTEL_EXPORTER_OTLP_*``
    variables. ``console`` gives the SDK's console exporter (for debugging)."""
    if protocol == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter

        return GrpcMetricExporter(meter_provider=NoOpMeterProvider())
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(meter_provider=NoOpMeterProvider())
