"""The typed panel layer: what a panel shows, independent of how Grafana's JSON spells it.

Usage::

    from servewatch.dashboards.panel import Board, Panel, Row, Target, Variable, tiers

    latency = Panel("Latency", "Request duration quantiles from the histogram.", unit="s",
                    targets=(Target("histogram_quantile(0.99, sum by (le) "
                                    "(rate(x_bucket[$__rate_interval])))", "p99"),),
                    thresholds=tiers(critical=1.0))
    board = Board("servewatch-fraud", "servewatch / fraud", "...", rows=(Row("Serving", (latency,)),))

A :class:`Panel` is a title, a description, a unit, its PromQL :class:`Target` s, a ``kind`` (one of
:data:`KINDS`) and a grid slot (``width`` of Grafana's 24 columns, ``height`` in grid units); rows flow their
panels left to right. :mod:`servewatch.dashboards.render` turns a :class:`Board` into Grafana 11 JSON through
grafanalib, so nothing else in the package touches grafanalib or Grafana's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["KINDS", "Board", "Panel", "Row", "Step", "Target", "Variable", "tiers"]

KINDS = ("timeseries", "stat", "heatmap", "table", "state-timeline", "bargauge")
"""Panel types we emit: all current Grafana 11 core panels (no Angular ``graph``/``singlestat``)."""

GRID_COLUMNS = 24


@dataclass(frozen=True)
class Target:
    """One PromQL query. ``instant`` queries (tables, bar gauges) read the latest value only; a ``heatmap``
    target returns histogram buckets (legend ``{{le}}``)."""

    expr: str
    legend: str = ""
    instant: bool = False
    heatmap: bool = False


@dataclass(frozen=True)
class Step:
    """A threshold step: from ``value`` upwards (None: the base, from minus infinity) the colour ``color``."""

    color: str
    value: float | None


def tiers(
    warning: float | None = None, critical: float | None = None, *, below: bool = False
) -> tuple[Step, ...]:
    """Green, orange from ``warning``, red from ``critical``; ``below`` reverses it (red under the level)."""
    if below:
        level = critical if critical is not None else warning
        return (Step("red", None), Step("green", level)) if level is not None else (Step("green", None),)
    steps = [Step("green", None)]
    if warning is not None:
        steps.append(Step("orange", warning))
    if critical is not None:
        steps.append(Step("red", critical))
    return tuple(steps)


@dataclass(frozen=True)
class Panel:
    """One panel. ``thresholds`` are drawn as dashed lines on a time series and colour every other kind;
    ``mappings`` name values (``(0.0, "ok", "green")``: value, text, colour); ``stack`` is ``"normal"`` or
    ``"percent"``; ``overrides`` maps a series name to its own thresholds (per-column limits in a multi-series
    panel); ``columns`` names a table's value columns, one per target."""

    title: str
    description: str
    unit: str
    targets: tuple[Target, ...]
    kind: str = "timeseries"
    width: int = 8
    height: int = 8
    thresholds: tuple[Step, ...] = ()
    mappings: tuple[tuple[float, str, str], ...] = ()
    stack: str | None = None
    min: float | None = None
    max: float | None = None
    overrides: tuple[tuple[str, tuple[Step, ...]], ...] = ()
    columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.title}: panel kind must be one of {KINDS}, got {self.kind!r}")
        if not 1 <= self.width <= GRID_COLUMNS or self.height < 1:
            raise ValueError(f"{self.title}: width must be 1..{GRID_COLUMNS} and height >= 1")
        if not self.targets or not all(target.expr.strip() for target in self.targets):
            raise ValueError(f"{self.title}: a panel needs at least one non-empty query")
        if not self.title or not self.description or not self.unit:
            raise ValueError(f"panel {self.title!r}: title, description and unit are required")


@dataclass(frozen=True)
class Row:
    """A titled row of panels; a ``collapsed`` row holds its panels until opened (long per-column lists)."""

    title: str
    panels: tuple[Panel, ...]
    collapsed: bool = False


@dataclass(frozen=True)
class Variable:
    """A dashboard variable. ``kind``: ``datasource`` (``query`` is the plugin type), ``query`` (``query`` is
    a ``label_values(...)`` call), ``custom`` (comma-separated values) or ``constant`` (hidden)."""

    name: str
    label: str
    kind: str
    query: str
    default: str | None = None
    multi: bool = False
    include_all: bool = False


@dataclass(frozen=True)
class Board:
    """A whole dashboard: stable ``uid``, title, description, variables and rows (in order)."""

    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    variables: tuple[Variable, ...] = ()
    tags: tuple[str, ...] = ("servewatch",)
    time_from: str = "now-6h"
    refresh: str = "30s"
    links: tuple[str, ...] = field(default=("servewatch",))
