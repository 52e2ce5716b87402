"""The metric-name contract: every metric, label and statistic name servewatch emits or reads, in one place.

Usage::

    from servewatch import metrics

    metrics.drift("ks")                      # 'servewatch_drift_ks' (a gauge of the detector)
    metrics.drift_noise("psi")               # 'servewatch_drift_psi_noise'
    metrics.quality("missing_ratio")         # 'servewatch_quality_missing_ratio'
    metrics.WINDOW_ROWS                      # 'servewatch_window_rows'
    metrics.PROFILES_REJECTED                # 'servewatch_detector_profiles_rejected_total'
    metrics.INFERENCE_DURATION.name          # 'servewatch.inference.duration' (the OpenTelemetry instrument)
    metrics.INFERENCE_DURATION.prometheus    # 'servewatch_inference_duration_seconds' (as Prometheus has it)
    metrics.INFERENCE_DURATION.bucket        # 'servewatch_inference_duration_seconds_bucket'

The detector's own series (:mod:`servewatch.detectors.service.gauges` emits them; DESIGN.md's metric table
describes them) carry the labels ``model``, ``signal``, ``feature`` and ``window`` (:data:`COLUMN_LABELS`) or,
per window, ``model``, ``signal`` and ``window`` (:data:`WINDOW_LABELS`). Counters are named here with their
``_total``, as written out and queried (``prometheus_client`` takes a family name with or without it).

The serving side's OpenTelemetry instruments (:mod:`servewatch.instrumentation.telemetry`, the GPU gauges and
the framework bridges) are :class:`Instrument` constants: the OpenTelemetry name, kind and unit the serving
process creates, and the Prometheus name the detector's re-exposure gives them (the OTel compatibility rules,
checked by the tests against :func:`servewatch.detectors.service.prometheus_names.metric_name`). Their attributes are
the ``*_ATTRIBUTE`` constants, Prometheus labels the ``*_LABEL`` ones (``ml.model.name`` -> ``ml_model_name``).

The statistics: :data:`NUMERIC_STATISTICS` and :data:`CATEGORICAL_STATISTICS` (what the detector computes per
column type), :data:`STATISTICS` (every one, in display order), :data:`STATISTIC_NAMES` (how titles spell
them), :data:`QUALITY_RATIOS` (the data-quality ratios) and :data:`SEVERITY_CODES` (the value of
:data:`DRIFT_SEVERITY` per verdict).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "CATEGORICAL_STATISTICS",
    "COLUMNS_DROPPED",
    "COLUMN_LABELS",
    "COMPUTE_TIME",
    "CONNECTIONS",
    "CONNECTIONS_CLOSED",
    "DETECTOR_GAUGES",
    "DETECTOR_SERIES",
    "DRIFT_KS_BOUND",
    "DRIFT_SEVERITY",
    "ERROR_TYPE_ATTRIBUTE",
    "ERROR_TYPE_LABEL",
    "EVALUATION_DURATION",
    "FEATURE",
    "FEATURE_ATTRIBUTE",
    "FRAMEWORK_ATTRIBUTE",
    "GPU_MEMORY_LIMIT",
    "GPU_MEMORY_USAGE",
    "GPU_UTILIZATION",
    "HW_ID_ATTRIBUTE",
    "INFERENCE_BATCH_SIZE",
    "INFERENCE_DURATION",
    "INFERENCE_REQUESTS",
    "INPUT_INVALID",
    "INPUT_MISSING",
    "INPUT_VALUES",
    "INSTRUMENTATION_ERRORS",
    "INSTRUMENTS",
    "Instrument",
    "LAST_PROFILE_TIMESTAMP",
    "METRIC_POINTS_RECEIVED",
    "METRIC_POINTS_REJECTED",
    "METRIC_SERIES",
    "MODEL",
    "MODEL_ATTRIBUTE",
    "MODEL_FAILURES",
    "MODEL_LABEL",
    "NUMERIC_STATISTICS",
    "OUTCOME",
    "PHASE",
    "PREDICTION_CLASS",
    "PREDICTION_CLASS_ATTRIBUTE",
    "PREDICTION_VALUES",
    "PROFILES_DUPLICATE",
    "PROFILES_RECEIVED",
    "PROFILES_REJECTED",
    "QUALITY_RATIOS",
    "QUALITY_RULE_VIOLATED",
    "QUEUE_TIME",
    "REASON",
    "RECORDS_IGNORED",
    "REFERENCE_READY",
    "REQUESTS",
    "ROUTE_ATTRIBUTE",
    "RULE",
    "SEVERITY_CODES",
    "SIGNAL",
    "STATE",
    "STATISTICS",
    "STATISTIC_NAMES",
    "STORE_DAMAGED",
    "VERDICT_UNKNOWN",
    "WINDOW",
    "WINDOW_LABELS",
    "WINDOW_ROWS",
    "WINDOW_SAMPLES",
    "WINDOW_STATE",
    "drift",
    "drift_noise",
    "quality",
]

# -- statistics ------------------------------------------------------------------------------------------------

NUMERIC_STATISTICS = ("ks", "d1", "psi", "js", "hellinger", "wasserstein")
"""Statistics computed between numeric columns (see :mod:`servewatch.detectors`)."""
CATEGORICAL_STATISTICS = ("linf", "d1", "psi", "js", "hellinger", "chi2", "cramers_v")
"""Statistics computed between categorical columns."""
STATISTICS = tuple(dict.fromkeys(NUMERIC_STATISTICS + CATEGORICAL_STATISTICS))
"""Every statistic the detector exports as ``servewatch_drift_<name>``, in display order."""
STATISTIC_NAMES = {
    "ks": "KS",
    "d1": "D1",
    "psi": "PSI",
    "js": "JS divergence",
    "hellinger": "Hellinger distance",
    "wasserstein": "Wasserstein distance",
    "linf": "L-infinity",
    "chi2": "chi-squared",
    "cramers_v": "Cramér's V",
}
"""How a statistic is spelled in titles and descriptions."""
QUALITY_RATIOS = ("missing_ratio", "invalid_ratio", "out_of_range_ratio", "not_allowed_ratio", "new_category_ratio")
"""The data-quality ratios the detector exports as ``servewatch_quality_<ratio>``."""
SEVERITY_CODES = {"ok": 0, "warning": 1, "critical": 2}
""":data:`DRIFT_SEVERITY` of each known verdict (an unknown one exports none)."""

# -- the detector's labels -------------------------------------------------------------------------------------

MODEL = "model"
SIGNAL = "signal"
FEATURE = "feature"
WINDOW = "window"
REASON = "reason"
RULE = "rule"
STATE = "state"
COLUMN_LABELS = (MODEL, SIGNAL, FEATURE, WINDOW)
"""The labels of a per-column series."""
WINDOW_LABELS = (MODEL, SIGNAL, WINDOW)
"""The labels of a per-window series."""

# -- the detector's gauges (per column, then per window) -------------------------------------------------------


def drift(statistic: str) -> str:
    """The gauge of ``statistic`` between a window and its reference: ``servewatch_drift_<statistic>``."""
    return f"servewatch_drift_{statistic}"


def drift_noise(statistic: str) -> str:
    """The level sampling noise alone gives ``statistic``: ``servewatch_drift_<statistic>_noise``."""
    return f"{drift(statistic)}_noise"


def quality(ratio: str) -> str:
    """The gauge of a data-quality ratio (:data:`QUALITY_RATIOS`): ``servewatch_quality_<ratio>``."""
    return f"servewatch_quality_{ratio}"


WINDOW_SAMPLES = "servewatch_window_samples"
DRIFT_KS_BOUND = "servewatch_drift_ks_bound"
DRIFT_SEVERITY = "servewatch_drift_severity"
VERDICT_UNKNOWN = "servewatch_verdict_unknown"
QUALITY_RULE_VIOLATED = "servewatch_quality_rule_violated"
WINDOW_ROWS = "servewatch_window_rows"
WINDOW_STATE = "servewatch_window_state"
REFERENCE_READY = "servewatch_detector_reference_ready"

DETECTOR_GAUGES: dict[str, tuple[str, ...]] = {
    WINDOW_SAMPLES: COLUMN_LABELS,
    **{drift(name): COLUMN_LABELS for name in STATISTICS},
    **{drift_noise(name): COLUMN_LABELS for name in STATISTICS},
    DRIFT_KS_BOUND: COLUMN_LABELS,
    DRIFT_SEVERITY: COLUMN_LABELS,
    VERDICT_UNKNOWN: (*COLUMN_LABELS, REASON),
    **{quality(name): COLUMN_LABELS for name in QUALITY_RATIOS},
    QUALITY_RULE_VIOLATED: (*COLUMN_LABELS, RULE),
    WINDOW_ROWS: WINDOW_LABELS,
    WINDOW_STATE: (*WINDOW_LABELS, STATE),
    REFERENCE_READY: WINDOW_LABELS,
}
"""Every gauge of evaluation results and its labels."""

# -- the detector's own activity -------------------------------------------------------------------------------

PROFILES_RECEIVED = "servewatch_detector_profiles_received_total"
PROFILES_REJECTED = "servewatch_detector_profiles_rejected_total"
PROFILES_DUPLICATE = "servewatch_detector_profiles_duplicate_total"
RECORDS_IGNORED = "servewatch_detector_records_ignored_total"
LAST_PROFILE_TIMESTAMP = "servewatch_detector_last_profile_timestamp_seconds"
EVALUATION_DURATION = "servewatch_detector_evaluation_duration_seconds"
REQUESTS = "servewatch_detector_requests_total"
STORE_DAMAGED = "servewatch_detector_store_damaged_total"
COLUMNS_DROPPED = "servewatch_detector_columns_dropped_total"
MODEL_FAILURES = "servewatch_detector_model_failures_total"
METRIC_POINTS_RECEIVED = "servewatch_detector_metric_points_received_total"
METRIC_POINTS_REJECTED = "servewatch_detector_metric_points_rejected_total"
METRIC_SERIES = "servewatch_detector_metric_series"
CONNECTIONS = "servewatch_detector_connections"
CONNECTIONS_CLOSED = "servewatch_detector_connections_closed_total"

DETECTOR_SERIES: dict[str, tuple[str, ...]] = {
    **DETECTOR_GAUGES,
    PROFILES_RECEIVED: (),
    PROFILES_REJECTED: (REASON,),
    PROFILES_DUPLICATE: (),
    RECORDS_IGNORED: (),
    LAST_PROFILE_TIMESTAMP: (MODEL,),
    EVALUATION_DURATION: (),
    REQUESTS: ("path", "code"),
    STORE_DAMAGED: (),
    COLUMNS_DROPPED: (MODEL,),
    MODEL_FAILURES: (MODEL, "stage"),
    METRIC_POINTS_RECEIVED: (),
    METRIC_POINTS_REJECTED: (REASON,),
    METRIC_SERIES: (),
    CONNECTIONS: (),
    CONNECTIONS_CLOSED: (REASON,),
}
"""Every series of the detector's own (``/metrics`` beside the re-exposed serving metrics) and its labels."""

