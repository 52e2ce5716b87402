"""OTLP metrics from serving processes, accumulated and re-exposed as Prometheus metric families.

Usage::

    from servewatch.detectors.service.reexposure import OtlpMetrics

    metrics = OtlpMetrics(limits=MetricLimits(max_series=10_000))
    outcome = metrics.ingest(request)        # an ExportMetricsServiceRequest
    outcome.rejected, outcome.error_message  # for the OTLP partial-success answer
    registry.register(metrics)               # a prometheus-client collector: collect() -> families

Translation (the OpenTelemetry Prometheus compatibility rules; names by
:mod:`~servewatch.detectors.service.prometheus_names`):

- every series carries ``job`` (resource ``service.namespace``/``service.name``) and ``instance``
  (``service.instance.id``), so each producing process is its own series, plus ``otel_scope_name`` and
  ``otel_scope_version`` when set; point attributes become labels (``ml.model.name`` -> ``ml_model_name``).
  Other resource attributes go to one ``target_info`` series per job and instance. Scrape with
  ``honor_labels: true`` to keep these ``job``/``instance`` rather than the detector's own.
- gauges -> gauges (the latest point wins); monotonic sums -> counters (``_total``), non-monotonic sums ->
  gauges; cumulative points replace the value, delta points are added to it (delta is turned into
  cumulative, so a producer restart is a counter reset, as Prometheus expects).
- histograms -> classic histograms; deltas add up bucket by bucket. Exponential histograms are converted to
  classic buckets (:mod:`~servewatch.detectors.service.prometheus_histogram`), cumulative or delta. Summaries ->
  summaries.
- points that cannot be used are rejected, counted by reason and reported in the partial-success answer,
  never dropped silently: ``malformed``, ``temporality`` (unspecified), ``type_conflict`` (two metrics whose
  Prometheus names collide, e.g. a counter ``jobs`` writing ``jobs_total`` and a gauge ``jobs_total``),
  ``negative_delta`` (a counter going down), and the limits of :class:`MetricLimits`: ``series_limit``
  (beyond ``max_series``), ``labels_limit`` (more than ``max_labels`` labels on a series), ``name_limit``
  (a metric or label name longer than ``max_name``), ``bytes_limit`` (the exposition of all series would
  pass ``max_bytes``). Label values longer than ``max_value`` and descriptions longer than ``max_help`` are
  cut. A point flagged "no recorded value" removes its series; a series not updated for ``expire_after``
  seconds is dropped.

The memory held and the ``/metrics`` page are therefore bounded by ``max_bytes`` (plus the per-series
overhead of at most ``max_series`` series), whatever producers send.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from .prometheus_histogram import Explicit, Exponential
from .prometheus_names import label_name, label_value, metric_name, prometheus_unit, target_labels

__all__ = ["Ingested", "MetricLimits", "OtlpMetrics"]

_CUMULATIVE, _DELTA = 2, 1
_RESERVED = {"le", "quantile", "job", "instance"}


@dataclass(frozen=True)
class MetricLimits:
    """What re-exposed serving metrics may hold (counts, characters, bytes); see the module docstring."""

    max_series: int = 10_000
    max_labels: int = 64
    """Labels per series, ``job``/``instance``/scope labels included."""
    max_name: int = 256
    """Characters of a metric or label name (OpenTelemetry instrument names have at most 255)."""
    max_value: int = 1024
    """Characters of a label value; longer values are cut."""
    max_help: int = 1024
    """Characters of a metric's description; longer ones are cut."""
    max_bytes: int = 32 * 2**20
    """Bytes of the exposition of every series together (Prometheus text, estimated as series are added)."""


class _Refused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Ingested:
    """The outcome of one request: points accepted and rejected, and why."""

    accepted: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    messages: list[str] = field(default_factory=list)

    def reject(self, reason: str, message: str) -> None:
        self.rejected += 1
        self.reasons[reason] += 1
        if len(self.messages) < 5 and message not in self.messages:
            self.messages.append(message)

    @property
    def error_message(self) -> str:
        return "; ".join(self.messages)


class _Family:
    __slots__ = ("kind", "help", "unit")

    def __init__(self, kind: str, help_text: str, unit: str) -> None:
        self.kind, self.help, self.unit = kind, help_text, unit


