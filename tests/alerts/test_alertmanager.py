"""The Alertmanager example: amtool accepts it and routes each severity to the right receiver."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from servewatch.alerts import Config, Receivers, alertmanager_config, dump_yaml

from servewatch.spec import Spec


@pytest.fixture()
def config_file(any_spec: Spec, tmp_path: Path) -> Path:
    path = tmp_path / "alertmanager.yml"
    path.write_text(
        dump_yaml(
            alertmanager_config(any_spec, Config(), Receivers("http://127.0.0.1:9/p", "http://127.0.0.1:9/t"))
        )
    )
    return path


def test_amtool_accepts_the_config(config_file: Path, amtool) -> None:
    checked = amtool("check-config", config_file)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "2 inhibit rules" in checked.stdout and "3 receivers" in checked.stdout


@pytest.mark.parametrize(
    "labels,receiver",
    [
        (["alertname=ServewatchInputDrift", "severity=critical", "model=fraud", "feature=amount"], "pager"),
        (["alertname=ServewatchModelErrorBudgetBurn", "severity=critical", "model=fraud"], "pager"),
        (["alertname=ServewatchDetectorDown", "severity=critical", "job=servewatch-detector"], "pager"),
        (["alertname=ServewatchInputDrift", "severity=warning", "model=fraud"], "tickets"),
        (["alertname=ServewatchModelProfilesStale", "severity=warning", "model=fraud"], "tickets"),
        (["alertname=ServewatchWindowTooFewSamples", "severity=info", "model=fraud"], "null"),
        (["alertname=SomethingWithoutSeverity"], "tickets"),
    ],
)
def test_routes(config_file: Path, amtool, labels: list[str], receiver: str) -> None:
    routed = amtool(
        "config", "routes", "test", f"--config.file={config_file}", f"--verify.receivers={receiver}", *labels
    )
    assert routed.returncode == 0, routed.stdout + routed.stderr
    wrong = amtool(
        "config", "routes", "test", f"--config.file={config_file}", "--verify.receivers=nobody", *labels
    )
    assert wrong.returncode != 0


def test_inhibition_targets_exactly_the_model_alerts(any_spec: Spec) -> None:
    config = alertmanager_config(any_spec)
    detector_down, tiers = config["inhibit_rules"]
    assert detector_down["source_matchers"] == ['alertname="ServewatchDetectorDown"']
    muted = set(detector_down["target_matchers"][0].split('"')[1].split("|"))
    assert {
        "ServewatchInputDrift",
        "ServewatchPredictionDrift",
        "ServewatchDataQualityRuleViolated",
        "ServewatchModelProfilesStale",
    } <= muted
    assert not muted & {
        "ServewatchDetectorDown",
        "ServewatchModelErrorBudgetBurn",
        "ServewatchModelLatencyHigh",
    }
    assert detector_down["equal"] == ["job"]
    assert tiers["equal"] == ["alertname", "model", "signal", "feature"]


def test_waits_follow_the_time_scale() -> None:
    fast = alertmanager_config(Spec(), Config(time_scale=1 / 60))
    assert (
        fast["route"]["group_wait"],
        fast["route"]["group_interval"],
        fast["route"]["repeat_interval"],
    ) == ("1s", "5s", "4m")
    assert yaml.safe_load(dump_yaml(alertmanager_config(Spec())))["route"]["group_wait"] == "30s"
