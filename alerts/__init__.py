"""Prometheus alerting and recording rules from a spec, their unit tests, and an Alertmanager example.

Usage::

    from servewatch import load_spec
    from servewatch.alerts import Config, Receivers, alertmanager_config, render_rules, rule_tests

    spec = load_spec("servewatch.yaml")
    config = Config(availability=0.999, latency_p99=0.5)
    open("rules.yml", "w").write(render_rules(spec, config))          # promtool check rules rules.yml

Or ``servewatch alerts --spec servewatch.yaml -o rules.yml`` (see :mod:`servewatch.alerts.cli`). The drift and
data-quality rules read their thresholds, limits and windows from the spec (the values the dashboards draw);
:class:`Config` holds what the spec does not: service objectives, the detector's job, the runbook URL pattern
and the time scale. Alert names start with ``Servewatch``; every alert has a ``severity`` label (critical
pages, warning opens a ticket, info is for troubleshooting) and ``summary``, ``description`` and
``runbook_url`` annotations; the runbooks are ``docs/runbooks/<alertname>.md``.

Prometheus scrapes ``servewatch detect``'s ``/metrics`` as job ``Config.detector_job`` with
``honor_labels: true``: the serving metrics the detector relays from OTLP keep the ``job`` and ``instance`` of
the process that produced them, its own gauges get the scrape's. The end-to-end test
(``tests/integration/test_alerting_e2e.py``) writes such a configuration.
"""

from __future__ import annotations

from servewatch.monitoring import Config, Timing, dump_yaml

from .alertmanager import Receivers, alertmanager_config
from .rule import Alert, Group, Recording
from .rule_tests import rule_tests
from .rules import alert_names, render_rules, rule_groups

__all__ = [
    "Alert",
    "Config",
    "Group",
    "Receivers",
    "Recording",
    "Timing",
    "alert_names",
    "alertmanager_config",
    "dump_yaml",
    "render_rules",
    "rule_groups",
    "rule_tests",
]
