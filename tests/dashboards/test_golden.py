"""Golden dashboards of tests/alerts/golden/servewatch.yaml, so changes to the JSON show in review.
Regenerate after a deliberate change (see tests/alerts/golden/README.md)::

    SERVEWATCH_UPDATE_GOLDEN=1 .venv/bin/pytest tests/alerts/test_golden.py tests/dashboards/test_golden.py
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from servewatch.alerts import Config
from servewatch.dashboards import PROVISIONING_FILE, generate, provisioning, to_json

GOLDEN = Path(__file__).parent / "golden"
PROVISIONING_PATH = "/var/lib/grafana/dashboards/servewatch"


def test_matches_golden(golden_spec) -> None:
    files = {name: to_json(document) for name, document in generate(golden_spec, Config()).items()}
    files[PROVISIONING_FILE] = provisioning(PROVISIONING_PATH)
    if os.environ.get("SERVEWATCH_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        for stale in GOLDEN.iterdir():
            if stale.name not in files:
                stale.unlink()
        for name, text in files.items():
            (GOLDEN / name).write_text(text)
    assert sorted(path.name for path in GOLDEN.iterdir()) == sorted(files)
    for name, text in files.items():
        expected = (GOLDEN / name).read_text()
        if text != expected:
            diff = "".join(
                difflib.unified_diff(
                    expected.splitlines(True), text.splitlines(True), f"golden/{name}", "generated", n=2
                )
            )
            pytest.fail(
                f"{name} differs from the golden file (SERVEWATCH_UPDATE_GOLDEN=1 to accept):\n{diff[:6000]}"
            )
