"""``servewatch alerts``: the Prometheus rules of a spec, their unit tests and an Alertmanager example.

Usage::

    servewatch alerts --spec servewatch.yaml -o rules.yml
    # writes rules.yml, rules_test.yml (promtool test rules) and alertmanager.yml beside it
    servewatch alerts --spec servewatch.yaml -o rules.yml --availability 0.995 --latency-p99 250ms \\
        --pager-url https://events.pagerduty.example/hook --ticket-url https://jira.example/hook
    promtool check rules rules.yml && promtool test rules rules_test.yml
    amtool check-config alertmanager.yml

``--time-scale`` multiplies the durations the spec does not give (burn-rate windows, ``for`` of the serving
and detector alerts, Alertmanager's waits); by default it is the spec's bucket over one minute, so a spec with
1s buckets gets rules that fire within seconds (the demo, the end-to-end tests).
"""

from __future__ import annotations

import argparse
import os

from servewatch.cli import http_url
from servewatch.monitoring import add_config_arguments, config_from_args, dump_yaml
from servewatch.spec import load_spec

from .alertmanager import Receivers, alertmanager_config
from .rule_tests import rule_tests
from .rules import render_rules, rule_groups

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", required=True, help="servewatch.yaml: thresholds, rules, windows")
    parser.add_argument("-o", "--output", required=True, help="the rule file to write (e.g. rules.yml)")
    parser.add_argument(
        "--alertmanager",
        help="where to write the Alertmanager example (default: alertmanager.yml beside the rules)",
    )
    parser.add_argument(
        "--tests", help="where to write the promtool unit tests (default: <rules>_test.yml beside the rules)"
    )
    add_config_arguments(parser)
    parser.add_argument("--pager-url", type=http_url, default=Receivers.pager, help="webhook of critical alerts")
    parser.add_argument("--ticket-url", type=http_url, default=Receivers.tickets, help="webhook of warnings")


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    config = config_from_args(args)
    stem, _ = os.path.splitext(args.output)
    directory = os.path.dirname(args.output)
    am_path = args.alertmanager or os.path.join(directory, "alertmanager.yml")
    tests_path = args.tests or f"{stem}_test.yml"
    rule_file = os.path.relpath(os.path.abspath(args.output), os.path.dirname(os.path.abspath(tests_path)))
    os.makedirs(directory or ".", exist_ok=True)
    outputs = {
        args.output: render_rules(spec, config),
        tests_path: dump_yaml(rule_tests(spec, config, rule_file=rule_file)),
        am_path: dump_yaml(alertmanager_config(spec, config, Receivers(args.pager_url, args.ticket_url))),
    }
    for path, text in outputs.items():
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    groups = rule_groups(spec, config)
    alerts = sum(1 for group in groups for _ in group.alerts())
    print(
        f"{args.output}: {len(groups)} groups, {alerts} alerting and "
        f"{sum(len(g.rules) for g in groups) - alerts} recording rules"
    )
    print(f"{tests_path}: unit tests (promtool test rules {tests_path})")
    print(f"{am_path}: Alertmanager example (amtool check-config {am_path})")
    return 0
