"""Grafana-7-era dashboard JSON (grafanalib's) brought to the shape Grafana 11 writes itself.

Usage::

    from servewatch.dashboards.shape import SCHEMA_VERSION, modernize

    document = modernize(json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder)))
    document["schemaVersion"] == SCHEMA_VERSION     # 39 (Grafana 11.0): Grafana runs no migration on load

What changes, in place: legacy keys go (the dashboard's ``rows``, ``style``, ...; a panel's ``span``,
``height``, ``maxDataPoints``, ...; a target's ``interval``, ``step``, ...) and a row panel keeps only a row's
keys; the dashboard gets ``schemaVersion`` 39, the built-in annotations and the keys Grafana 11 adds; panels
get ``pluginVersion`` 11.0.0, targets the code editor and ``range``; heatmaps and bar gauges get their current
options instead of the legacy ones; a variable's ``current`` is what Grafana stores (nothing, or ``All`` as a
list), and null keys of variables and field defaults go.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PLUGIN_VERSION", "SCHEMA_VERSION", "modernize"]

SCHEMA_VERSION = 39
PLUGIN_VERSION = "11.0.0"
_LEGACY_PANEL_KEYS = (
    "cacheTimeout",
    "error",
    "height",
    "span",
    "minSpan",
    "maxDataPoints",
    "editable",
    "hideTimeOverride",
    "repeatDirection",
    "maxPerRow",
    "thresholds",
    "columns",
    "fontSize",
    "mappings",
    "color",
    "timeFrom",
    "timeShift",
    "interval",
    "repeat",
)
_LEGACY_TARGET_KEYS = ("query", "target", "metric", "step", "hide", "interval")


def modernize(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (grafanalib's dashboard JSON) brought to Grafana 11's shape, in place; returns it."""
    for key in ("rows", "style", "sharedCrosshair", "hideControls", "gnetId", "__inputs"):
        document.pop(key, None)
    document.update(
        schemaVersion=SCHEMA_VERSION,
        fiscalYearStartMonth=0,
        liveNow=False,
        weekStart="",
        timepicker={},
        version=1,
        id=None,
    )
    document["annotations"] = {
        "list": [
            {
                "builtIn": 1,
                "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                "enable": True,
                "hide": True,
                "iconColor": "rgba(0, 211, 255, 1)",
                "name": "Annotations & Alerts",
                "type": "dashboard",
            }
        ]
    }
    for variable in document["templating"]["list"]:
        _variable_shape(variable)
    for panel in document["panels"]:
        _panel_shape(panel)
        for child in panel.get("panels", []):
            _panel_shape(child)
    return document


def _variable_shape(variable: dict[str, Any]) -> None:
    for key in ("auto", "auto_count", "auto_min", "useTags", "tagsQuery", "tagValuesQuery"):
        variable.pop(key, None)
    current = {key: value for key, value in variable["current"].items() if key != "tags"}
    if current.get("value") is None:
        current = {}
    elif current["value"] == "$__all":
        current = {"selected": True, "text": ["All"], "value": ["$__all"]}
    variable["current"] = current
    if variable["type"] == "query":
        variable["definition"] = variable["query"]["query"]
        variable["regex"] = ""
    if variable["type"] == "datasource":
        variable.pop("datasource", None)
        variable["regex"] = ""
        variable["refresh"] = 1
    if variable["type"] in ("custom", "constant"):
        variable.pop("datasource", None)
    for key in [key for key, value in variable.items() if value is None]:
        del variable[key]


def _panel_shape(panel: dict[str, Any]) -> None:
    for key in _LEGACY_PANEL_KEYS:
        panel.pop(key, None)
    if panel["type"] == "row":
        panel.pop("datasource", None)
        panel.pop("targets", None)
        panel.pop("fieldConfig", None)
        panel.pop("transformations", None)
        panel.pop("description", None)
        panel.pop("links", None)
        panel.pop("transparent", None)
        return
    panel["pluginVersion"] = PLUGIN_VERSION
    for target in panel.get("targets", []):
        for key in _LEGACY_TARGET_KEYS:
            target.pop(key, None)
        target["editorMode"] = "code"
        target["range"] = not target["instant"]
    defaults = panel["fieldConfig"]["defaults"]
    if "legend" in panel.get("options", {}) and isinstance(panel["options"]["legend"], dict):
        panel["options"]["legend"]["showLegend"] = True
    if panel["type"] == "heatmap":
        _heatmap_shape(panel)
    if panel["type"] == "bargauge":
        _bargauge_shape(panel)
    for mapping in (defaults, defaults.get("custom", {})):
        for key in [key for key, value in mapping.items() if value is None]:
            del mapping[key]


def _heatmap_shape(panel: dict[str, Any]) -> None:
    for key in (
        "cards",
        "color",
        "dataFormat",
        "heatmap",
        "hideZeroBuckets",
        "highlightCards",
        "legend",
        "reverseYBuckets",
        "tooltip",
        "xAxis",
        "xBucketNumber",
        "xBucketSize",
        "yAxis",
        "yBucketBound",
        "yBucketNumber",
        "yBucketSize",
    ):
        panel.pop(key, None)
    panel["options"] = {
        "calculate": False,
        "cellGap": 1,
        "cellValues": {},
        "exemplars": {"color": "rgba(255,0,255,0.7)"},
        "filterValues": {"le": 1e-9},
        "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "showValue": "never",
        "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": False},
        "yAxis": {"axisPlacement": "left", "reverse": False},
        "color": {
            "mode": "scheme",
            "scheme": "Oranges",
            "exponent": 0.5,
            "fill": "dark-orange",
            "reverse": False,
            "scale": "exponential",
            "steps": 64,
        },
    }
    panel["fieldConfig"]["defaults"]["custom"] = {
        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "scaleDistribution": {"type": "linear"},
    }


def _bargauge_shape(panel: dict[str, Any]) -> None:
    panel["options"] = {
        "displayMode": "gradient",
        "orientation": "horizontal",
        "showUnfilled": True,
        "valueMode": "color",
        "namePlacement": "auto",
        "sizing": "auto",
        "minVizHeight": 16,
        "minVizWidth": 8,
        "maxVizHeight": 300,
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": False},
    }
