"""The generated rules: real promtool checks them and runs the unit tests generated from the spec; our own
lints cover what promtool does not (names, severities, annotations, runbooks, durations)."""

from __future__ import annotations

import re
from pathlib import Path

import promql_parser
import pytest
import yaml
from servewatch.alerts import Config, alert_names, render_rules, rule_groups, rule_tests
from servewatch.alerts import dump_yaml
from servewatch.alerts.rule import Alert, Recording

from servewatch.spec import Spec, parse_spec

RUNBOOKS = Path(__file__).parents[2] / "docs" / "runbooks"


def write_rules(
    spec: Spec, directory: Path, config: Config | None = None, *, only: str | None = None
) -> tuple[Path, Path]:
    """The rule file and its unit tests (``only``: just the test group of that name, for a quicker run)."""
    rules = directory / "rules.yml"
    tests = directory / "rules_test.yml"
    rules.write_text(render_rules(spec, config))
    document = rule_tests(spec, config, rule_file="rules.yml")
    if only is not None:
        document["tests"] = [test for test in document["tests"] if test["name"] == only]
        assert document["tests"], only
    tests.write_text(dump_yaml(document))
    return rules, tests


def test_promtool_accepts_the_rules_and_their_unit_tests_pass(
    any_spec: Spec, tmp_path: Path, promtool
) -> None:
    rules, tests = write_rules(any_spec, tmp_path)
    checked = promtool("check", "rules", "--lint=all", "--lint-fatal", rules)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", tests, cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-3000:]


def test_unit_tests_fail_when_a_threshold_in_the_rules_moves(
    golden_spec: Spec, tmp_path: Path, promtool
) -> None:
    """The unit tests hold expectations from the spec, so a rule drifting from the spec is caught."""
    rules, tests = write_rules(golden_spec, tmp_path, only="ServewatchInputDrift ks of model fraud")
    text = rules.read_text()
    moved = text.replace(
        'feature:servewatch_drift_ks:held{feature="amount",model="fraud",signal="input"} >= 0.3',
        'feature:servewatch_drift_ks:held{feature="amount",model="fraud",signal="input"} >= 0.31',
    )
    assert moved != text
    rules.write_text(moved)
    tested = promtool("test", "rules", tests, cwd=tmp_path)
    assert tested.returncode != 0
    assert 'feature="amount"' in tested.stdout + tested.stderr


def test_unit_tests_fail_without_keep_firing_for(golden_spec: Spec, tmp_path: Path, promtool) -> None:
    rules, tests = write_rules(golden_spec, tmp_path, only="ServewatchInputDrift psi of model fraud")
    assert promtool("test", "rules", tests, cwd=tmp_path).returncode == 0
    rules.write_text(re.sub(r"\n +keep_firing_for: \S+", "", rules.read_text()))
    tested = promtool("test", "rules", tests, cwd=tmp_path)
    assert tested.returncode != 0
    assert 'case="timing"' in tested.stdout + tested.stderr  # the alert resolved as soon as the value fell


@pytest.mark.parametrize(
    "group, rule, broken, case",
    [
        # without the hold, the alert of a series that stopped while its verdict is unknown resolves
        ("ServewatchInputDrift psi of model fraud", "servewatch_verdict_unknown == 1",
         "servewatch_verdict_unknown == 2", "unknown"),
        # without the noise level, a value sampling noise alone reaches fires
        ("ServewatchInputDrift psi of model fraud", "<= servewatch_drift_psi_noise",
         "<= 0 * servewatch_drift_psi_noise", "noisy"),
        ("traffic of model fraud stops", 'window="5m"}) == 0', 'window="5m"}) < 0', "stopped"),
        # a missing ratio over its limit that the detector's rule does not find violated must not fire
        ("data quality of model fraud", 'servewatch_quality_rule_violated{rule="missing"} == 1',
         'servewatch_quality_rule_violated{rule="missing"} >= 0', "noise"),
        # without the hold, a ratio or rule whose column's verdict turned unknown resolves
        ("data quality of model fraud", "servewatch_verdict_unknown == 1", "servewatch_verdict_unknown == 2",
         "unknown"),
    ],
)
def test_unit_tests_fail_when_a_verdict_state_rule_breaks(
    golden_spec: Spec, tmp_path: Path, promtool, group: str, rule: str, broken: str, case: str
) -> None:
    rules, tests = write_rules(golden_spec, tmp_path, only=group)
    assert promtool("test", "rules", tests, cwd=tmp_path).returncode == 0
    text = rules.read_text()
    assert rule in text
    rules.write_text(text.replace(rule, broken))
    tested = promtool("test", "rules", tests, cwd=tmp_path)
    assert tested.returncode != 0
    assert f'case="{case}"' in tested.stdout + tested.stderr


