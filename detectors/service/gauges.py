"""The detector's Prometheus families: drift and quality gauges from evaluation results, and its own counters.

Usage::

    gauges = Gauges()
    families = gauges.families(results)               # after each evaluation -> prometheus.Snapshot
    activity = Activity()                              # counters the receiver and the evaluator update
    activity.profiles(accepted=3, model="fraud", at=time.time())
    exposition.register(activity)                      # a collector: counters read at scrape time

Per (model, signal, feature, window), the names of DESIGN.md (spelled once, in :mod:`servewatch.metrics`):

- ``servewatch_window_samples``: values in the window (always, reference or not);
- ``servewatch_drift_<statistic>`` (``ks``, ``d1``, ``psi``, ``js``, ``hellinger``, ``wasserstein``; for
  categorical columns ``linf``, ``d1``, ``psi``, ``js``, ``hellinger``, ``chi2``, ``cramers_v``) and
  ``servewatch_drift_ks_bound``: only where the statistic has a value (a window or reference below
  ``min_samples`` has none), only once a reference exists; ``servewatch_drift_<statistic>_noise`` beside
  it where the statistic knows the level sampling noise alone reaches (it decides nothing below that);
- ``servewatch_drift_severity``: 0 ok, 1 warning, 2 critical, per column (statistics and rules), only for
  columns whose verdict is known;
- ``servewatch_verdict_unknown`` (label ``reason``, one of ``UNKNOWN_REASONS``; 1): per column whose verdict
  is unknown, instead of a severity;
- ``servewatch_quality_<ratio>`` (missing, invalid, out_of_range, not_allowed, new_category) where defined,
  and ``servewatch_quality_rule_violated`` (label ``rule``; 0/1, only where the rule had something to
  measure; the model-level ``volume`` rule has ``feature=""``);

Per (model, signal, window): ``servewatch_window_rows`` (rows in the window, 0 once traffic stopped),
``servewatch_window_state`` (label ``state``, one of ``STATES``: 1 for the window's state, 0 for the others)
and ``servewatch_detector_reference_ready`` (1 once the window has a complete reference).

Counters (``Activity``): ``servewatch_detector_profiles_received_total`` (accepted and stored, each profile
once), ``servewatch_detector_profiles_rejected_total{reason}``, ``servewatch_detector_profiles_duplicate_total``,
``servewatch_detector_records_ignored_total`` (log records that are not profiles),
``servewatch_detector_last_profile_timestamp_seconds{model}`` (when the last profile of the model was
accepted), ``servewatch_detector_evaluation_duration_seconds`` (the last evaluation),
``servewatch_detector_requests_total{path, code}`` (OTLP/gRPC calls: the method and the code name),
``servewatch_detector_store_damaged_total``,
``servewatch_detector_columns_dropped_total{model}`` (columns left out past the store's per-bucket limit),
``servewatch_detector_model_failures_total{model, stage}`` (roll-ups, evaluations and profiles that failed
on one model's data, :mod:`.failures`), and for re-exposed serving metrics
``servewatch_detector_metric_points_received_total``, ``servewatch_detector_metric_points_rejected_total{reason}``,
``servewatch_detector_metric_series``; for the OTLP/HTTP connections ``servewatch_detector_connections`` (open) and
``servewatch_detector_connections_closed_total{reason}`` (``evicted``: waiting for a request and closed to
make room; ``refused``: turned away because every connection was in an exchange).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from ... import metrics as m
from .listener import Listener
from .reexposure import OtlpMetrics
from .evaluator import STATES, WindowResult
from .store import Store

__all__ = ["Activity", "Gauges", "result_families"]

_HELP = {
    m.WINDOW_SAMPLES: "Values of the feature in the window",
    **{m.drift(name): f"{name} between the window and its reference" for name in m.STATISTICS},
    **{m.drift_noise(name): f"Level sampling noise alone gives {m.drift(name)} at these counts"
       for name in m.STATISTICS},
    m.DRIFT_KS_BOUND: f"Sketch error bound of {m.drift('ks')}",
    m.DRIFT_SEVERITY: "0 ok, 1 warning, 2 critical (absent while the verdict is unknown)",
    m.VERDICT_UNKNOWN: "1 while the column's verdict is unknown, and why",
    **{m.quality(name): f"{name.replace('_', ' ')} in the window" for name in m.QUALITY_RATIOS},
    m.QUALITY_RULE_VIOLATED: "1 while the data-quality rule is violated",
    m.WINDOW_ROWS: "Rows in the window",
    m.WINDOW_STATE: "1 for the window's state (ok, warning, critical, unknown), 0 for the others",
    m.REFERENCE_READY: "1 once the window has a complete reference",
}
_FAMILIES = {name: (_HELP[name], list(labels)) for name, labels in m.DETECTOR_GAUGES.items()}


class Gauges:
    """Builds the gauge families of a set of results, reusing the samples of results that did not change
    (same ``signature``: the same bucket versions against the same reference)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, str], tuple[WindowResult, dict[str, list[Sample]]]] = {}

    def families(self, results: Mapping[tuple[str, str, str], WindowResult]) -> list[Metric]:
        families = {name: GaugeMetricFamily(name, text, labels=labels) for name, (text, labels) in _FAMILIES.items()}
        cache: dict[tuple[str, str, str], tuple[WindowResult, dict[str, list[Sample]]]] = {}
        for key, result in results.items():
            cached = self._cache.get(key)
            same = (cached is not None and result.signature is not None and cached[0].signature == result.signature
                    and cached[0].window == result.window)
            samples = cached[1] if same else _samples(result)  # type: ignore[index]
            cache[key] = (result, samples)
            for name, items in samples.items():
                families[name].samples.extend(items)
        self._cache = cache
        return list(families.values())


