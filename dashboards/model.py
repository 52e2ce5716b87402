"""The dashboard of one model: serving, inputs, predictions, detector health.

Usage::

    from servewatch.dashboards.model import model_board, uid_of

    board = model_board(spec, Config(), spec.model("fraud"))      # a Board, for render()
    catch_all = model_board(spec, Config(), None)                   # every model the spec does not list

A listed model's dashboard pins ``$model`` (a hidden constant) and draws that model's thresholds; the
catch-all dashboard lets you pick any model the spec does not list and draws the spec's defaults. Variables:
``datasource`` (any Prometheus), ``model``, ``window`` (the model's windows, shortest first) and ``feature``
(filters the multi-column panels; the per-column panels always show their column). The time range and refresh
follow the rules' time scale (6 h and 30 s in production, 6 min and 5 s at 1 s buckets).
"""

from __future__ import annotations

import hashlib
import os
import re

from servewatch import metrics
from servewatch.duration import format_duration
from servewatch.monitoring import Config, Matcher, Scope, scopes, selector
from servewatch.spec import ModelSpec, Spec

from .drift import column_panels, signal_panels
from .panel import Board, Panel, Row, Target, Variable
from .serving import RATE, health_panels, serving_panels

__all__ = ["COLLAPSE_OVER", "model_board", "time_settings", "uid_of"]

COLLAPSE_OVER = 12
"""A row of per-column panels longer than this starts collapsed."""


def uid_of(name: str) -> str:
    """A stable Grafana uid for model ``name``: ``servewatch-model-<name>``, or a slug plus a digest of the
    name where it is not already lower-case ``[a-z0-9-]`` short enough (uids are at most 40 characters)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    uid = f"servewatch-model-{slug}"
    if slug == name and len(uid) <= 40:
        return uid
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    return f"servewatch-model-{slug[:13]}-{digest}".replace("--", "-")


def time_settings(spec: Spec, config: Config) -> tuple[str, str]:
    """(time range start, refresh) at the rules' time scale."""
    timing = config.timing(spec)
    return f"now-{format_duration(timing.scaled(6 * 3600.0))}", format_duration(max(5.0, timing.scaled(30.0)))


def _variables(scope: Scope) -> tuple[Variable, ...]:
    windows = scope.model.windows
    if scope.listed:
        model = Variable("model", "Model", "constant", scope.model.name)
    else:
        last = selector(metrics.LAST_PROFILE_TIMESTAMP, model=scope.label)
        query = f"label_values({last}, model)"
        model = Variable("model", "Model", "query", query)
    return (
        Variable("datasource", "Data source", "datasource", "prometheus"),
        model,
        Variable("window", "Window", "custom", ",".join(w.name for w in windows), default=windows[0].name),
        Variable(
            "feature",
            "Column",
            "query",
            f"label_values({selector(metrics.WINDOW_SAMPLES, model='$model')}, feature)",
            multi=True,
            include_all=True,
            default="$__all",
        ),
    )


def _prediction_panels(scope: Scope) -> tuple[Panel, ...]:
    panels = []
    columns = scope.columns("prediction")
    if not columns or any(not column.is_numeric for column in columns):
        classes = selector(metrics.PREDICTION_CLASS.total, ml_model_name="$model")
        panels.append(
            Panel(
                "Class mix",
                f"Share of each predicted class over time ({metrics.PREDICTION_CLASS.name}; the top classes, "
                "the rest as other).",
                "percentunit",
                (Target(f"sum by (ml_prediction_class) (rate({classes}{RATE}))", "{{ml_prediction_class}}"),),
                stack="percent",
                width=12,
            )
        )
    numeric = [column for column in columns if column.is_numeric] if columns else [None]
    for column in numeric:
        feature: str | Matcher = column.name if column is not None else Matcher("=~", "$feature")
        name = column.name if column is not None else "numeric predictions"
        panels.append(
            Panel(
                f"{name} · shift (Wasserstein)",
                "How far the prediction's distribution moved from the reference, "
                "in the prediction's own units (Wasserstein-1 distance between the window and the reference; "
                "the "
                "mean absolute shift of its quantiles).",
                "none",
                (
                    Target(
                        selector(
                            metrics.drift("wasserstein"),
                            model="$model",
                            signal="prediction",
                            feature=feature,
                        ),
                        "{{feature}} {{window}}",
                    ),
                ),
                width=12,
                min=0,
            )
        )
    return (*panels, *signal_panels(scope, "prediction"))


def model_board(spec: Spec, config: Config, model: ModelSpec | None) -> Board:
    """The dashboard of listed ``model``, or (None) of the models the spec does not list."""
    scope = next(s for s in scopes(spec) if (s.model is model if model is not None else not s.listed))
    timing = config.timing(spec)
    time_from, refresh = time_settings(spec, config)
    inputs, predictions = column_panels(scope, "input"), column_panels(scope, "prediction")
    rows = [
        Row("Serving", serving_panels(config)),
        Row("Inputs", signal_panels(scope, "input")),
        Row(
            "Input drift by feature" if scope.columns("input") else "Input drift",
            inputs,
            collapsed=len(inputs) > COLLAPSE_OVER,
        ),
        Row("Predictions", _prediction_panels(scope)),
        Row(
            "Prediction drift by column" if scope.columns("prediction") else "Prediction drift",
            predictions,
            collapsed=len(predictions) > COLLAPSE_OVER,
        ),
        Row("Detector health", health_panels(scope.model, timing)),
    ]
    if model is not None:
        title, uid = f"servewatch / {model.name}", uid_of(model.name)
        description = (
            f"Serving, drift and data quality of model {model.name}; thresholds from the spec "
            f"({os.path.basename(spec.path) if spec.path else 'defaults'})."
        )
    else:
        title, uid = "servewatch / other models", "servewatch-other-models"
        description = "Serving, drift and data quality of the models the spec does not list, at its defaults."
    return Board(
        uid,
        title,
        description,
        tuple(row for row in rows if row.panels),
        _variables(scope),
        time_from=time_from,
        refresh=refresh,
    )
