"""The serving and detector cases of the ``promtool test rules`` document: burn rate, latency, detector health.

Usage::

    from servewatch.alerts.harness import Harness
    from servewatch.alerts.serving_cases import serving_tests

    groups = serving_tests(Harness(spec, Config()))   # burn rate, p99 latency, detector health, never scraped

Error budget: a model failing 5 % of its requests fires every burn-rate tier whose factor that exceeds and
whose ``for`` has passed; one failing 0.05 % fires none, and one with no errors at all gets a 0 error ratio,
not nothing. Latency: a model whose requests all take between the objective and three times it fires; one
below it does not. Detector health: one scrape target down (the other up) fires ``ServewatchDetectorDown``,
rejections and instrumentation errors fire while their counters grow (not while they stand still), and a
detector job Prometheus never scraped fires ``ServewatchDetectorDown`` through ``absent``.
"""

from __future__ import annotations

from typing import Any

from servewatch import metrics
from servewatch.duration import format_duration

from .harness import Firing, Harness, series
from .serving import BURN_RATE_TIERS, ERROR_RATIO

__all__ = ["serving_tests"]


def serving_tests(harness: Harness) -> list[dict[str, Any]]:
    """The test groups of the serving and detector-health rules, which hold for every model."""
    return [_burn_test(harness), _latency_test(harness), _detector_test(harness), _absent_test(harness)]


def _burn_test(harness: Harness) -> dict[str, Any]:
    timing, step = harness.timing, harness.step
    when = harness.aligned(timing.scaled(1200.0))
    n = harness.samples(when + step)
    serving = {"job": "serving", "instance": "server:8080"}
    inputs = []
    for model, ok, errors in (("burning", 95, 5), ("healthy", 9995, 5), ("flawless", 100, None)):
        labels = {**serving, "ml_model_name": model, "ml_framework": "generic"}
        inputs.append(
            {
                "series": series(metrics.INFERENCE_REQUESTS.total, {**labels, "outcome": "ok"}),
                "values": f"0+{ok}x{n}",
            }
        )
        if errors is not None:
            inputs.append(
                {
                    "series": series(metrics.INFERENCE_REQUESTS.total, {**labels, "outcome": "error"}),
                    "values": f"0+{errors}x{n}",
                }
            )
    ratio = 5 / 100
    firing: list[Firing] = []
    for severity, hold, long, short, factor in BURN_RATE_TIERS:
        if ratio > factor * harness.config.error_budget and timing.scaled(hold) <= when - step:
            labels = {
                "job": "serving",
                "ml_model_name": "burning",
                "model": "burning",
                "long": format_duration(timing.window(long)),
                "short": format_duration(timing.window(short)),
            }
            firing.append((labels, severity, ratio))
    checks = harness.checks("ServewatchModelErrorBudgetBurn", [(when, firing)])
    test = harness.group("error-budget burn", inputs, checks)
    record = ERROR_RATIO + format_duration(timing.window(300.0))
    test["promql_expr_test"] = [
        {
            "expr": f'{record}{{ml_model_name="flawless"}}',
            "eval_time": harness.at(when),
            "exp_samples": [{"labels": f'{record}{{job="serving",ml_model_name="flawless"}}', "value": 0}],
        }
    ]
    return test


def _latency_test(harness: Harness) -> dict[str, Any]:
    timing, step = harness.timing, harness.step
    objective = harness.config.latency_p99
    when = timing.window(300.0) + timing.scaled(600.0) + 2 * step
    n = harness.samples(when + step)
    inputs = []
    for model, bounds in (("slow", (objective, 3 * objective)), ("fast", (objective / 2, objective))):
        labels = {
            "job": "serving",
            "instance": "server:8080",
            "ml_model_name": model,
            "ml_framework": "generic",
            "outcome": "ok",
        }
        for le, rate in ((bounds[0], 0), (bounds[1], 10), ("+Inf", 10)):
            inputs.append(
                {
                    "series": series(
                        metrics.INFERENCE_DURATION.bucket,
                        {**labels, "le": le if isinstance(le, str) else f"{le:g}"},
                    ),
                    "values": f"0+{rate}x{n}",
                }
            )
    p99 = objective + (3 * objective - objective) * 0.99
    labels = {"job": "serving", "ml_model_name": "slow", "model": "slow"}
    evals = [(timing.scaled(600.0) - step, []), (when, [(labels, "warning", p99)])]
    return harness.group("p99 latency", inputs, harness.checks("ServewatchModelLatencyHigh", evals))


def _detector_test(harness: Harness) -> dict[str, Any]:
    timing, step = harness.timing, harness.step
    when = timing.window(900.0) + timing.scaled(900.0) + 2 * step
    n = harness.samples(when + step)
    job = harness.config.detector_job
    failing = {"job": "serving", "instance": "s:1", "error_type": "extract.input"}
    inputs = [
        {"series": series("up", {"job": job, "instance": "a:9108"}), "values": f"0x{n}"},
        {"series": series("up", {"job": job, "instance": "b:9108"}), "values": f"1x{n}"},
        {
            "series": series(metrics.PROFILES_REJECTED, {**harness.job, "reason": "decode"}),
            "values": f"0+1x{n}",
        },
        {
            "series": series(metrics.PROFILES_REJECTED, {**harness.job, "reason": "limits"}),
            "values": f"3x{n}",
        },
        {"series": series(metrics.INSTRUMENTATION_ERRORS.total, failing), "values": f"0+1x{n}"},
        {
            "series": series(
                metrics.INSTRUMENTATION_ERRORS.total,
                {"job": "serving", "instance": "s:2", "error_type": "gpu"},
            ),
            "values": f"7x{n}",
        },
    ]
    down = timing.scaled(300.0) + 2 * step
    rejected = {"job": job, "reason": "decode"}
    checks = [
        *harness.checks("ServewatchDetectorDown", [(down, [({"job": job, "instance": "a:9108"}, "critical", 0.0)])]),
        *harness.checks("ServewatchProfilesRejected", [(when, [(rejected, "warning", 1 / step)])]),
        *harness.checks("ServewatchInstrumentationErrors", [(when, [(failing, "warning", 1 / step)])]),
    ]
    return harness.group("detector health", inputs, checks)


def _absent_test(harness: Harness) -> dict[str, Any]:
    job = harness.config.detector_job
    when = harness.timing.scaled(300.0) + 2 * harness.step
    other = [
        {
            "series": series("up", {"job": "something-else", "instance": "x:1"}),
            "values": f"1x{harness.samples(when)}",
        }
    ]
    checks = harness.checks("ServewatchDetectorDown", [(when, [({"job": job}, "critical", 1.0)])])
    return harness.group("detector never scraped", other, checks)
