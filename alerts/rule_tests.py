"""``promtool test rules`` unit tests of the generated rules, derived from the spec on their own.

Usage::

    from servewatch.alerts.rule_tests import rule_tests
    from servewatch.alerts.rule import dump_yaml

    open("rules_test.yml", "w").write(dump_yaml(rule_tests(spec, Config(), rule_file="rules.yml")))
    # promtool test rules rules_test.yml

The expectations come from the spec, not from the rule generator: for every column and statistic the test
feeds the detector's gauge at each tier's threshold (both tiers must fire where the value reaches them,
``>=``)
and just below the lowest (nothing may fire), reading the thresholds with ``ModelSpec.thresholds_for``. Every
test group also checks the timing: nothing fires before ``for``, the alert keeps firing ``keep_firing_for``
after the value drops, and resolves after. Data-quality limits, window sizes, staleness, the error-budget
tiers, latency, the detector going down or missing, and rejected profiles are tested the same way, each with a
firing and a quiet series. Only the annotation text is taken from the generated rule (rendered here with the
few template constructs the rules use), since promtool compares annotations too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from servewatch.duration import format_duration
from servewatch.spec import CATEGORICAL_STATISTICS, NUMERIC_STATISTICS, Column, Spec, Threshold

from .config import Config, Timing
from .promql import quote
from .rules import rule_groups
from .scope import Scope, scopes
from .serving import BURN_RATE_TIERS, ERROR_RATIO

__all__ = ["rule_tests"]

_TIERS = ("warning", "critical")
_UNLISTED = "model-not-in-spec"
_SYNTHETIC = "f0"


def rule_tests(spec: Spec, config: Config | None = None, *, rule_file: str = "rules.yml") -> dict[str, Any]:
    """A ``promtool test rules`` document for the rules of ``spec`` in ``rule_file``."""
    return _Builder(spec, config or Config()).document(rule_file)


class _Builder:
    def __init__(self, spec: Spec, config: Config) -> None:
        self.spec = spec
        self.config = config
        self.timing: Timing = config.timing(spec)
        # Evaluate about five times per shortest `for`: fine enough for every timing check, and fast.
        shortest = min(self.timing.drift_for(scope.model) for scope in scopes(spec))
        self.step = max(self.timing.interval, float(int(shortest / 5)))
        self.alerts = [alert for group in rule_groups(spec, config) for alert in group.alerts()]
        self.job = {"job": config.detector_job, "instance": "detector:9108"}

    def document(self, rule_file: str) -> dict[str, Any]:
        tests = []
        for scope in scopes(self.spec):
            for signal, alertname in (
                ("input", "ServewatchInputDrift"),
                ("prediction", "ServewatchPredictionDrift"),
            ):
                for statistic in self.statistics(scope, signal):
                    tests.append(self.drift_test(scope, signal, alertname, statistic))
            tests.append(self.quality_test(scope))
            tests.append(self.stale_test(scope))
        tests += [self.burn_test(), self.latency_test(), self.detector_test(), self.absent_test()]
        return {"rule_files": [rule_file], "evaluation_interval": self.duration(self.step), "tests": tests}

    # -- helpers ---------------------------------------------------------------------------------------

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

    def model_labels(self, scope: Scope) -> dict[str, str]:
        return {"model": scope.model.name if scope.listed else _UNLISTED}

    def hold(self, scope: Scope) -> tuple[float, float]:
        return self.timing.drift_for(scope.model), self.timing.drift_keep_firing(scope.model)

    # -- drift -----------------------------------------------------------------------------------------

    def statistics(self, scope: Scope, signal: str) -> list[str]:
        named = set(scope.model.thresholds) | {
            s for column in scope.columns(signal) for s in column.thresholds
        }
        return [
            s
            for s in dict.fromkeys(NUMERIC_STATISTICS + CATEGORICAL_STATISTICS)
            if s in named and any(_applies(s, column) for column in self.columns(scope, signal))
        ]

    def columns(self, scope: Scope, signal: str) -> list[Column | None]:
        """The listed columns, or one automatic column (None: of unknown type) when none are listed."""
        return list(scope.columns(signal)) or [None]

    def drift_test(self, scope: Scope, signal: str, alertname: str, statistic: str) -> dict[str, Any]:
        hold, keep = self.hold(scope)
        series, constant, timing_case = [], [], None
        base = {
            **self.job,
            **self.model_labels(scope),
            "signal": signal,
            "window": scope.model.windows[0].name,
        }
        for column in self.columns(scope, signal):
            if not _applies(statistic, column):
                continue
            threshold = (scope.model.thresholds_for(column) if column else scope.model.thresholds).get(
                statistic
            )
            labels = {**base, "feature": column.name if column else _SYNTHETIC}
            for case, value in _cases(threshold):
                case_labels = {**labels, "case": case}
                tiers = [
                    t
                    for t in _TIERS
                    if threshold and getattr(threshold, t) is not None and value >= getattr(threshold, t)
                ]
                series.append(
                    {
                        "series": _series(f"servewatch_drift_{statistic}", case_labels),
                        "values": f"{value!r}x{self.samples(hold + keep + 12 * self.step)}",
                    }
                )
                constant += [(case_labels, tier, value) for tier in tiers]
                if case == "top" and timing_case is None and tiers:
                    timing_case = (labels, tiers, value)
        evals: list[tuple[float, list[tuple[dict[str, str], str, float]]]] = [(hold - self.step, [])]
        evals.append((hold + 2 * self.step, constant))
        if timing_case is not None:
            labels, tiers, value = timing_case
            timed = {**labels, "case": "timing"}
            drop = self.aligned(hold + 4 * self.step)
            up = int(drop // self.step)
            series.append(
                {
                    "series": _series(f"servewatch_drift_{statistic}", timed),
                    "values": f"{value!r}x{up - 1} 0x{self.samples(keep + 12 * self.step)}",
                }
            )
            fired = [(timed, tier, value) for tier in tiers]
            evals[1] = (hold + 2 * self.step, constant + fired)
            evals.append((drop + keep / 2, constant + fired))
            evals.append((drop + keep + 2 * self.step, constant))
        return self.group(
            f"{alertname} {statistic} of {scope.title}", series, alertname, evals, {"statistic": statistic}
        )

    def group(
        self,
        name: str,
        series: list[dict[str, str]],
        alertname: str,
        evals: Iterable[tuple[float, list[tuple[dict[str, str], str, float]]]],
        extra: Mapping[str, str] = {},
    ) -> dict[str, Any]:
        checks = []
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
        return {
            "name": name,
            "interval": self.duration(self.step),
            "input_series": series,
            "alert_rule_test": checks,
        }

    # -- data quality, window size, staleness ------------------------------------------------------------

    def quality_test(self, scope: Scope) -> dict[str, Any]:
        hold, _ = self.hold(scope)
        n = self.samples(hold + 4 * self.step)
        base = {**self.job, **self.model_labels(scope), "window": scope.model.windows[0].name}
        series, checks = [], []
        firing: dict[str, list[tuple[dict[str, str], str, float]]] = {
            "ServewatchMissingValues": [],
            "ServewatchValuesOutOfRange": [],
            "ServewatchDataQualityRuleViolated": [],
            "ServewatchWindowTooFewSamples": [],
        }
        for signal in ("input", "prediction"):
            for column in scope.columns(signal):
                labels = {**base, "signal": signal, "feature": column.name}
                ranged = column.is_numeric and (column.rules.min is not None or column.rules.max is not None)
                for alertname, metric, limit in (
                    (
                        "ServewatchMissingValues",
                        "servewatch_quality_missing_ratio",
                        column.rules.max_missing_ratio,
                    ),
                    (
                        "ServewatchValuesOutOfRange",
                        "servewatch_quality_out_of_range_ratio",
                        column.rules.max_out_of_range_ratio if ranged else None,
                    ),
                ):
                    cases = (
                        [("over", limit + max(0.01, limit / 2)), ("at", limit)]
                        if limit is not None
                        else [("none", 0.5)]
                    )
                    for case, value in cases:
                        series.append(
                            {"series": _series(metric, {**labels, "case": case}), "values": f"{value!r}x{n}"}
                        )
                        if case == "over":
                            firing[alertname].append(({**labels, "case": case}, "warning", value))
        rule_labels = {**base, "signal": "input", "feature": _SYNTHETIC}
        for rule, value in (("allowed", 1), ("constant", 0), ("missing", 1), ("range", 1)):
            series.append(
                {
                    "series": _series("servewatch_quality_rule_violated", {**rule_labels, "rule": rule}),
                    "values": f"{value}x{n}",
                }
            )
        firing["ServewatchDataQualityRuleViolated"].append(
            ({**rule_labels, "rule": "allowed"}, "warning", 1.0)
        )
        need = scope.model.min_samples
        for case, value in (("thin", need - 1), ("enough", need)):
            labels = {**base, "signal": "input", "feature": _SYNTHETIC, "case": case}
            series.append({"series": _series("servewatch_window_samples", labels), "values": f"{value}x{n}"})
        firing["ServewatchWindowTooFewSamples"].append(
            ({**base, "signal": "input", "feature": _SYNTHETIC, "case": "thin"}, "info", float(need - 1))
        )
        for alertname, alerts in firing.items():
            checks += self.group("", [], alertname, [(hold - self.step, []), (hold + 2 * self.step, alerts)])[
                "alert_rule_test"
            ]
        return {
            "name": f"data quality of {scope.title}",
            "interval": self.duration(self.step),
            "input_series": series,
            "alert_rule_test": checks,
        }

    def stale_test(self, scope: Scope) -> dict[str, Any]:
        hold, _ = self.hold(scope)
        stale = self.timing.stale_after(scope.model)
        when = stale + hold + 3 * self.step
        n = self.samples(when + self.step)
        old = {**self.job, **self.model_labels(scope), "case": "stopped"}
        fresh = {**self.job, **self.model_labels(scope), "case": "arriving"}
        series = [
            {
                "series": _series("servewatch_detector_last_profile_timestamp_seconds", old),
                "values": f"0x{n}",
            },
            {
                "series": _series("servewatch_detector_last_profile_timestamp_seconds", fresh),
                "values": f"0+{self.step!r}x{n}",
            },
        ]
        evals = [(stale, []), (when, [(old, "warning", self.aligned(when))])]
        return self.group(
            f"profiles of {scope.title} stop arriving", series, "ServewatchModelProfilesStale", evals
        )

    # -- serving and the detector ------------------------------------------------------------------------

    def burn_test(self) -> dict[str, Any]:
        when = self.aligned(self.timing.scaled(1200.0))
        n = self.samples(when + self.step)
        serving = {"job": "serving", "instance": "server:8080"}
        series = []
        for model, ok, errors in (("burning", 95, 5), ("healthy", 9995, 5), ("flawless", 100, None)):
            labels = {**serving, "ml_model_name": model, "ml_framework": "generic"}
            series.append(
                {
                    "series": _series("servewatch_inference_requests_total", {**labels, "outcome": "ok"}),
                    "values": f"0+{ok}x{n}",
                }
            )
            if errors is not None:
                series.append(
                    {
                        "series": _series(
                            "servewatch_inference_requests_total", {**labels, "outcome": "error"}
                        ),
                        "values": f"0+{errors}x{n}",
                    }
                )
        ratio = 5 / 100
        firing = []
        for severity, hold, long, short, factor in BURN_RATE_TIERS:
            if ratio > factor * self.config.error_budget and self.timing.scaled(hold) <= when - self.step:
                labels = {
                    "job": "serving",
                    "ml_model_name": "burning",
                    "model": "burning",
                    "long": format_duration(self.timing.window(long)),
                    "short": format_duration(self.timing.window(short)),
                }
                firing.append((labels, severity, ratio))
        test = self.group("error-budget burn", series, "ServewatchModelErrorBudgetBurn", [(when, firing)])
        record = ERROR_RATIO + format_duration(self.timing.window(300.0))
        test["promql_expr_test"] = [
            {
                "expr": f'{record}{{ml_model_name="flawless"}}',
                "eval_time": self.at(when),
                "exp_samples": [
                    {"labels": f'{record}{{job="serving",ml_model_name="flawless"}}', "value": 0}
                ],
            }
        ]
        return test

    def latency_test(self) -> dict[str, Any]:
        objective = self.config.latency_p99
        when = self.timing.window(300.0) + self.timing.scaled(600.0) + 2 * self.step
        n = self.samples(when + self.step)
        series = []
        for model, bounds in (("slow", (objective, 3 * objective)), ("fast", (objective / 2, objective))):
            labels = {
                "job": "serving",
                "instance": "server:8080",
                "ml_model_name": model,
                "ml_framework": "generic",
                "outcome": "ok",
            }
            for le, rate in ((bounds[0], 0), (bounds[1], 10), ("+Inf", 10)):
                series.append(
                    {
                        "series": _series(
                            "servewatch_inference_duration_seconds_bucket",
                            {**labels, "le": le if isinstance(le, str) else f"{le:g}"},
                        ),
                        "values": f"0+{rate}x{n}",
                    }
                )
        p99 = objective + (3 * objective - objective) * 0.99
        labels = {"job": "serving", "ml_model_name": "slow", "model": "slow"}
        return self.group(
            "p99 latency",
            series,
            "ServewatchModelLatencyHigh",
            [(self.timing.scaled(600.0) - self.step, []), (when, [(labels, "warning", p99)])],
        )

    def detector_test(self) -> dict[str, Any]:
        when = self.timing.window(900.0) + self.timing.scaled(900.0) + 2 * self.step
        n = self.samples(when + self.step)
        job = self.config.detector_job
        series = [
            {"series": _series("up", {"job": job, "instance": "a:9108"}), "values": f"0x{n}"},
            {"series": _series("up", {"job": job, "instance": "b:9108"}), "values": f"1x{n}"},
            {
                "series": _series(
                    "servewatch_detector_profiles_rejected_total", {**self.job, "reason": "decode"}
                ),
                "values": f"0+1x{n}",
            },
            {
                "series": _series(
                    "servewatch_detector_profiles_rejected_total", {**self.job, "reason": "limits"}
                ),
                "values": f"3x{n}",
            },
            {
                "series": _series(
                    "servewatch_instrumentation_errors_total",
                    {"job": "serving", "instance": "s:1", "error_type": "extract.input"},
                ),
                "values": f"0+1x{n}",
            },
            {
                "series": _series(
                    "servewatch_instrumentation_errors_total",
                    {"job": "serving", "instance": "s:2", "error_type": "gpu"},
                ),
                "values": f"7x{n}",
            },
        ]
        down = self.timing.scaled(300.0) + 2 * self.step
        checks = self.group(
            "",
            [],
            "ServewatchDetectorDown",
            [(down, [({"job": job, "instance": "a:9108"}, "critical", 0.0)])],
        )["alert_rule_test"]
        checks += self.group(
            "",
            [],
            "ServewatchProfilesRejected",
            [(when, [({"job": job, "reason": "decode"}, "warning", 1 / self.step)])],
        )["alert_rule_test"]
        checks += self.group(
            "",
            [],
            "ServewatchInstrumentationErrors",
            [
                (
                    when,
                    [
                        (
                            {"job": "serving", "instance": "s:1", "error_type": "extract.input"},
                            "warning",
                            1 / self.step,
                        )
                    ],
                )
            ],
        )["alert_rule_test"]
        return {
            "name": "detector health",
            "interval": self.duration(self.step),
            "input_series": series,
            "alert_rule_test": checks,
        }

    def absent_test(self) -> dict[str, Any]:
        job = self.config.detector_job
        when = self.timing.scaled(300.0) + 2 * self.step
        other = [
            {
                "series": _series("up", {"job": "something-else", "instance": "x:1"}),
                "values": f"1x{self.samples(when)}",
            }
        ]
        return self.group(
            "detector never scraped",
            other,
            "ServewatchDetectorDown",
            [(when, [({"job": job}, "critical", 1.0)])],
        )


def _applies(statistic: str, column: Column | None) -> bool:
    if column is None:
        return True
    return statistic in (NUMERIC_STATISTICS if column.is_numeric else CATEGORICAL_STATISTICS)


def _cases(threshold: Threshold | None) -> list[tuple[str, float]]:
    """Values to feed: each tier's threshold exactly, and just below the lowest (or far above: no tier)."""
    if threshold is None:
        return [("none", 1.0)]
    levels = sorted({v for v in (threshold.warning, threshold.critical) if v is not None})
    cases = [("top" if level == levels[-1] else "low", level) for level in levels]
    if levels[0] > 0:
        cases.append(("below", levels[0] - max(levels[0] * 0.01, 1e-9)))
    return cases


def _series(metric: str, labels: Mapping[str, str]) -> str:
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
