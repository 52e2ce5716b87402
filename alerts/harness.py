"""What every case of the ``promtool test rules`` document shares: the step, the expected alerts, the series.

Usage::

    from servewatch.alerts.harness import Harness, series

    harness = Harness(spec, Config())
    name = series("servewatch_drift_psi", {"model": "fraud", "feature": "amount"})  # 'servewatch_drift_psi{...}'
    checks = harness.checks("ServewatchInputDrift", [(harness.step, [])])          # nothing fires at the start
    group = harness.group("quiet", [{"series": name, "values": "0x10"}], checks)   # one entry of `tests:`

The evaluation step is about a fifth of the shortest drift ``for`` (fine enough for every timing check, and
fast); every evaluation time is rounded up to a whole step. An expected alert carries the annotations the
generated rule has for those labels (a listed model's rule over the catch-all one), rendered here with the few
template constructs the rules use, since promtool compares annotations too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from servewatch.duration import format_duration
from servewatch.monitoring import Config, Scope, Timing, quote, scopes
from servewatch.spec import Spec

from .rules import rule_groups

__all__ = ["SYNTHETIC", "Firing", "Harness", "series"]

SYNTHETIC = "f0"
"""The feature label of series standing for an automatic column (or any column: the rule does not care)."""
_UNLISTED = "model-not-in-spec"

Firing = tuple[dict[str, str], str, float]
"""An alert expected to fire: its labels, its severity and the value its description shows."""


class Harness:
    """The evaluation step and its arithmetic, the generated alerts, and the shape of a test group."""

    def __init__(self, spec: Spec, config: Config) -> None:
        self.spec = spec
        self.config = config
        self.timing: Timing = config.timing(spec)
        # Evaluate about five times per shortest `for`: fine enough for every timing check, and fast.
        shortest = min(self.timing.drift_for(scope.model) for scope in scopes(spec))
        self.step = max(self.timing.interval, float(int(shortest / 5)))
        self.alerts = [alert for group in rule_groups(spec, config) for alert in group.alerts()]
        self.job = {"job": config.detector_job, "instance": "detector:9108"}

    def duration(self, seconds: float) -> str:
        return format_duration(seconds)

    def aligned(self, seconds: float) -> float:
        """``seconds`` rounded up to a whole step (at least one)."""
        return max(-(-seconds // self.step), 1) * self.step

    def at(self, seconds: float) -> str:
        """An evaluation time: ``seconds`` rounded up to a whole step."""
        return self.duration(self.aligned(seconds))

    def samples(self, seconds: float) -> int:
        return int(-(-seconds // self.step)) + 1

    def model_labels(self, scope: Scope) -> dict[str, str]:
        return {"model": scope.model.name if scope.listed else _UNLISTED}

    def hold(self, scope: Scope) -> tuple[float, float]:
        """The drift rules' ``for`` and ``keep_firing_for`` of ``scope``."""
        return self.timing.drift_for(scope.model), self.timing.drift_keep_firing(scope.model)

    def expected(self, alertname: str, labels: Mapping[str, str], value: float) -> dict[str, Any]:
        matches = [
            alert
            for alert in self.alerts
            if alert.name == alertname
            and all(labels.get(key) == wanted for key, wanted in alert.all_labels.items())
        ]
        if not matches:
            raise AssertionError(f"{alertname} {dict(labels)}: no rule has these labels")
        alert = max(
            matches, key=lambda rule: len(rule.all_labels)
        )  # a listed model's rule over the catch-all
        full = {**labels, "alertname": alertname}
        return {
            "exp_labels": dict(sorted(labels.items())),
            "exp_annotations": {
                "summary": alert.summary,
                "description": _render(alert.description, full, value),
                "runbook_url": self.config.runbook(alertname),
            },
        }

    def checks(
        self,
        alertname: str,
        evals: Iterable[tuple[float, list[Firing]]],
        extra: Mapping[str, str] = {},
    ) -> list[dict[str, Any]]:
        """One ``alert_rule_test`` per (time, alerts firing then): ``extra`` labels added to each alert."""
        checks: list[dict[str, Any]] = []
        for when, firing in evals:
            expected = [
                self.expected(alertname, {**labels, **extra, "severity": tier}, value)
                for labels, tier, value in firing
            ]
            checks.append(
                {
                    "eval_time": self.at(when),
                    "alertname": alertname,
                    "exp_alerts": sorted(expected, key=lambda e: sorted(e["exp_labels"].items())),
                }
            )
        return checks

    def group(self, name: str, series: list[dict[str, str]], checks: list[dict[str, Any]]) -> dict[str, Any]:
        """One entry of the document's ``tests``."""
        return {
            "name": name,
            "interval": self.duration(self.step),
            "input_series": series,
            "alert_rule_test": checks,
        }


def series(metric: str, labels: Mapping[str, str]) -> str:
    """The ``input_series`` name of ``metric`` with ``labels``."""
    inner = ",".join(f"{key}={quote(value)}" for key, value in sorted(labels.items()))
    return f"{metric}{{{inner}}}"


_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")


def _render(template: str, labels: Mapping[str, str], value: float) -> str:
    """The annotation Prometheus renders from ``template`` (only the constructs our rules use)."""

    def one(match: re.Match[str]) -> str:
        text = match.group(1)
        if text.startswith("$labels."):
            return labels.get(text[len("$labels.") :], "")
        printf = re.fullmatch(r'printf "(%\.\d+[gf])" \$value', text)
        if printf:
            return printf.group(1) % value
        if text == "$value | humanizePercentage":
            return "%.4g%%" % (value * 100)
        raise ValueError(f"annotation template construct not understood: {{{{ {text} }}}}")

    return _TEMPLATE.sub(one, template)
