"""Every query of a generated dashboard, and Grafana's variables expanded so Prometheus can run it.

Usage::

    from servewatch.dashboards.queries import expand, queries

    for title, ref, expr in queries(document):
        promql = expand(expr, {"model": "fraud", "window": "5m", "feature": ".+"}, rate_interval="1m")

:func:`expand` replaces Grafana's interval macros (``$__rate_interval``, ``$__interval``, ``$__range``) and
the dashboard's variables (``$name``, ``${name}``, ``${name:format}``); a variable it is not given raises
``KeyError``, so a typo in a panel cannot pass for an empty result. For checks: PromQL parsing, ``promtool``,
a live Prometheus.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["expand", "queries", "variable_queries"]

_MACROS = re.compile(r"\$__(rate_interval|interval_ms|interval|range_s|range_ms|range)\b")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def queries(document: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(panel title, refId, expr) of every target of every panel, rows' nested panels included."""
    for panel in document.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                yield inner.get("title", ""), target.get("refId", ""), target.get("expr", "")


def variable_queries(document: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(variable name, PromQL inside ``label_values(...)``) of every query variable."""
    for variable in document.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            match = re.fullmatch(r"label_values\((.*),\s*\w+\)", variable["query"]["query"])
            if match:
                yield variable["name"], match.group(1)


def expand(expr: str, variables: Mapping[str, str], *, rate_interval: str = "1m") -> str:
    """``expr`` with the macros and ``variables`` substituted (``KeyError`` for an unknown variable)."""

    def macro(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in ("rate_interval", "interval", "range"):
            return rate_interval
        return "60" if name.endswith("_s") else "60000"

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        if name not in variables:
            raise KeyError(f"query uses ${name}, which has no value: {expr}")
        return variables[name]

    return _VARIABLE.sub(variable, _MACROS.sub(macro, expr))