# -- the serving side: OpenTelemetry instruments and their Prometheus names ------------------------------------

MODEL_ATTRIBUTE = "ml.model.name"
MODEL_LABEL = "ml_model_name"
FRAMEWORK_ATTRIBUTE = "ml.framework"
OUTCOME = "outcome"
ROUTE_ATTRIBUTE = "http.route"
FEATURE_ATTRIBUTE = "ml.feature.name"
PREDICTION_CLASS_ATTRIBUTE = "ml.prediction.class"
ERROR_TYPE_ATTRIBUTE = "error.type"
ERROR_TYPE_LABEL = "error_type"
HW_ID_ATTRIBUTE = "hw.id"
PHASE = "phase"


@dataclass(frozen=True)
class Instrument:
    """One OpenTelemetry instrument of the serving side: ``name``, ``kind`` (counter, gauge, histogram),
    ``unit`` and ``prometheus``, its family name once re-exposed (without ``_total``)."""

    name: str
    kind: str
    unit: str
    prometheus: str

    @property
    def total(self) -> str:
        """A counter's series: ``<prometheus>_total``."""
        return f"{self.prometheus}_total"

    @property
    def bucket(self) -> str:
        """A histogram's bucket series: ``<prometheus>_bucket``."""
        return f"{self.prometheus}_bucket"


