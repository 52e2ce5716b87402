"""Panels of a model's serving metrics and of the detector's health.

Usage::

    from servewatch.dashboards.serving import serving_panels, health_panels

    Row("Serving", serving_panels(config, timing))
    Row("Detector health", health_panels(model_spec, timing))

Serving panels read the OTel instruments of the instrumentation by their Prometheus names
(``servewatch_inference_*``, ``hw_gpu_*``) for ``ml_model_name="$model"``; every ``rate`` uses
``$__rate_interval``. The error-ratio and latency panels draw the objectives the alert rules enforce (the
same :class:`~servewatch.monitoring.Config`): the error budget and the fast-burn page level, the p99 objective.
Health panels draw the staleness and minimum-sample levels of the model's alerts.
"""

from __future__ import annotations

from servewatch import metrics
from servewatch.monitoring import Config, Matcher, Timing, selector
from servewatch.spec import ModelSpec

from .panel import Panel, Target, tiers

__all__ = ["error_ratio", "health_panels", "rate", "serving_panels"]

RATE = "[$__rate_interval]"
_MODEL = {metrics.MODEL_LABEL: "$model"}


def rate(metric: str, by: str = "", **labels: str | Matcher) -> str:
    """``sum [by (...)] (rate(metric{labels}[$__rate_interval]))``."""
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({selector(metric, **labels)}{RATE}))"


def error_ratio(by: str = "", **labels: str | Matcher) -> str:
    """Failed over all requests; 0 (not nothing) for a model that served requests without an error."""
    requests = metrics.INFERENCE_REQUESTS.total
    total = rate(requests, by, **labels)
    return f"({rate(requests, by, **labels, outcome='error')} or 0 * {total}) / {total}"


def serving_panels(config: Config) -> tuple[Panel, ...]:
    """Request rate, error ratio, latency quantiles and distribution, batch size, queue time, GPU."""
    buckets = metrics.INFERENCE_DURATION.bucket
    quantiles = tuple(
        Target(
            f"histogram_quantile({q}, sum by (le) (rate({selector(buckets, **_MODEL)}{RATE})))",
            f"p{round(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    )
    batch = metrics.INFERENCE_BATCH_SIZE.prometheus
    return (
        Panel(
            "Requests",
            "Requests per second answered by the model, by outcome (ok or error).",
            "reqps",
            (Target(rate(metrics.INFERENCE_REQUESTS.total, "outcome", **_MODEL), "{{outcome}}"),),
            stack="normal",
        ),
        Panel(
            "Error ratio",
            "Share of requests that failed. Dashed lines: the error budget "
            f"({config.error_budget:g}, from the {config.availability * 100:g} % availability objective) and "
            "the fast-burn level (14.4 x budget) at which ServewatchModelErrorBudgetBurn pages.",
            "percentunit",
            (Target(error_ratio(**_MODEL), "error ratio"),),
            min=0,
            thresholds=tiers(config.error_budget, 14.4 * config.error_budget),
        ),
        Panel(
            "Latency",
            f"Request duration quantiles from the {metrics.INFERENCE_DURATION.prometheus} histogram. "
            f"Dashed line: the p99 objective ({config.latency_p99:g} s) of ServewatchModelLatencyHigh.",
            "s",
            quantiles,
            thresholds=tiers(critical=config.latency_p99),
            min=0,
        ),
        Panel(
            "Latency distribution",
            "Requests per latency bucket over time (the histogram itself).",
            "s",
            (Target(f"sum by (le) (increase({selector(buckets, **_MODEL)}{RATE}))", "{{le}}", heatmap=True),),
            kind="heatmap",
        ),
        Panel(
            "Batch size",
            f"Items per inference call: mean and p95 of {metrics.INFERENCE_BATCH_SIZE.prometheus}.",
            "none",
            (
                Target(f"{rate(batch + '_sum', **_MODEL)} / {rate(batch + '_count', **_MODEL)}", "mean"),
                Target(
                    "histogram_quantile(0.95, sum by (le) "
                    f"(rate({selector(batch + '_bucket', **_MODEL)}{RATE})))",
                    "p95",
                ),
            ),
            min=0,
        ),
        Panel(
            "Queue time",
            "Mean time a request waited in the server's queue before inference.",
            "s",
            (
                Target(
                    f"{rate(metrics.QUEUE_TIME.total, **_MODEL)} / "
                    f"{rate(metrics.INFERENCE_REQUESTS.total, **_MODEL)}",
                    "mean queue time",
                ),
            ),
            min=0,
        ),
        Panel(
            "GPU utilisation",
            f"Utilisation of each GPU of the processes serving the model ({metrics.GPU_UTILIZATION.name}).",
            "percentunit",
            (Target(_on_model_hosts(metrics.GPU_UTILIZATION.prometheus), "{{instance}} GPU {{hw_id}}"),),
            min=0,
            max=1,
        ),
        Panel(
            "GPU memory",
            "GPU memory in use and its limit, per GPU of the processes serving the model.",
            "bytes",
            (
                Target(_on_model_hosts(metrics.GPU_MEMORY_USAGE.prometheus), "{{instance}} GPU {{hw_id}} used"),
                Target(_on_model_hosts(metrics.GPU_MEMORY_LIMIT.prometheus), "{{instance}} GPU {{hw_id}} limit"),
            ),
            min=0,
        ),
    )


def _on_model_hosts(metric: str) -> str:
    """``metric`` of the processes that serve ``$model`` (joined on job and instance)."""
    serving = f"group by (job, instance) ({selector(metrics.INFERENCE_REQUESTS.total, **_MODEL)})"
    return f"max by (job, instance, hw_id) ({metric}) and on (job, instance) {serving}"


def health_panels(model: ModelSpec, timing: Timing) -> tuple[Panel, ...]:
    """Profiles received and rejected, time since the last profile, window sizes."""
    received = metrics.PROFILES_RECEIVED
    rejected = metrics.PROFILES_REJECTED
    last = metrics.LAST_PROFILE_TIMESTAMP
    stale = timing.stale_after(model)
    return (
        Panel(
            "Profiles received",
            "Profiles per second the detector accepted, all models (the detector's own counter).",
            "ops",
            (Target(rate(received), "received"),),
            min=0,
        ),
        Panel(
            "Profiles rejected",
            "Profiles per second the detector refused, by reason (0 while it accepts "
            "everything). Sustained rejections fire ServewatchProfilesRejected.",
            "ops",
            (
                Target(
                    f"{rate(rejected, 'reason')} or on () 0 * {rate(received)}",
                    "{{reason}}",
                ),
            ),
            min=0,
        ),
        Panel(
            "Time since the last profile",
            "Seconds since the detector last received a profile of the model. "
            f"Dashed line: {stale:g} s, after which ServewatchModelProfilesStale fires.",
            "s",
            (
                Target(
                    f"time() - {selector(last, model='$model')}",
                    "{{model}}",
                ),
            ),
            thresholds=tiers(critical=stale),
            min=0,
        ),
        Panel(
            "Values per window",
            f"Values each column's $window window holds; below {model.min_samples} "
            "(min_samples, the dashed line) no drift statistic is computed.",
            "short",
            (
                Target(
                    selector(metrics.WINDOW_SAMPLES, model="$model", window="$window"),
                    "{{signal}} {{feature}}",
                ),
            ),
            thresholds=tiers(critical=model.min_samples, below=True),
            min=0,
        ),
    )
