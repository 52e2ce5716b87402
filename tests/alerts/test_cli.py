"""``servewatch alerts``: files written, options honoured, bad input refused with one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from servewatch.cli import main

GOLDEN = Path(__file__).parent / "golden"


def test_writes_rules_tests_and_alertmanager_config(tmp_path: Path, capsys, promtool) -> None:
    out = tmp_path / "out" / "rules.yml"
    code = main(
        [
            "alerts",
            "--spec",
            str(GOLDEN / "servewatch.yaml"),
            "-o",
            str(out),
            "--availability",
            "0.995",
            "--latency-p99",
            "250ms",
            "--pager-url",
            "http://pager.test/hook",
            "--detector-job",
            "sw",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "rules.yml: 7 groups" in printed
    rules = yaml.safe_load(out.read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert any("(14.4 * 0.005)" in expr for expr in exprs)
    assert any(" > 0.25," in expr for expr in exprs)
    assert any('up{job="sw"}' in expr for expr in exprs)
    manager = yaml.safe_load((out.parent / "alertmanager.yml").read_text())
    assert manager["receivers"][0]["webhook_configs"][0]["url"] == "http://pager.test/hook"
    checked = promtool("check", "rules", out)
    assert checked.returncode == 0, checked.stdout[-2000:]
    tests = yaml.safe_load((out.parent / "rules_test.yml").read_text())
    assert tests["rule_files"] == ["rules.yml"]


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    bad_spec = tmp_path / "bad.yaml"
    bad_spec.write_text("models: [{name: m, thresholds: {ks: {warning: 0.5, critical: 0.1}}}]\n")
    for args in (
        ["--spec", str(bad_spec), "-o", str(tmp_path / "r.yml")],
        ["--spec", str(GOLDEN / "servewatch.yaml"), "-o", str(tmp_path / "r.yml"), "--availability", "1"],
        ["--spec", str(GOLDEN / "servewatch.yaml"), "-o", str(tmp_path / "r.yml"), "--latency-p99", "fast"],
    ):
        run = subprocess.run(
            [sys.executable, "-m", "servewatch.cli", "alerts", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 2, run.stderr
        assert run.stderr.startswith("servewatch alerts: ") and run.stderr.count("\n") == 1, run.stderr
    assert not (tmp_path / "r.yml").exists()
