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

import yaml

from servewatch.duration import format_duration

__all__ = ["Alert", "Group", "Recording", "SEVERITIES", "dump_groups", "dump_yaml"]

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


class _Dumper(yaml.SafeDumper):
    """Block style everywhere; multi-line strings as ``|`` literals; no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def dump_yaml(document: Any) -> str:
    """``document`` as deterministic block-style YAML (insertion order kept, no line wrapping)."""
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1 << 16, allow_unicode=True
    )
