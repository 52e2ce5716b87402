"""Prometheus rules as values: :class:`Alert`, :class:`Recording`, :class:`Group`, and their YAML.

Usage::

    from servewatch.alerts.rule import Alert, Group, dump_groups

    alert = Alert("ServewatchDetectorDown", 'up{job="servewatch-detector"} == 0', severity="critical",
                  summary="The servewatch detector is down.", description="...", for_=300)
    print(dump_groups([Group("servewatch.detector", (alert,))], runbook=lambda name: f"https://x/{name}"))

Durations are seconds and are spelled the Prometheus way on output (``300`` -> ``5m``). The YAML is
deterministic (keys in a fixed order, long expressions as literal blocks) so generated files diff cleanly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from servewatch.duration import format_duration
from servewatch.monitoring.documents import dump_yaml

__all__ = ["Alert", "Group", "Recording", "SEVERITIES", "dump_groups"]

SEVERITIES = ("critical", "warning", "info")
"""critical pages someone, warning opens a ticket, info is kept for troubleshooting and routed nowhere."""


@dataclass(frozen=True)
class Alert:
    """An alerting rule. ``summary`` is static (a notification headline); ``description`` may use
    ``{{ $labels.x }}``, ``{{ printf "%.3g" $value }}`` and ``{{ $value | humanizePercentage }}``."""

    name: str
    expr: str
    severity: str
    summary: str
    description: str
    for_: float = 0.0
    keep_firing_for: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.name}: severity must be one of {SEVERITIES}, got {self.severity!r}")
        if not self.name[:1].isupper() or not self.name.isalnum():
            raise ValueError(f"alert names are CamelCase words, got {self.name!r}")

    @property
    def all_labels(self) -> dict[str, str]:
        return {**self.labels, "severity": self.severity}

    def to_dict(self, runbook: Callable[[str], str]) -> dict[str, Any]:
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_:
            rule["for"] = format_duration(self.for_)
        if self.keep_firing_for:
            rule["keep_firing_for"] = format_duration(self.keep_firing_for)
        rule["labels"] = dict(sorted(self.all_labels.items()))
        rule["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": runbook(self.name),
        }
        return rule


@dataclass(frozen=True)
class Recording:
    """A recording rule, named ``level:metric:operations``."""

    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.record.count(":") != 2:
            raise ValueError(f"recording rules are named level:metric:operations, got {self.record!r}")

    def to_dict(self, runbook: Callable[[str], str]) -> dict[str, Any]:
        rule: dict[str, Any] = {"record": self.record, "expr": self.expr}
        if self.labels:
            rule["labels"] = dict(sorted(self.labels.items()))
        return rule


@dataclass(frozen=True)
class Group:
    """A rule group: evaluated together, in order, every ``interval`` (None: Prometheus' global one)."""

    name: str
    rules: tuple[Alert | Recording, ...]
    interval: float | None = None

    def alerts(self) -> Iterable[Alert]:
        return (rule for rule in self.rules if isinstance(rule, Alert))

    def to_dict(self, runbook: Callable[[str], str]) -> dict[str, Any]:
        group: dict[str, Any] = {"name": self.name}
        if self.interval:
            group["interval"] = format_duration(self.interval)
        group["rules"] = [rule.to_dict(runbook) for rule in self.rules]
        return group


def dump_groups(groups: Iterable[Group], runbook: Callable[[str], str]) -> str:
    """The rule file (``groups:``) as YAML text."""
    return dump_yaml({"groups": [group.to_dict(runbook) for group in groups]})
