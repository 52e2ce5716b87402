"""Serving and detector-health rules: error-budget burn, p99 latency, silent models, the detector itself.

Usage::

    from servewatch.alerts.serving import BURN_RATE_TIERS, serving_rules, detector_alerts

    recordings, alerts = serving_rules(config, timing)

Errors: the multi-window, multi-burn-rate alert of the SRE workbook on
``servewatch_inference_requests_total{outcome="error"}``. Each tier (severity, ``for``, long window, short
window, factor) pages when both windows burn the budget ``factor`` times faster than the availability
objective allows; the long window proves it matters, the short one that it is still going on. The error ratio
of each window is a recording rule
(``job_ml_model_name:servewatch_inference_errors_per_requests:ratio_rate5m``) used by two tiers. A model
that has served requests but no errors gets a 0, not nothing.
Latency: ``histogram_quantile(0.99, ...)`` of ``servewatch_inference_duration_seconds`` above the objective.
Serving alerts also carry the ``model`` label (copied from ``ml_model_name``) so Alertmanager groups and
inhibits them like the detector's.
"""

from __future__ import annotations

from servewatch import metrics
from servewatch.duration import format_duration
from servewatch.monitoring import Config, Scope, Timing, selector

from .rule import Alert, Recording

__all__ = [
    "BURN_RATE_TIERS",
    "ERROR_RATIO",
    "detector_alerts",
    "error_ratio_record",
    "serving_rules",
    "stale_alert",
    "traffic_alert",
]

BURN_RATE_TIERS = (
    ("critical", 120.0, 3600.0, 300.0, 14.4),
    ("critical", 900.0, 6 * 3600.0, 1800.0, 6.0),
    ("warning", 3600.0, 86400.0, 7200.0, 3.0),
    ("warning", 3 * 3600.0, 3 * 86400.0, 6 * 3600.0, 1.0),
)
"""(severity, for, long window, short window, burn factor) at production scale (SRE workbook, table 5-8)."""

ERROR_RATIO = "job_ml_model_name:servewatch_inference_errors_per_requests:ratio_rate"
REQUESTS = metrics.INFERENCE_REQUESTS.total
_BY = "job, ml_model_name"


def error_ratio_record(timing: Timing, window: float) -> str:
    """The recording rule's name for a production ``window`` (its suffix is the window actually used)."""
    return ERROR_RATIO + format_duration(timing.window(window))


def _with_model(expr: str) -> str:
    return f'label_replace(\n  {expr},\n  "model", "$1", "ml_model_name", "(.*)"\n)'


def serving_rules(config: Config, timing: Timing) -> tuple[list[Recording], list[Alert]]:
    """The error-ratio recording rules, the burn-rate alerts and the latency alert."""
    windows = sorted({w for tier in BURN_RATE_TIERS for w in tier[2:4]})
    recordings = []
    for window in windows:
        span = format_duration(timing.window(window))
        errors = f"sum by ({_BY}) (rate({selector(REQUESTS, outcome='error')}[{span}]))"
        total = f"sum by ({_BY}) (rate({REQUESTS}[{span}]))"
        recordings.append(
            Recording(
                error_ratio_record(timing, window), f"(\n  {errors}\n  or\n  0 * {total}\n)\n/\n{total}"
            )
        )
    alerts = []
    budget = config.error_budget
    for severity, hold, long, short, factor in BURN_RATE_TIERS:
        limit = f"({factor:g} * {budget:g})"
        condition = (
            f"{error_ratio_record(timing, long)} > {limit}\n  and\n  "
            f"{error_ratio_record(timing, short)} > {limit}"
        )
        long_text, short_text = format_duration(timing.window(long)), format_duration(timing.window(short))
        alerts.append(
            Alert(
                "ServewatchModelErrorBudgetBurn",
                _with_model(condition),
                severity,
                "A model is burning its error budget too fast.",
                f"Model {{{{ $labels.model }}}} failed {{{{ $value | humanizePercentage }}}} of its requests "
                "over "
                f"the last {long_text} (and over {short_text}): {factor:g} times the rate its "
                f"{config.availability * 100:g} % availability objective allows.",
                for_=timing.scaled(hold),
                labels={"long": long_text, "short": short_text},
            )
        )
    span = format_duration(timing.window(300.0))
    quantile = (
        f"histogram_quantile(0.99, sum by ({_BY}, le) "
        f"(rate({metrics.INFERENCE_DURATION.bucket}[{span}])))"
    )
    alerts.append(
        Alert(
            "ServewatchModelLatencyHigh",
            _with_model(f"{quantile} > {config.latency_p99:g}"),
            "warning",
            "A model answers slower than its latency objective.",
            f"The 99th percentile of request duration of model {{{{ $labels.model }}}} over {span} is "
            f'{{{{ printf "%.3g" $value }}}} s, above the objective of {config.latency_p99:g} s.',
            for_=timing.scaled(600.0),
        )
    )
    return recordings, alerts


