"""What the alert rules and the dashboards share besides the spec and the metric names: the settings the spec
does not hold, safe PromQL, the scopes of a spec, deterministic YAML.

Usage::

    from servewatch import metrics
    from servewatch.monitoring import Config, dump_yaml, scopes, selector, statistics_of

    config = Config(availability=0.999, latency_p99=0.5)   # the objectives both draw and enforce
    for scope in scopes(spec):                              # each listed model, then every other one
        selector(metrics.WINDOW_ROWS, model=scope.label)
        statistics_of(scope, "input")

:mod:`servewatch.alerts` and :mod:`servewatch.dashboards` each depend on this package, the spec
(:mod:`servewatch.spec`) and the metric names (:mod:`servewatch.metrics`), never on each other, so a number a
panel draws is the number an alert enforces because both read it here.
"""

from __future__ import annotations

from .config import Config, Timing, add_config_arguments, config_from_args
from .documents import dump_yaml
from .promql import Matcher, none_of, one_of, quote, regex_escape, selector
from .scope import Scope, scopes, statistics_of

__all__ = [
    "Config",
    "Matcher",
    "Scope",
    "Timing",
    "add_config_arguments",
    "config_from_args",
    "dump_yaml",
    "none_of",
    "one_of",
    "quote",
    "regex_escape",
    "scopes",
    "selector",
    "statistics_of",
]
