"""A :class:`~servewatch.dashboards.panel.Board` as the JSON Grafana 11 expects, built with grafanalib.

Usage::

    from servewatch.dashboards.render import render, to_json

    document = render(board)         # a dict: the dashboard model
    text = to_json(document)         # deterministic: sorted keys, 2-space indent, trailing newline

grafanalib (0.7.1, frozen upstream) builds the panels, targets, variables and the dashboard, here with
datasource references as ``{"type": "prometheus", "uid": "${datasource}"}`` objects on panels, targets and
variables, threshold steps as lists and ``intervalFactor: 1`` (grafanalib's 2 halves the resolution). Its
output is Grafana-7-era JSON, so :func:`render` then brings it to what Grafana 11 writes itself
(:func:`~servewatch.dashboards.shape.modernize`: current heatmap and bar-gauge options, no legacy keys,
``schemaVersion`` 39). Panel ids are assigned in order and grid positions flow each row's panels left to right
over the 24 columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import count
from typing import Any

import grafanalib.core as G
from grafanalib._gen import DashboardEncoder

from .panel import GRID_COLUMNS, Board, Panel, Row, Step, Variable
from .shape import SCHEMA_VERSION, modernize

__all__ = ["DATASOURCE", "SCHEMA_VERSION", "render", "to_json"]

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
"""Every panel, target and query variable reads from the dashboard's ``datasource`` variable."""


def render(board: Board) -> dict[str, Any]:
    """The Grafana dashboard model of ``board``."""
    ids = count(1)
    panels: list[Any] = []
    y = 0
    for row in board.rows:
        header = G.RowPanel(
            title=row.title,
            collapsed=row.collapsed,
            id=next(ids),
            gridPos=G.GridPos(h=1, w=GRID_COLUMNS, x=0, y=y),
        )
        y += 1
        children = []
        for panel, (x, py) in zip(row.panels, _flow(row, y)):
            children.append(_panel(panel, next(ids), G.GridPos(h=panel.height, w=panel.width, x=x, y=py)))
        bottom = max((py + p.height for p, (_, py) in zip(row.panels, _flow(row, y))), default=y)
        if row.collapsed:
            header = G.RowPanel(
                title=row.title, collapsed=True, id=header.id, gridPos=header.gridPos, panels=children
            )
            panels.append(header)
        else:
            panels += [header, *children]
            y = bottom
    dashboard = G.Dashboard(
        title=board.title,
        uid=board.uid,
        description=board.description,
        panels=panels,
        tags=list(board.tags),
        templating=G.Templating(list=[_variable(v) for v in board.variables]),
        time=G.Time(board.time_from, "now"),
        refresh=board.refresh,
        timezone="browser",
        graphTooltip=G.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
        links=[
            G.DashboardLink(
                asDropdown=True,
                includeVars=False,
                keepTime=True,
                tags=list(board.links),
                title="servewatch",
                type="dashboards",
            )
        ]
        if board.links
        else [],
    )
    document = json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))
    return modernize(document)


def to_json(document: dict[str, Any]) -> str:
    """Deterministic JSON text of a dashboard (sorted keys, so regenerating changes nothing)."""
    return json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


# -- layout -------------------------------------------------------------------------------------------------


def _flow(row: Row, top: int) -> Iterator[tuple[int, int]]:
    """(x, y) of each panel: left to right, wrapping to a new line when the next one does not fit."""
    x, y, line = 0, top, 0
    for panel in row.panels:
        if x + panel.width > GRID_COLUMNS:
            x, y, line = 0, y + line, 0
        yield x, y
        x += panel.width
        line = max(line, panel.height)


# -- grafanalib objects -------------------------------------------------------------------------------------


def _targets(panel: Panel) -> list[G.Target]:
    targets = []
    for ref, target in zip(_ref_ids(), panel.targets):
        fmt = "heatmap" if target.heatmap else ("table" if panel.kind == "table" else "time_series")
        targets.append(
            G.Target(
                expr=target.expr,
                legendFormat=target.legend,
                refId=ref,
                instant=target.instant,
                intervalFactor=1,
                format=fmt,
                datasource=DATASOURCE,
            )
        )
    return targets