def stale_alert(scope: Scope, timing: Timing) -> Alert:
    """No profile of a model for longer than its shortest window: its drift gauges describe the past."""
    stale = timing.stale_after(scope.model)
    last = selector(metrics.LAST_PROFILE_TIMESTAMP, model=scope.label)
    return Alert(
        "ServewatchModelProfilesStale",
        f"time() - {last} > {stale:g}",
        "warning",
        "Profiles of a model stopped arriving at the detector.",
        f"The detector has received no profile of model {{{{ $labels.model }}}} for "
        f'{{{{ printf "%.0f" $value }}}} s (more than {format_duration(stale)}): its drift and data-quality '
        "gauges are out of date.",
        for_=timing.drift_for(scope.model),
        labels=scope.labels,
    )


def traffic_alert(scope: Scope, timing: Timing) -> Alert:
    """A model whose shortest window holds no rows now, though it held some within the lookback: its traffic
    stopped (the detector's own count, so it sees a server that still sends empty profiles as well as one
    that sends none). Its drift verdicts are unknown meanwhile; the drift alerts hold."""
    shortest = min(scope.model.windows, key=lambda window: window.seconds)
    rows = selector(metrics.WINDOW_ROWS, model=scope.label, window=shortest.name)
    lookback = format_duration(timing.traffic_lookback(scope.model))
    return Alert(
        "ServewatchModelTrafficStopped",
        f"max without (signal) ({rows}) == 0\nand\nmax without (signal) (max_over_time({rows}[{lookback}])) > 0",
        "critical",
        "A model stopped receiving the traffic it used to receive.",
        f"The {shortest.name} window of model {{{{ $labels.model }}}} holds no rows, though it held some "
        f"within the last {lookback}: the model receives no traffic (or its profiles stopped), and its "
        "drift verdicts are unknown.",
        for_=timing.drift_for(scope.model),
        labels=scope.labels,
    )


def detector_alerts(config: Config, timing: Timing) -> list[Alert]:
    """The detector down or not scraped; profiles rejected; the instrumentation failing inside servers."""
    up = selector("up", job=config.detector_job)
    span = format_duration(timing.window(900.0))
    return [
        Alert(
            "ServewatchDetectorDown",
            f"{up} == 0\nor\nabsent({up})",
            "critical",
            "The servewatch detector is down or not scraped.",
            f"Prometheus cannot scrape job {config.detector_job} (instance {{{{ $labels.instance }}}}): "
            "drift, "
            "data quality and the serving metrics it relays are not being measured.",
            for_=timing.scaled(300.0),
        ),
        Alert(
            "ServewatchProfilesRejected",
            f"sum by (job, reason) (rate({metrics.PROFILES_REJECTED}[{span}])) > 0",
            "warning",
            "The detector is rejecting profiles.",
            f'Detector job {{{{ $labels.job }}}} rejected {{{{ printf "%.3g" $value }}}} profiles per second '
            f"over {span} for reason {{{{ $labels.reason }}}}: the drift of their models is computed from "
            "less data.",
            for_=timing.scaled(900.0),
        ),
        Alert(
            "ServewatchInstrumentationErrors",
            f"sum by (job, instance, error_type) (rate({metrics.INSTRUMENTATION_ERRORS.total}[{span}])) > 0",
            "warning",
            "The servewatch instrumentation is failing inside a serving process.",
            f"The instrumentation of {{{{ $labels.job }}}} {{{{ $labels.instance }}}} failed at "
            f'{{{{ $labels.error_type }}}} {{{{ printf "%.3g" $value }}}} times per second over {span}; '
            "requests are served, but their metrics or profiles are incomplete.",
            for_=timing.scaled(900.0),
        ),
    ]