def result_families(results: Iterable[WindowResult]) -> list[Metric]:
    """Gauge families for a set of window results (see the module docstring)."""
    return Gauges().families({(r.model, r.signal, r.window.name): r for r in results})


def _samples(result: WindowResult) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}

    def add(name: str, labels: dict[str, str], value: float) -> None:
        out.setdefault(name, []).append(Sample(name, labels, value))

    window = {m.MODEL: result.model, m.SIGNAL: result.signal, m.WINDOW: result.window.name}
    add(m.REFERENCE_READY, window, 1.0 if result.report is not None else 0.0)
    add(m.WINDOW_ROWS, window, float(result.rows))
    state = result.severity
    for name in STATES:
        add(m.WINDOW_STATE, {**window, m.STATE: name}, 1.0 if name == state else 0.0)
    for feature, count in result.samples.items():
        add(m.WINDOW_SAMPLES, _labels(result, feature), float(count))
    for feature, reason in result.unknown.items():
        add(m.VERDICT_UNKNOWN, {**_labels(result, feature), m.REASON: reason}, 1.0)
    if result.report is None:
        return out
    for feature, column in result.report.columns.items():
        labels = _labels(result, feature)
        for name, statistic in column.statistics.items():
            if statistic.value is None or name not in m.STATISTICS:
                continue
            add(m.drift(name), labels, statistic.value)
            if statistic.noise is not None:
                add(m.drift_noise(name), labels, statistic.noise)
            if name == "ks" and statistic.bound is not None:
                add(m.DRIFT_KS_BOUND, labels, statistic.bound)
        if feature not in result.unknown:
            add(m.DRIFT_SEVERITY, labels, float(m.SEVERITY_CODES[column.severity]))
        for name, ratio in column.quality.items():
            if ratio is not None and name in m.QUALITY_RATIOS:
                add(m.quality(name), labels, ratio)
        for rule in column.rules.values():
            if rule.value is not None:  # a rule with nothing to measure (an empty window) is neither
                add(m.QUALITY_RULE_VIOLATED, {**labels, m.RULE: rule.rule}, 1.0 if rule.violated else 0.0)
    for rule in result.report.rules.values():
        add(m.QUALITY_RULE_VIOLATED, {**_labels(result, ""), m.RULE: rule.rule},
            1.0 if rule.violated else 0.0)
    return out


def _labels(result: WindowResult, feature: str) -> dict[str, str]:
    return {m.MODEL: result.model, m.SIGNAL: result.signal, m.FEATURE: feature, m.WINDOW: result.window.name}


