"""Every panel query is PromQL once Grafana's variables are substituted: parsed by promql-parser and by
Prometheus' own parser (promtool, through a throwaway rule file); and the lines panels draw are the levels the
alert rules enforce."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from servewatch.alerts import Config, rule_groups
from servewatch.dashboards import generate
from servewatch.dashboards.queries import expand, queries, variable_queries

from servewatch.spec import parse_spec

VALUES = {"model": "fraud", "window": "5m", "feature": ".+", "datasource": "prometheus"}


def expanded(documents: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    found = []
    for name, document in documents.items():
        for title, ref, expr in queries(document):
            found.append((f"{name}: {title} {ref}", expr, expand(expr, VALUES, rate_interval="1m")))
        for variable, expr in variable_queries(document):
            found.append((f"{name}: ${variable}", expr, expand(expr, VALUES)))
    return found


def test_every_query_parses_after_substitution(boards) -> None:
    _, documents = boards
    found = expanded(documents)
    assert len(found) > 40
    for where, _raw, promql in found:
        assert "$" not in promql, where
        try:
            promql_parser.parse(promql)
        except ValueError as error:
            pytest.fail(f"{where}: {error}\n{promql}")
    with pytest.raises(ValueError):  # unexpanded, $__rate_interval is not a duration: the check expands
        promql_parser.parse(next(raw for _, raw, _ in found if "[$__rate_interval]" in raw))


def test_prometheus_own_parser_accepts_every_query(boards, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    _, documents = boards
    rules = [
        {"record": f"dashboard:query{i}:check", "expr": promql}
        for i, (_, _, promql) in enumerate(expanded(documents))
    ]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}))
    checked = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def test_an_unknown_variable_is_an_error() -> None:
    with pytest.raises(KeyError, match="modle"):
        expand('servewatch_drift_ks{model="$modle"}', VALUES)
    assert expand("rate(x[$__rate_interval]) ${window:raw} [[model]]", VALUES) == "rate(x[1m]) 5m fraud"


def _panel(document: dict[str, Any], title: str) -> dict[str, Any]:
    every = [p for top in document["panels"] for p in (top, *top.get("panels", []))]
    return next(p for p in every if p["title"] == title)


def _steps(panel: dict[str, Any]) -> list[float]:
    return [step["value"] for step in panel["fieldConfig"]["defaults"]["thresholds"]["steps"][1:]]


def test_panels_draw_the_levels_the_rules_enforce(golden_spec) -> None:
    config = Config(availability=0.995, latency_p99=0.25)
    fraud = generate(golden_spec, config)["servewatch-model-fraud.json"]
    levels = {}
    for group in rule_groups(golden_spec, config):
        for alert in group.alerts():
            for clause in alert.expr.split("\nor\n"):
                if alert.name == "ServewatchInputDrift" and 'feature="amount"' in clause:
                    levels[(alert.labels["statistic"], alert.severity)] = float(clause.rsplit(">= ", 1)[1])
    assert (
        _steps(_panel(fraud, "amount · KS"))
        == [levels[("ks", "warning")], levels[("ks", "critical")]]
        == [0.15, 0.3]
    )
    assert _steps(_panel(fraud, "age · KS")) == [0.1, 0.2]
    assert _steps(_panel(fraud, "country · L-infinity")) == [0.1, 0.2]
    assert _steps(_panel(fraud, "Error ratio")) == pytest.approx([0.005, 14.4 * 0.005])
    assert _steps(_panel(fraud, "Latency")) == [0.25]
    assert _steps(_panel(fraud, "Time since the last profile")) == [300]
    assert _steps(_panel(fraud, "Values per window")) == [200]
    ranker = generate(golden_spec, config)["servewatch-model-ranker.json"]
    assert _steps(_panel(ranker, "D1 by feature")) == [0.25]  # warning only, as in the spec
    missing = _panel(fraud, "Missing values by feature")["fieldConfig"]["overrides"]
    assert {o["matcher"]["options"]: o["properties"][0]["value"]["steps"][1]["value"] for o in missing} == {
        "amount": 0.01,
        "country": 0.05,
    }


def test_listed_columns_get_their_panels_and_long_lists_collapse(dashboard_problems) -> None:
    spec = parse_spec(
        {
            "models": [
                {
                    "name": "wide",
                    "features": [{"name": f"x{i}", "type": "numeric"} for i in range(6)]
                    + [{"name": "c", "type": "categorical"}],
                }
            ]
        }
    )
    document = generate(spec)["servewatch-model-wide.json"]
    row = next(p for p in document["panels"] if p["title"] == "Input drift by feature")
    assert row["collapsed"] is True
    titles = [p["title"] for p in row["panels"]]
    assert len(titles) == 6 * 3 + 3 and "x5 · PSI" in titles and "c · L-infinity" in titles
    assert "c · KS" not in titles  # KS is not computed for categorical columns
    assert dashboard_problems(document) == []