def _ref_ids() -> Iterator[str]:
    for i in count():
        yield chr(ord("A") + i % 26) * (1 + i // 26)


def _steps(steps: tuple[Step, ...]) -> list[dict[str, Any]]:
    return [{"color": step.color, "value": step.value} for step in (steps or (Step("green", None),))]


def _mappings(panel: Panel) -> list[dict[str, Any]]:
    if not panel.mappings:
        return []
    options = {
        f"{value:g}": {"color": color, "index": i, "text": text}
        for i, (value, text, color) in enumerate(panel.mappings)
    }
    return [{"type": "value", "options": options}]


def _field_config(panel: Panel) -> dict[str, Any]:
    """What grafanalib cannot say for every kind: unit, bounds, threshold steps, per-series overrides."""
    defaults: dict[str, Any] = {
        "unit": panel.unit,
        "thresholds": {"mode": "absolute", "steps": _steps(panel.thresholds)},
        "mappings": _mappings(panel),
    }
    if panel.min is not None:
        defaults["min"] = panel.min
    if panel.max is not None:
        defaults["max"] = panel.max
    if panel.kind != "timeseries":
        defaults["color"] = {"mode": "thresholds"}
    overrides = [
        {
            "matcher": {"id": "byName", "options": name},
            "properties": [{"id": "thresholds", "value": {"mode": "absolute", "steps": _steps(steps)}}],
        }
        for name, steps in panel.overrides
    ]
    return {"fieldConfig": {"defaults": defaults, "overrides": overrides}}


def _panel(panel: Panel, panel_id: int, grid: G.GridPos) -> Any:
    common: dict[str, Any] = {
        "title": panel.title,
        "description": panel.description,
        "dataSource": DATASOURCE,
        "targets": _targets(panel),
        "id": panel_id,
        "gridPos": grid,
        "extraJson": _field_config(panel),
    }
    if panel.kind == "timeseries":
        return G.TimeSeries(
            **common,
            thresholdsStyleMode="dashed" if panel.thresholds else "off",
            stacking={"group": "A", "mode": panel.stack or "none"},
            fillOpacity=30 if panel.stack else 10,
            legendDisplayMode="list",
            tooltipMode="multi",
            tooltipSort="desc",
        )
    if panel.kind == "stat":
        return G.Stat(**common, reduceCalc="lastNotNull", colorMode="value", graphMode="area")
    if panel.kind == "state-timeline":
        return G.StateTimeline(**common)
    if panel.kind == "table":
        return G.Table(**common, transformations=_table(panel))
    if panel.kind == "heatmap":
        return G.Heatmap(**common)
    return G.BarGauge(**common, calc="lastNotNull")


def _table(panel: Panel) -> list[dict[str, Any]]:
    """Instant queries merged into one row per series; values renamed after ``columns``, Time hidden."""
    names = {f"Value #{ref}": name for ref, name in zip(_ref_ids(), panel.columns)}
    return [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {
                "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True},
                "renameByName": names,
            },
        },
    ]


def _variable(variable: Variable) -> G.Template:
    if variable.kind == "datasource":
        return G.Template(
            name=variable.name,
            label=variable.label,
            type="datasource",
            query=variable.query,
            default=variable.default,
        )
    if variable.kind == "query":
        return G.Template(
            name=variable.name,
            label=variable.label,
            type="query",
            dataSource=DATASOURCE,
            query={
                "qryType": 1,
                "query": variable.query,
                "refId": "PrometheusVariableQueryEditor-VariableQuery",
            },
            default=variable.default,
            multi=variable.multi,
            includeAll=variable.include_all,
            allValue=".+" if variable.include_all else None,
            refresh=G.REFRESH_ON_TIME_RANGE_CHANGE,
        )
    if variable.kind == "constant":
        return G.Template(
            name=variable.name,
            label=variable.label,
            type="constant",
            query=variable.query,
            default=variable.query,
            hide=G.HIDE_VARIABLE,
        )
    return G.Template(
        name=variable.name,
        label=variable.label,
        type="custom",
        query=variable.query,
        default=variable.default,
    )