class _Series:
    __slots__ = ("labels", "value", "time", "updated", "size")

    def __init__(self, labels: dict[str, str], value: Any, at: int, updated: float, size: int) -> None:
        self.labels, self.value, self.time, self.updated, self.size = labels, value, at, updated, size


class OtlpMetrics:
    """Accumulated OTLP metric points, served as Prometheus families; see the module docstring."""

    def __init__(self, *, limits: MetricLimits | None = None, expire_after: float = 600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.limits = limits or MetricLimits()
        self.expire_after = expire_after
        self.clock = clock
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        self._exposed: dict[str, str] = {"target": "target_info", "target_info": "target_info"}
        """Every name a family writes (``x_total``, ``x_bucket``, ...) -> the family: two must never meet."""
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], _Series] = {}
        self._targets: dict[tuple[str, str], tuple[dict[str, str], float, int]] = {}
        self.bytes = 0
        """Estimated exposition bytes of every family and series held (at most ``limits.max_bytes``)."""
        self.received = 0
        """Points received, accepted or not."""
        self.rejected: Counter[str] = Counter()
        """Points rejected, by reason."""

    @property
    def series_count(self) -> int:
        return len(self._series)

    # -- ingest ---------------------------------------------------------------------------------------------

    def ingest(self, request: Any) -> Ingested:
        """Take every point of an ``ExportMetricsServiceRequest``."""
        outcome = Ingested()
        now = self.clock()
        with self._lock:
            cut = self.limits.max_value
            for resource_metrics in request.resource_metrics:
                resource = {kv.key: kv.value for kv in resource_metrics.resource.attributes}
                base = target_labels(resource, cut)
                self._target(base, resource, now)
                for scope_metrics in resource_metrics.scope_metrics:
                    scope = dict(base)
                    if scope_metrics.scope.name:
                        scope["otel_scope_name"] = scope_metrics.scope.name[:cut]
                    if scope_metrics.scope.version:
                        scope["otel_scope_version"] = scope_metrics.scope.version[:cut]
                    for metric in scope_metrics.metrics:
                        self._metric(metric, scope, now, outcome)
            self.received += outcome.accepted + outcome.rejected
            self.rejected.update(outcome.reasons)
            self._expire(now)
        return outcome

    def _metric(self, metric: Any, scope: dict[str, str], now: float, outcome: Ingested) -> None:
        data = metric.WhichOneof("data")
        points = list(getattr(metric, data).data_points) if data else []
        if data is None or not metric.name:
            outcome.reject("malformed", f"metric {metric.name!r} has no name or no data")
            return
        if len(metric.name) > self.limits.max_name:
            for _ in points or [None]:
                outcome.reject("name_limit", f"a metric name of {len(metric.name)} characters "
                                             f"(at most {self.limits.max_name})")
            return
        body = getattr(metric, data)
        temporality = getattr(body, "aggregation_temporality", _CUMULATIVE)
        if temporality not in (_CUMULATIVE, _DELTA):
            for _ in points:
                outcome.reject("temporality", f"metric {metric.name!r}: aggregation temporality unspecified")
            return
        if data == "gauge":
            kind = "gauge"
        elif data == "sum":
            kind = "counter" if body.is_monotonic else "gauge"
        elif data == "summary":
            kind = "summary"
        else:
            kind = "histogram"
        name = metric_name(metric.name, metric.unit, kind)
        family = self._families.get(name)
        taken = {self._exposed.get(exposed) for exposed in _exposed_names(name, kind)} - {None, name}
        if (family is not None and family.kind != kind) or taken:
            other = family.kind if family is not None and family.kind != kind else f"written by {taken.pop()}"
            for _ in points:
                outcome.reject("type_conflict", f"metric {metric.name!r} maps to {name}, already {other}")
            return
        if family is None:
            unit = prometheus_unit(metric.unit, kind)
            help_text = metric.description[:self.limits.max_help]
            if self.bytes + _family_bytes(name, help_text) > self.limits.max_bytes:
                for _ in points:
                    outcome.reject("bytes_limit", self._bytes_message())
                return
            family = self._families[name] = _Family(kind, help_text, unit if name.endswith(unit) else "")
            self.bytes += _family_bytes(name, help_text)
            self._exposed.update((exposed, name) for exposed in _exposed_names(name, kind))
        for point in points:
            try:
                self._point(name, kind, data, temporality, point, scope, now, outcome)
            except _Refused as refused:
                outcome.reject(refused.reason, f"metric {metric.name!r}: {refused}")
            except (ValueError, TypeError, OverflowError) as error:
                outcome.reject("malformed", f"metric {metric.name!r}: {error}")

    def _bytes_message(self) -> str:
        return f"the re-exposed metrics would pass {self.limits.max_bytes} bytes"

    def _point(self, name: str, kind: str, data: str, temporality: int, point: Any, scope: dict[str, str],
               now: float, outcome: Ingested) -> None:
        labels = _point_labels(point.attributes, scope, self.limits)
        key = (name, tuple(sorted(labels.items())))
        series = self._series.get(key)
        if point.flags & 1:  # no recorded value: the producer says this series went stale
            if series is not None:
                self.bytes -= self._series.pop(key).size
            outcome.accepted += 1
            return
        delta = temporality == _DELTA
        value: float | Explicit | Exponential | tuple[int, float, list[tuple[float, float]]]
        if data in ("gauge", "sum"):
            value = _number(point)
            if delta and kind == "counter" and value < 0:
                outcome.reject("negative_delta", f"metric {name}: a monotonic delta of {value}")
                return
            if delta and series is not None:
                value += series.value
        elif data == "histogram":
            value = Explicit.from_point(point)
            if delta and series is not None and isinstance(series.value, Explicit):
                value = series.value.add(value)
        elif data == "exponential_histogram":
            value = Exponential.from_point(point)
            if delta and series is not None and isinstance(series.value, Exponential):
                value = series.value.add(value)
        else:
            value = (int(point.count), float(point.sum),
                     [(float(q.quantile), float(q.value)) for q in point.quantile_values])
        if series is None:
            if len(self._series) >= self.limits.max_series:
                outcome.reject("series_limit", f"more than {self.limits.max_series} series")
                return
            size = _series_bytes(name, kind, labels, value)
            if self.bytes + size > self.limits.max_bytes:
                outcome.reject("bytes_limit", self._bytes_message())
                return
            self._series[key] = _Series(labels, value, point.time_unix_nano, now, size)
            self.bytes += size
        elif data == "gauge" and not delta and point.time_unix_nano < series.time:
            series.updated = now  # an older gauge reading than the one held: keep the newer
        else:
            size = series.size if kind in ("counter", "gauge") else _series_bytes(name, kind, labels, value)
            if size > series.size and self.bytes + size - series.size > self.limits.max_bytes:
                outcome.reject("bytes_limit", self._bytes_message())
                return
            self.bytes += size - series.size
            series.value, series.time, series.updated, series.size = value, point.time_unix_nano, now, size
        outcome.accepted += 1

    def _target(self, base: dict[str, str], resource: dict[str, Any], now: float) -> None:
        """One ``target_info`` series per job and instance: the first ``max_labels`` resource attributes with
        names of at most ``max_name`` characters (the rest is left out: a producer's metrics still count)."""
        limits = self.limits
        key = (base.get("job", ""), base.get("instance", ""))
        held = self._targets.get(key)
        if held is None and len(self._targets) >= limits.max_series:
            return
        info: dict[str, str] = {}
        for name in sorted(resource):
            if len(info) + len(base) >= limits.max_labels:
                break
            if len(name) <= limits.max_name and name not in ("service.name", "service.namespace",
                                                              "service.instance.id"):
                info[label_name(name)] = label_value(resource[name])[:limits.max_value]
        labels = info | base
        size = _line_bytes("target_info", labels)
        old = held[2] if held is not None else 0
        if size > old and self.bytes + size - old > limits.max_bytes:
            if held is not None:
                self._targets[key] = (held[0], now, old)
            return
        self._targets[key] = (labels, now, size)
        self.bytes += size - old

    def _expire(self, now: float) -> None:
        limit = now - self.expire_after
        for key in [key for key, series in self._series.items() if series.updated < limit]:
            self.bytes -= self._series.pop(key).size
        for target in [target for target, (_, updated, _) in self._targets.items() if updated < limit]:
            self.bytes -= self._targets.pop(target)[2]
        live = {name for name, _ in self._series}
        for name in [name for name in self._families if name not in live]:
            family = self._families.pop(name)
            self.bytes -= _family_bytes(name, family.help)
            for exposed in _exposed_names(name, family.kind):
                self._exposed.pop(exposed, None)

    # -- collect --------------------------------------------------------------------------------------------

    def collect(self) -> Iterable[Metric]:
        """The families, as prometheus-client ``Metric`` objects (this is a collector)."""
        with self._lock:
            self._expire(self.clock())
            metrics: dict[str, Metric] = {}
            for (name, _), series in self._series.items():
                family = self._families[name]
                metric = metrics.get(name)
                if metric is None:
                    metric = metrics[name] = Metric(name, family.help or name, family.kind, family.unit)
                _samples(metric, name, family.kind, series)
            result = list(metrics.values())
            if self._targets:
                info = Metric("target", "Resource attributes of each producing process", "info")
                for labels, _, _ in self._targets.values():
                    info.add_sample("target_info", labels, 1.0)
                result.append(info)
        return result


