"""An Alertmanager configuration to start from: critical pages, warning opens a ticket, info goes nowhere.

Usage::

    from servewatch.alerts import Config, alertmanager_config, Receivers
    from servewatch.alerts import dump_yaml

    document = alertmanager_config(spec, Config(), Receivers(pager="https://pager/hook",
                                                             tickets="https://tickets/hook"))
    open("alertmanager.yml", "w").write(dump_yaml(document))   # then: amtool check-config alertmanager.yml

Routing: alerts are grouped by ``alertname`` and ``model`` (one notification per problem and model, however
many features or windows are involved); ``severity="critical"`` goes to the ``pager`` webhook,
``"warning"`` to the ``tickets`` webhook, ``"info"`` to ``null`` (kept in Alertmanager's UI for
troubleshooting). Inhibition: while ``ServewatchDetectorDown`` fires for a job, the drift, data-quality and
staleness alerts of that job are muted (their gauges are stale, not informative); a critical alert mutes the
warning of the same alert name, model, signal and feature (the two tiers of one drift). Group wait, group
interval and repeat interval are Alertmanager's usual 30s, 5m and 4h (warnings 1d) at the rules' time scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from servewatch.duration import format_duration
from servewatch.monitoring import Config, one_of
from servewatch.spec import Spec

from .rules import rule_groups

__all__ = ["Receivers", "alertmanager_config"]


@dataclass(frozen=True)
class Receivers:
    """Webhook URLs of the two receivers that reach people."""

    pager: str = "http://127.0.0.1:9095/pager"
    tickets: str = "http://127.0.0.1:9095/tickets"


def _matcher(label: str, op: str, value: str) -> str:
    return f'{label}{op}"{value}"'


def alertmanager_config(
    spec: Spec, config: Config | None = None, receivers: Receivers | None = None
) -> dict[str, Any]:
    """The Alertmanager configuration (a document to dump as YAML) for the rules of ``spec``."""
    config = config or Config()
    receivers = receivers or Receivers()
    timing = config.timing(spec)
    groups = rule_groups(spec, config)
    model_alerts = sorted(
        {
            alert.name
            for group in groups
            if group.name.startswith("servewatch.model:") or group.name == "servewatch.unlisted-models"
            for alert in group.alerts()
        }
    )
    muted = one_of(model_alerts)

    def every(seconds: float) -> str:
        return format_duration(timing.scaled(seconds))

    return {
        "route": {
            "receiver": "tickets",
            "group_by": ["alertname", "model"],
            "group_wait": every(30.0),
            "group_interval": every(300.0),
            "repeat_interval": every(4 * 3600.0),
            "routes": [
                {"matchers": [_matcher("severity", "=", "critical")], "receiver": "pager"},
                {
                    "matchers": [_matcher("severity", "=", "warning")],
                    "receiver": "tickets",
                    "repeat_interval": every(86400.0),
                },
                {"matchers": [_matcher("severity", "=", "info")], "receiver": "null"},
            ],
        },
        "receivers": [
            {"name": "pager", "webhook_configs": [{"url": receivers.pager, "send_resolved": True}]},
            {"name": "tickets", "webhook_configs": [{"url": receivers.tickets, "send_resolved": True}]},
            {"name": "null"},
        ],
        "inhibit_rules": [
            {
                "source_matchers": [_matcher("alertname", "=", "ServewatchDetectorDown")],
                "target_matchers": [_matcher("alertname", muted.op, muted.value)],
                "equal": ["job"],
            },
            {
                "source_matchers": [_matcher("severity", "=", "critical")],
                "target_matchers": [_matcher("severity", "=", "warning")],
                "equal": ["alertname", "model", "signal", "feature"],
            },
        ],
    }