INFERENCE_DURATION = Instrument("servewatch.inference.duration", "histogram", "s",
                                "servewatch_inference_duration_seconds")
INFERENCE_BATCH_SIZE = Instrument("servewatch.inference.batch.size", "histogram", "{item}",
                                  "servewatch_inference_batch_size")
INFERENCE_REQUESTS = Instrument("servewatch.inference.requests", "counter", "{request}",
                                "servewatch_inference_requests")
QUEUE_TIME = Instrument("servewatch.inference.queue.time", "counter", "s", "servewatch_inference_queue_time_seconds")
COMPUTE_TIME = Instrument("servewatch.inference.compute.time", "counter", "s",
                          "servewatch_inference_compute_time_seconds")
INPUT_VALUES = Instrument("servewatch.input.values", "counter", "{value}", "servewatch_input_values")
INPUT_MISSING = Instrument("servewatch.input.missing", "counter", "{value}", "servewatch_input_missing")
INPUT_INVALID = Instrument("servewatch.input.invalid", "counter", "{value}", "servewatch_input_invalid")
PREDICTION_VALUES = Instrument("servewatch.prediction.values", "counter", "{value}", "servewatch_prediction_values")
PREDICTION_CLASS = Instrument("servewatch.prediction.class", "counter", "{prediction}",
                              "servewatch_prediction_class")
INSTRUMENTATION_ERRORS = Instrument("servewatch.instrumentation.errors", "counter", "{error}",
                                    "servewatch_instrumentation_errors")
GPU_UTILIZATION = Instrument("hw.gpu.utilization", "gauge", "1", "hw_gpu_utilization_ratio")
GPU_MEMORY_USAGE = Instrument("hw.gpu.memory.usage", "gauge", "By", "hw_gpu_memory_usage_bytes")
GPU_MEMORY_LIMIT = Instrument("hw.gpu.memory.limit", "gauge", "By", "hw_gpu_memory_limit_bytes")

INSTRUMENTS = (INFERENCE_DURATION, INFERENCE_BATCH_SIZE, INFERENCE_REQUESTS, QUEUE_TIME, COMPUTE_TIME, INPUT_VALUES,
               INPUT_MISSING, INPUT_INVALID, PREDICTION_VALUES, PREDICTION_CLASS, INSTRUMENTATION_ERRORS,
               GPU_UTILIZATION, GPU_MEMORY_USAGE, GPU_MEMORY_LIMIT)
"""Every instrument of the serving side: the runtime's (:mod:`servewatch.instrumentation.telemetry`), the GPU
gauges (:mod:`servewatch.instrumentation.gpu`) and what the Triton bridge adds (compute time)."""