def _samples(metric: Metric, name: str, kind: str, series: _Series) -> None:
    labels, value = series.labels, series.value
    if kind == "counter":
        metric.add_sample(f"{name}_total", labels, float(value))
    elif kind == "gauge":
        metric.add_sample(name, labels, float(value))
    elif kind == "histogram":
        for bound, cumulative in value.buckets():
            metric.add_sample(f"{name}_bucket", {**labels, "le": floatToGoString(bound)}, float(cumulative))
        metric.add_sample(f"{name}_count", labels, float(value.count))
        if value.sum is not None:
            metric.add_sample(f"{name}_sum", labels, float(value.sum))
    else:
        count, total, quantiles = value
        for quantile, number in quantiles:
            metric.add_sample(name, {**labels, "quantile": floatToGoString(quantile)}, number)
        metric.add_sample(f"{name}_count", labels, float(count))
        metric.add_sample(f"{name}_sum", labels, total)


def _exposed_names(name: str, kind: str) -> tuple[str, ...]:
    suffixes = {"counter": ("", "_total", "_created"), "gauge": ("",), "histogram": ("", "_bucket", "_sum", "_count"),
                "summary": ("", "_sum", "_count")}[kind]
    return tuple(name + suffix for suffix in suffixes)


def _family_bytes(name: str, help_text: str) -> int:
    """The ``# HELP`` and ``# TYPE`` lines of a family."""
    return 2 * len(name) + len(help_text) + 32


