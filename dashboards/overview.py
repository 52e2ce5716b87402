"""The overview dashboard: every model on one page, with links to each model's dashboard.

Usage::

    from servewatch.dashboards.overview import overview_board

    board = overview_board(spec, Config())    # a Board, for render()

What is firing, the worst drift severity of each model over time (or unknown), how many columns drift, how
long since each model's last profile (coloured at each model's own staleness level), then requests, error
ratio and p99 latency per model against the objectives, and the detector's own activity. Variables: ``datasource``,
``model`` (several, default all) and ``window``.
"""

from __future__ import annotations

from servewatch import metrics
from servewatch.monitoring import Config, Matcher, scopes, selector
from servewatch.spec import Spec

from .drift import STATE_MAPPINGS
from .model import time_settings
from .panel import Board, Panel, Row, Target, Variable, tiers
from .serving import RATE, error_ratio, rate

__all__ = ["overview_board"]

_MODELS = Matcher("=~", "$model")


def overview_board(spec: Spec, config: Config) -> Board:
    """The overview of every model."""
    timing = config.timing(spec)
    every = scopes(spec)
    windows = sorted({w for scope in every for w in scope.model.windows}, key=lambda w: w.seconds)
    severity = selector(metrics.DRIFT_SEVERITY, model=_MODELS, window="$window")
    unknown = selector(metrics.WINDOW_STATE, model=_MODELS, state="unknown", window="$window")
    last = selector(metrics.LAST_PROFILE_TIMESTAMP, model=_MODELS)
    catch_all = every[-1]
    stale_levels = tuple(
        (scope.model.name, tiers(critical=timing.stale_after(scope.model))) for scope in every if scope.listed
    )
    buckets = selector(metrics.INFERENCE_DURATION.bucket, ml_model_name=_MODELS)
    received = metrics.PROFILES_RECEIVED
    rejected = metrics.PROFILES_REJECTED
    firing = 'ALERTS{alertname=~"Servewatch.+",alertstate="firing"}'
    models = Row(
        "Models",
        (
            Panel(
                "Firing alerts",
                "servewatch alerts firing now, by alert, model and severity.",
                "none",
                (
                    Target(
                        f"sum by (alertname, model, severity) ({firing})",
                        instant=True,
                    ),
                ),
                kind="table",
                columns=("count",),
                width=12,
            ),
            Panel(
                "Worst drift severity",
                "The most severe column of each model over time, $window window: ok, "
                "warning or critical by the spec's thresholds; unknown where no column has a known verdict "
                "(no traffic, too few values, reference not ready).",
                "none",
                (Target(f"max by (model) ({severity})\nor\n3 * (max by (model) ({unknown}) == 1)", "{{model}}"),),
                kind="state-timeline",
                mappings=STATE_MAPPINGS,
                width=12,
            ),
            Panel(
                "Columns drifting",
                "Columns of each model at warning or worse now, $window window.",
                "short",
                (
                    Target(
                        f"count by (model) ({severity} >= 1) or 0 * count by (model) ({severity})",
                        "{{model}}",
                        instant=True,
                    ),
                ),
                kind="bargauge",
                thresholds=tiers(warning=1),
                min=0,
                width=12,
            ),
            Panel(
                "Time since the last profile",
                "Seconds since the detector last received a profile of each "
                "model; red past the model's staleness level (ServewatchModelProfilesStale).",
                "s",
                (Target(f"time() - max by (model) ({last})", "{{model}}", instant=True),),
                kind="bargauge",
                thresholds=tiers(critical=timing.stale_after(catch_all.model)),
                overrides=stale_levels,
                min=0,
                width=12,
            ),
        ),
    )
    serving = Row(
        "Serving",
        (
            Panel(
                "Requests by model",
                "Requests per second of each model.",
                "reqps",
                (
                    Target(
                        rate(metrics.INFERENCE_REQUESTS.total, "ml_model_name", ml_model_name=_MODELS),
                        "{{ml_model_name}}",
                    ),
                ),
            ),
            Panel(
                "Error ratio by model",
                f"Share of failed requests of each model; dashed: the error budget "
                f"({config.error_budget:g}) and the fast-burn page level.",
                "percentunit",
                (Target(error_ratio("ml_model_name", ml_model_name=_MODELS), "{{ml_model_name}}"),),
                thresholds=tiers(config.error_budget, 14.4 * config.error_budget),
                min=0,
            ),
            Panel(
                "p99 latency by model",
                f"99th percentile of request duration; dashed: the objective ({config.latency_p99:g} s).",
                "s",
                (
                    Target(
                        f"histogram_quantile(0.99, sum by (ml_model_name, le) (rate({buckets}{RATE})))",
                        "{{ml_model_name}}",
                    ),
                ),
                thresholds=tiers(critical=config.latency_p99),
                min=0,
            ),
        ),
    )
    detector = Row(
        "Detector",
        (
            Panel(
                "Profiles",
                "Profiles per second the detector accepted, and rejected by reason.",
                "ops",
                (
                    Target(rate(received), "received"),
                    Target(
                        f"{rate(rejected, 'reason')} or on () 0 * {rate(received)}",
                        "rejected {{reason}}",
                    ),
                ),
                min=0,
            ),
            Panel(
                "Evaluation duration",
                "How long the detector's last evaluation of every window took.",
                "s",
                (
                    Target(
                        f"max by (job, instance) ({metrics.EVALUATION_DURATION})",
                        "{{instance}}",
                    ),
                ),
                min=0,
            ),
            Panel(
                "Instrumentation errors",
                "Failures inside the servewatch instrumentation of serving processes "
                "(never seen by requests), per second.",
                "ops",
                (
                    Target(
                        f"{rate(metrics.INSTRUMENTATION_ERRORS.total, 'job, instance')} or on () "
                        f"0 * {rate(metrics.INFERENCE_REQUESTS.total)}",
                        "{{job}} {{instance}}",
                    ),
                ),
                min=0,
            ),
        ),
    )
    time_from, refresh = time_settings(spec, config)
    variables = (
        Variable("datasource", "Data source", "datasource", "prometheus"),
        Variable(
            "model",
            "Model",
            "query",
            f"label_values({metrics.LAST_PROFILE_TIMESTAMP}, model)",
            multi=True,
            include_all=True,
            default="$__all",
        ),
        Variable("window", "Window", "custom", ",".join(w.name for w in windows), default=windows[0].name),
    )
    return Board(
        "servewatch-overview",
        "servewatch / overview",
        "Every model watched by servewatch: alerts, drift, staleness, serving.",
        (models, serving, detector),
        variables,
        time_from=time_from,
        refresh=refresh,
    )
