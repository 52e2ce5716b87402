"""Golden files: the rules, unit tests and Alertmanager config generated from golden/servewatch.yaml, so a
change to the generator shows in review. Regenerate after a deliberate change (see golden/README.md)::

    SERVEWATCH_UPDATE_GOLDEN=1 .venv/bin/pytest tests/alerts/test_golden.py tests/dashboards/test_golden.py
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from servewatch.alerts import Config, Receivers, alertmanager_config, dump_yaml, render_rules, rule_tests

from servewatch.spec import load_spec

GOLDEN = Path(__file__).parent / "golden"


def generated() -> dict[str, str]:
    spec = load_spec(GOLDEN / "servewatch.yaml")
    config = Config()
    return {
        "rules.yml": render_rules(spec, config),
        "rules_test.yml": dump_yaml(rule_tests(spec, config, rule_file="rules.yml")),
        "alertmanager.yml": dump_yaml(alertmanager_config(spec, config, Receivers())),
    }


@pytest.mark.parametrize("name", ["rules.yml", "rules_test.yml", "alertmanager.yml"])
def test_matches_golden(name: str) -> None:
    text = generated()[name]
    path = GOLDEN / name
    if os.environ.get("SERVEWATCH_UPDATE_GOLDEN") == "1":
        path.write_text(text)
    expected = path.read_text()
    if text != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), text.splitlines(True), f"golden/{name}", "generated", n=2
            )
        )
        pytest.fail(
            f"{name} differs from the golden file (SERVEWATCH_UPDATE_GOLDEN=1 to accept):\n{diff[:6000]}"
        )