def _line_bytes(name: str, labels: dict[str, str]) -> int:
    """One sample line: ``name{k="v",...} value``."""
    return len(name) + sum(len(key) + len(value) + 4 for key, value in labels.items()) + 28


def _series_bytes(name: str, kind: str, labels: dict[str, str], value: Any) -> int:
    line = _line_bytes(name, labels) + 8  # suffixes such as _total, _bucket
    if kind == "histogram":
        return line * (len(value.buckets()) + 2) + 16 * len(value.buckets())  # the le label per bucket
    if kind == "summary":
        return line * (len(value[2]) + 2) + 20 * len(value[2])
    return line


def _point_labels(attributes: Any, scope: dict[str, str], limits: MetricLimits) -> dict[str, str]:
    """The labels of a point's series; :class:`_Refused` beyond the limits."""
    if len(attributes) + len(scope) > limits.max_labels:
        raise _Refused("labels_limit", f"more than {limits.max_labels} labels")
    grouped: dict[str, list[tuple[str, str]]] = {}
    for kv in attributes:
        if len(kv.key) > limits.max_name:
            raise _Refused("name_limit", f"an attribute name of {len(kv.key)} characters (at most {limits.max_name})")
        label = label_name(kv.key)
        if label in _RESERVED:
            label = f"exported_{label}"
        grouped.setdefault(label, []).append((kv.key, label_value(kv.value)[:limits.max_value]))
    labels = {label: ";".join(value for _, value in sorted(items)) for label, items in grouped.items()}
    labels.update(scope)
    return labels


def _number(point: Any) -> float:
    which = point.WhichOneof("value")
    if which == "as_double":
        return float(point.as_double)
    if which == "as_int":
        return float(point.as_int)
    raise ValueError("a number point without a value")
