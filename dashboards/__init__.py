"""Grafana dashboards from a spec: one per model, one for the models it does not list, and an overview.

Usage::

    from servewatch import load_spec
    from servewatch.monitoring import Config
    from servewatch.dashboards import generate, write

    spec = load_spec("servewatch.yaml")
    documents = generate(spec, Config())          # {"servewatch-model-fraud.json": {...}, ...}
    write(spec, "out/dashboards", Config())       # the JSON files and servewatch-dashboards.yaml beside them

Or ``servewatch dashboards --spec servewatch.yaml -o out/`` (see :mod:`servewatch.dashboards.cli`). Panels
are declared with the typed layer of :mod:`servewatch.dashboards.panel` and rendered through grafanalib into
the JSON Grafana 11 expects (:mod:`servewatch.dashboards.render`); thresholds come from the spec and the
objectives of :class:`servewatch.monitoring.Config`, the values the alert rules enforce. The JSON schema the
output satisfies is ``dashboard.schema.json`` in this package (:data:`SCHEMA_PATH`).
"""

from __future__ import annotations

import os
from typing import Any

from servewatch.monitoring import Config
from servewatch.spec import Spec

from .grafana import provisioning, upload
from .model import model_board, uid_of
from .overview import overview_board
from .render import render, to_json

__all__ = [
    "PROVISIONING_FILE",
    "SCHEMA_PATH",
    "generate",
    "provisioning",
    "render",
    "to_json",
    "uid_of",
    "upload",
    "write",
]

SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "dashboard.schema.json")
"""The JSON Schema every generated dashboard satisfies (checked by the tests)."""
PROVISIONING_FILE = "servewatch-dashboards.yaml"


def generate(spec: Spec, config: Config | None = None) -> dict[str, dict[str, Any]]:
    """Every dashboard of ``spec``, by file name (``<uid>.json``): overview, listed models, other models."""
    config = config or Config()
    boards = [
        overview_board(spec, config),
        *(model_board(spec, config, m) for m in spec.models),
        model_board(spec, config, None),
    ]
    return {f"{board.uid}.json": render(board) for board in boards}


def write(
    spec: Spec, directory: str, config: Config | None = None, *, provisioning_path: str | None = None
) -> list[str]:
    """Write the dashboards and the provisioning YAML into ``directory``; returns the paths written.

    ``provisioning_path`` is the folder as Grafana will see it (default: ``directory``, absolute)."""
    os.makedirs(directory, exist_ok=True)
    written = []
    for name, document in generate(spec, config).items():
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(to_json(document))
        written.append(path)
    path = os.path.join(directory, PROVISIONING_FILE)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(provisioning(provisioning_path or os.path.abspath(directory)))
    written.append(path)
    return written
