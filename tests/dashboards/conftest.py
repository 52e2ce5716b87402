"""Fixtures of the dashboard tests: the specs of tests/alerts (golden, compressed, awkward names, empty) and
their generated dashboards."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from servewatch.alerts import Config
from servewatch.dashboards import SCHEMA_PATH, generate

from servewatch.spec import Spec, load_spec

SPECS = Path(__file__).parents[1] / "alerts"
GOLDEN_SPEC = SPECS / "golden" / "servewatch.yaml"


def _spec(name: str) -> Spec:
    if name == "empty":
        return Spec()
    return load_spec(GOLDEN_SPEC if name == "golden" else SPECS / "specs" / f"{name}.yaml")


@pytest.fixture(scope="session")
def golden_spec() -> Spec:
    return _spec("golden")


@pytest.fixture(scope="session", params=["golden", "fast", "awkward", "empty"])
def boards(request: pytest.FixtureRequest) -> tuple[Spec, dict[str, dict[str, Any]]]:
    """A spec and every dashboard generated from it (by file name)."""
    spec = _spec(request.param)
    return spec, generate(spec, Config())


SCHEMA = json.loads(Path(SCHEMA_PATH).read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _panels(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in document["panels"]:
        found.append(panel)
        found += panel.get("panels", [])
    return found


def _problems(document: dict[str, Any]) -> list[str]:
    """Schema errors plus the cross-item invariants."""
    found = [
        f"{list(error.absolute_path)}: {error.message[:160]}" for error in VALIDATOR.iter_errors(document)
    ]
    every = _panels(document)
    ids = [panel["id"] for panel in every]
    if len(ids) != len(set(ids)):
        found.append(f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}")
    for panel in every:
        grid = panel["gridPos"]
        if grid["x"] + grid["w"] > 24:
            found.append(f"{panel['title']}: outside the 24 columns")
        refs = [target["refId"] for target in panel.get("targets", [])]
        if len(refs) != len(set(refs)):
            found.append(f"{panel['title']}: duplicate refIds {refs}")
        for target in panel.get("targets", []):
            if re.search(r"\b(rate|irate|increase)\([^)]*\[(?!\$__rate_interval\])", target["expr"]):
                found.append(f"{panel['title']}: rate/increase without $__rate_interval: {target['expr']}")
    # What is on screen at once: the top level, and each collapsed row's panels once it is opened.
    layers = [document["panels"]] + [panel["panels"] for panel in document["panels"] if panel.get("panels")]
    for layer in layers:
        cells: dict[tuple[int, int], str] = {}
        for panel in layer:
            grid = panel["gridPos"]
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    if (x, y) in cells:
                        found.append(f"{panel['title']} overlaps {cells[(x, y)]}")
                    cells[(x, y)] = panel["title"]
    return found


@pytest.fixture(scope="session")
def dashboard_problems() -> Callable[[dict[str, Any]], list[str]]:
    """``dashboard_problems(document)``: every violation of the schema and of the cross-item invariants."""
    return _problems