def test_every_alert_follows_the_conventions(any_spec: Spec) -> None:
    groups = rule_groups(any_spec)
    assert len({group.name for group in groups}) == len(groups)
    for group in groups:
        for rule in group.rules:
            if isinstance(rule, Recording):
                assert re.fullmatch(r"[a-z_]+:[a-z][a-z0-9_]*:[a-z0-9_]+", rule.record), rule.record
                continue
            assert isinstance(rule, Alert)
            assert re.fullmatch(r"Servewatch(?:[A-Z][a-z0-9]*)+", rule.name), rule.name
            assert rule.severity in ("critical", "warning", "info")
            assert rule.summary.endswith(".") and "{{" not in rule.summary, rule.summary
            assert (
                rule.description.endswith(".") and rule.description[0].isupper() or rule.description[0] == "{"
            )
    for name in alert_names(groups):
        assert name in Config().runbook(name)


def test_every_alert_has_a_runbook_saying_what_it_means_and_how_to_fix_it() -> None:
    spec = parse_spec(
        {
            "models": [
                {
                    "name": "m",
                    "features": [
                        {"name": "x", "type": "numeric", "rules": {"min": 0, "max_missing_ratio": 0.1}}
                    ],
                }
            ]
        }
    )
    for name in alert_names(rule_groups(spec)):
        page = RUNBOOKS / f"{name}.md"
        assert page.is_file(), f"no runbook for {name}"
        text = page.read_text()
        assert text.startswith(f"# {name}\n")
        for section in ("## Meaning", "## Impact", "## Investigate", "## Fix"):
            assert section in text, f"{page.name}: {section}"
        assert f"{name}.md" in (RUNBOOKS / "README.md").read_text()


def test_every_expression_parses_as_promql(any_spec: Spec) -> None:
    for group in rule_groups(any_spec):
        for rule in group.rules:
            promql_parser.parse(rule.expr)


def test_thresholds_come_from_the_spec_with_column_overrides(golden_spec: Spec) -> None:
    fraud = next(g for g in rule_groups(golden_spec) if g.name == "servewatch.model:fraud")
    ks = {
        a.severity: a.expr
        for a in fraud.alerts()
        if a.name == "ServewatchInputDrift" and a.labels["statistic"] == "ks"
    }
    assert ks["warning"] == (
        'feature:servewatch_drift_ks:held{feature!="amount",model="fraud",signal="input"} >= 0.1\nor\n'
        'feature:servewatch_drift_ks:held{feature="amount",model="fraud",signal="input"} >= 0.15'
    )
    assert ks["critical"].endswith(
        'feature:servewatch_drift_ks:held{feature="amount",model="fraud",signal="input"} >= 0.3'
    )
    ranker = next(g for g in rule_groups(golden_spec) if g.name == "servewatch.model:ranker")
    d1 = [a for a in ranker.alerts() if a.name == "ServewatchInputDrift" and a.labels["statistic"] == "d1"]
    assert [a.severity for a in d1] == ["warning"]  # the spec gives d1 a warning tier only
    unlisted = next(g for g in rule_groups(golden_spec) if g.name == "servewatch.unlisted-models")
    assert all('model!~"fraud|ranker"' in a.expr or "model" not in a.expr for a in unlisted.alerts())


def test_awkward_names_are_escaped() -> None:
    spec = parse_spec(
        {
            "models": [
                {"name": 'we"ird.m|x', "features": [{"name": "a.b", "thresholds": {"ks": {"critical": 0.5}}}]}
            ]
        }
    )
    text = render_rules(spec)
    assert 'model="we\\"ird.m|x"' in text
    assert 'model!="we\\"ird.m|x"' in text
    assert 'feature="a.b"' in text


@pytest.mark.parametrize(
    "spec,scale,expected",
    [
        ({}, None, {"for": "5m", "keep_firing_for": "5m", "burn": "1h", "down": "5m"}),
        (
            {"detector": {"bucket": "1s", "interval": "1s"}, "defaults": {"windows": ["10s"]}},
            None,
            {"for": "10s", "keep_firing_for": "10s", "burn": "1m", "down": "5s"},
        ),
        (
            {"detector": {"bucket": "1s", "interval": "1s"}, "defaults": {"windows": ["10s"]}},
            1.0,
            {"for": "10s", "keep_firing_for": "10s", "burn": "1h", "down": "5m"},
        ),
    ],
)
def test_time_scale_follows_the_spec_or_the_option(spec: dict, scale: float | None, expected: dict) -> None:
    document = yaml.safe_load(render_rules(parse_spec(spec), Config(time_scale=scale)))
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    drift = next(r for r in rules if r.get("alert") == "ServewatchInputDrift")
    assert drift["for"] == expected["for"] and drift["keep_firing_for"] == expected["keep_firing_for"]
    burn = next(r for r in rules if r.get("alert") == "ServewatchModelErrorBudgetBurn")
    assert burn["labels"]["long"] == expected["burn"]
    down = next(r for r in rules if r.get("alert") == "ServewatchDetectorDown")
    assert down["for"] == expected["down"]


def test_a_bad_config_is_refused() -> None:
    for bad in (
        {"availability": 1.0},
        {"latency_p99": 0},
        {"time_scale": -1.0},
        {"runbook_url": "x"},
        {"detector_job": ""},
    ):
        with pytest.raises(ValueError):
            Config(**bad)