class Activity:
    """Thread-safe counters of what the detector received and did; a prometheus-client collector."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received = 0
        self.duplicates = 0
        self.ignored = 0
        self.rejected: Counter[str] = Counter()
        self.requests: Counter[tuple[str, str]] = Counter()
        self.last_profile: dict[str, float] = {}
        self.evaluation_seconds = 0.0
        self.metrics: OtlpMetrics | None = None
        """The re-exposed serving metrics, whose own counts are exported too."""
        self.store: Store | None = None
        """The store, whose count of damaged buckets is exported."""
        self.connections: Listener | None = None
        """The OTLP/HTTP listener, whose connection counts are exported."""

    def profiles(self, *, accepted: int = 0, duplicates: int = 0, ignored: int = 0, model: str | None = None,
                 at: float = 0.0, rejected: Iterable[str] = ()) -> None:
        with self._lock:
            self.received += accepted
            self.duplicates += duplicates
            self.ignored += ignored
            self.rejected.update(rejected)
            if model is not None and accepted:
                self.last_profile[model] = max(at, self.last_profile.get(model, 0.0))

    def request(self, path: str, code: int | str) -> None:
        with self._lock:
            self.requests[(path, str(code))] += 1

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            received = CounterMetricFamily(m.PROFILES_RECEIVED,
                                           "Profiles accepted and stored (each counted once)", value=self.received)
            rejected = CounterMetricFamily(m.PROFILES_REJECTED, "Profiles rejected, by reason",
                                           labels=[m.REASON])
            for reason, count in sorted(self.rejected.items()):
                rejected.add_metric([reason], count)
            duplicates = CounterMetricFamily(m.PROFILES_DUPLICATE,
                                             "Profiles delivered again and counted once", value=self.duplicates)
            ignored = CounterMetricFamily(m.RECORDS_IGNORED,
                                          "Log records that are not servewatch.profile events", value=self.ignored)
            last = GaugeMetricFamily(m.LAST_PROFILE_TIMESTAMP,
                                     "When the detector last accepted a profile of the model", labels=[m.MODEL])
            for model, at in sorted(self.last_profile.items()):
                last.add_metric([model], at)
            duration = GaugeMetricFamily(m.EVALUATION_DURATION,
                                         "Duration of the last evaluation of every window",
                                         value=self.evaluation_seconds)
            requests = CounterMetricFamily(m.REQUESTS,
                                           "OTLP requests, by path and status (gRPC: method and code)",
                                           labels=["path", "code"])
            for (path, code), count in sorted(self.requests.items()):
                requests.add_metric([path, code], count)
        store = self.store
        damaged = CounterMetricFamily(m.STORE_DAMAGED,
                                      "Stored buckets found damaged and started afresh",
                                      value=store.corrupt if store is not None else 0)
        dropped = CounterMetricFamily(m.COLUMNS_DROPPED,
                                      "Columns left out because the model's bucket held the column limit",
                                      labels=[m.MODEL])
        failures = CounterMetricFamily(m.MODEL_FAILURES,
                                       "Work that failed on one model's data, by stage (maintain, evaluate, store)",
                                       labels=[m.MODEL, "stage"])
        if store is not None:
            for model, count in sorted(dict(store.columns_dropped).items()):  # a copy: writers update it
                dropped.add_metric([model], count)
            for (model, stage), count in sorted(dict(store.failures.counts).items()):
                failures.add_metric([model, stage], count)
        metrics = self.metrics
        points = CounterMetricFamily(m.METRIC_POINTS_RECEIVED,
                                     "OTLP metric points received from serving processes",
                                     value=metrics.received if metrics is not None else 0)
        refused = CounterMetricFamily(m.METRIC_POINTS_REJECTED,
                                      "OTLP metric points rejected, by reason", labels=[m.REASON])
        for reason, count in sorted(metrics.rejected.items() if metrics is not None else ()):
            refused.add_metric([reason], count)
        series = GaugeMetricFamily(m.METRIC_SERIES, "Re-exposed serving metric series",
                                   value=metrics.series_count if metrics is not None else 0)
        listener = self.connections
        connections = GaugeMetricFamily(m.CONNECTIONS, "Open OTLP/HTTP connections",
                                        value=listener.connections if listener is not None else 0)
        closed = CounterMetricFamily(m.CONNECTIONS_CLOSED,
                                     "OTLP/HTTP connections closed to make room (evicted) or turned away (refused)",
                                     labels=[m.REASON])
        closed.add_metric(["evicted"], listener.evicted if listener is not None else 0)
        closed.add_metric(["refused"], listener.refused if listener is not None else 0)
        return [received, rejected, duplicates, ignored, last, duration, requests, damaged, dropped, failures, points,
                refused, series, connections, closed]
