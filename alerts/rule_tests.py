"""``promtool test rules`` unit tests of the generated rules, derived from the spec on their own.

Usage::

    from servewatch.alerts.rule_tests import rule_tests
    from servewatch.alerts import dump_yaml

    open("rules_test.yml", "w").write(dump_yaml(rule_tests(spec, Config(), rule_file="rules.yml")))
    # promtool test rules rules_test.yml

The expectations come from the spec, not from the rule generator: for every column and statistic the test
feeds the detector's gauge at each tier's threshold (both tiers must fire where the value reaches them,
``>=``) and just below the lowest (nothing may fire), reading the thresholds with ``ModelSpec.thresholds_for``.
Every test group also checks the timing: nothing fires before ``for``, the alert keeps firing ``keep_firing_for``
after the value drops, and resolves after. Data-quality limits, window sizes, staleness, the error-budget
tiers, latency, the detector going down or missing, and rejected profiles are tested the same way, each with a
firing and a quiet series; so are the verdict states: a drift alert holds while the verdict is unknown, and
traffic that stops pages. Only the annotation text is taken from the generated rule (rendered here with the
few template constructs the rules use), since promtool compares annotations too.

The cases: :mod:`~servewatch.alerts.drift_cases` (drift statistics), :mod:`~servewatch.alerts.quality_cases`
(data quality, window size, staleness) and :mod:`~servewatch.alerts.serving_cases` (error budget, latency,
detector health), on what they share in :mod:`~servewatch.alerts.harness`.
"""

from __future__ import annotations

from typing import Any

from servewatch.monitoring import Config, scopes
from servewatch.spec import Spec

from .drift_cases import drift_tests
from .harness import Harness
from .quality_cases import quality_test, stale_test, traffic_test
from .serving_cases import serving_tests

__all__ = ["rule_tests"]


def rule_tests(spec: Spec, config: Config | None = None, *, rule_file: str = "rules.yml") -> dict[str, Any]:
    """A ``promtool test rules`` document for the rules of ``spec`` in ``rule_file``."""
    harness = Harness(spec, config or Config())
    tests = []
    for scope in scopes(spec):
        tests += drift_tests(harness, scope)
        tests += [quality_test(harness, scope), stale_test(harness, scope), traffic_test(harness, scope)]
    tests += serving_tests(harness)
    return {"rule_files": [rule_file], "evaluation_interval": harness.duration(harness.step), "tests": tests}
