"""Every generated dashboard satisfies the JSON schema kept in the repo (what Grafana 11 expects of ours), and
the invariants a schema cannot state: unique panel ids and refIds, panels inside the grid, no overlap."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from servewatch.dashboards import SCHEMA_PATH


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(Path(SCHEMA_PATH).read_text(encoding="utf-8")))


def test_every_dashboard_satisfies_schema_and_invariants(boards, dashboard_problems) -> None:
    _, documents = boards
    assert "servewatch-overview.json" in documents and "servewatch-other-models.json" in documents
    for name, document in documents.items():
        assert dashboard_problems(document) == [], name
    uids = [document["uid"] for document in documents.values()]
    assert len(uids) == len(set(uids))


def _first(document: dict[str, Any], kind: str) -> dict[str, Any]:
    every = [p for top in document["panels"] for p in (top, *top.get("panels", []))]
    return next(panel for panel in every if panel["type"] == kind)


BREAKAGES = {
    "a string datasource (pre-8.3)": lambda d: _first(d, "timeseries").update(datasource="${datasource}"),
    "halved resolution": lambda d: _first(d, "timeseries")["targets"][0].update(intervalFactor=2),
    "an Angular graph panel": lambda d: _first(d, "timeseries").update(type="graph"),
    "thresholds as a string": lambda d: _first(d, "timeseries")["fieldConfig"]["defaults"][
        "thresholds"
    ].update(steps=""),
    "no description": lambda d: _first(d, "heatmap").pop("description"),
    "no unit": lambda d: _first(d, "table")["fieldConfig"]["defaults"].pop("unit"),
    "an empty query": lambda d: _first(d, "timeseries")["targets"][0].update(expr=" "),
    "past the 24 columns": lambda d: _first(d, "timeseries")["gridPos"].update(x=20, w=8),
    "a legacy heatmap": lambda d: _first(d, "heatmap").update(options=[], dataFormat="timeseries"),
    "legacy rows": lambda d: d.update(rows=[]),
    "a duplicate panel id": lambda d: _first(d, "heatmap").update(id=_first(d, "timeseries")["id"]),
    "a duplicate refId": lambda d: [t.update(refId="A") for t in _first(d, "table")["targets"]],
    "a fixed rate window": lambda d: _first(d, "timeseries")["targets"][0].update(
        expr="sum(rate(servewatch_inference_requests_total[5m]))"
    ),
    "overlapping panels": lambda d: _first(d, "heatmap")["gridPos"].update(_first(d, "table")["gridPos"]),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_the_checks_catch(breakage: str, golden_spec, dashboard_problems) -> None:
    from servewatch.dashboards import generate

    document = copy.deepcopy(generate(golden_spec)["servewatch-model-fraud.json"])
    assert dashboard_problems(document) == []
    BREAKAGES[breakage](document)
    assert dashboard_problems(document), breakage
