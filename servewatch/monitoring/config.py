"""What the rules need beyond the spec: service objectives, the detector's job, runbook links, the time scale.

Usage::

    from servewatch.monitoring import Config

    config = Config(availability=0.999, latency_p99=0.5, detector_job="servewatch-detector")
    timing = config.timing(spec)          # every duration of the rules, for this spec
    timing.drift_for(spec.model("fraud"))  # 300.0 with windows [5m, 1h, 1d]

    add_config_arguments(parser)           # --availability, --latency-p99, --time-scale, ... (both commands)
    config = config_from_args(parser.parse_args())

The spec holds the drift thresholds, rules and windows; this object holds what it does not (the same role as
a monitoring mixin's ``_config``), shared by the rules, the Alertmanager example and the dashboards so the
numbers a panel draws are the numbers an alert enforces.

**Time scale.** Durations that come from the spec (windows, the detector's interval) are used as they are.
The others are the usual production values (burn-rate windows 5m to 3d as in the SRE workbook, ``for`` of
2m to 3h, Alertmanager's 30s/5m/4h) multiplied by ``time_scale``. By default ``time_scale`` is the spec's
bucket over one minute: a production spec (1m buckets) gets production durations, and the compressed spec of
the demo and the end-to-end tests (1s buckets, 10s windows) gets everything sixty times faster, so its alerts
fire within seconds. Rate windows never go below four detector intervals (four scrapes, if Prometheus scrapes
at the detector's interval).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..duration import parse_duration
from ..errors import ServewatchError
from ..spec import ModelSpec, Spec

__all__ = ["Config", "Timing", "add_config_arguments", "config_from_args"]


@dataclass(frozen=True)
class Config:
    """Settings of the generated rules that the spec does not hold.

    ``availability``: the share of requests that must succeed (0.999: an error budget of 0.1 %).
    ``latency_p99``: the 99th-percentile request duration (seconds) above which latency alerts.
    ``detector_job``: the Prometheus ``job`` that scrapes ``servewatch detect``.
    ``runbook_url``: pattern of each alert's ``runbook_url``, ``{alertname}`` replaced.
    ``time_scale``: factor on the durations the spec does not give (None: the spec's bucket / 60 s).
    """

    availability: float = 0.999
    latency_p99: float = 1.0
    detector_job: str = "servewatch-detector"
    runbook_url: str = "https://github.com/servewatch/servewatch/blob/main/docs/runbooks/{alertname}.md"
    time_scale: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.availability < 1.0:
            raise ValueError(f"availability must be between 0 and 1 (exclusive), got {self.availability!r}")
        if not self.latency_p99 > 0:
            raise ValueError(f"latency_p99 must be positive seconds, got {self.latency_p99!r}")
        if self.time_scale is not None and not self.time_scale > 0:
            raise ValueError(f"time_scale must be positive, got {self.time_scale!r}")
        if "{alertname}" not in self.runbook_url:
            raise ValueError(f"runbook_url must contain {{alertname}}, got {self.runbook_url!r}")
        if not self.detector_job:
            raise ValueError("detector_job must not be empty")

    @property
    def error_budget(self) -> float:
        return 1.0 - self.availability

    def timing(self, spec: Spec) -> Timing:
        scale = self.time_scale if self.time_scale is not None else spec.detector.bucket / 60.0
        return Timing(scale=scale, interval=spec.detector.interval)

    def runbook(self, alertname: str) -> str:
        return self.runbook_url.replace("{alertname}", alertname)


@dataclass(frozen=True)
class Timing:
    """Every duration the rules use, in seconds (``servewatch.duration.format_duration`` spells one).

    ``scale`` multiplies the production durations; ``interval`` is the detector's evaluation interval.
    """

    scale: float
    interval: float

    def scaled(self, seconds: float) -> float:
        """A production duration at this time scale (at least one second)."""
        return max(1.0, round(seconds * self.scale))

    def window(self, seconds: float) -> float:
        """A rate window: scaled, and never shorter than four detector intervals."""
        return max(self.scaled(seconds), 4.0 * self.interval)

    # -- durations derived from the spec ---------------------------------------------------------------

    def drift_for(self, model: ModelSpec) -> float:
        """``for`` of drift and data-quality alerts: one shortest window.

        A burst shorter than the window slides out of it before the alert fires; only a shift that lasts
        a full window pages. Never less than two detector evaluations, so two evaluations must agree.
        """
        return max(_shortest(model), 2.0 * self.interval)

    def drift_keep_firing(self, model: ModelSpec) -> float:
        """``keep_firing_for`` of drift and data-quality alerts: one shortest window.

        A statistic hovering around its threshold would otherwise resolve and re-fire on every crossing;
        the alert resolves only once the window has held no drift for its whole length.
        """
        return max(_shortest(model), 2.0 * self.interval)

    def traffic_lookback(self, model: ModelSpec) -> float:
        """How far back a model counts as having received traffic: a day (scaled), or its longest window.

        Its shortest window emptying pages only if it held rows within this lookback: a model that never
        had traffic, or stopped longer ago than this, does not.
        """
        return max(self.scaled(86400.0), max(window.seconds for window in model.windows))

    def stale_after(self, model: ModelSpec) -> float:
        """Seconds without a profile after which a model's shortest window is empty: its drift is unknown."""
        return max(_shortest(model), 4.0 * self.interval)


def _shortest(model: ModelSpec) -> float:
    return min(window.seconds for window in model.windows)


def add_config_arguments(parser: argparse.ArgumentParser, *, rules: bool = True) -> None:
    """The :class:`Config` options; the objectives and the time scale are shared with ``servewatch dashboards``
    (``rules=False``: give both commands the same values)."""
    defaults = Config()
    parser.add_argument(
        "--availability",
        type=float,
        default=defaults.availability,
        help=f"share of requests that must succeed (default {defaults.availability})",
    )
    parser.add_argument(
        "--latency-p99",
        default=f"{defaults.latency_p99:g}s",
        help="p99 request duration above which latency alerts (default %(default)s)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        help="factor on the durations the spec does not give (default: the spec's bucket / 60s)",
    )
    if not rules:
        return
    parser.add_argument(
        "--detector-job",
        default=defaults.detector_job,
        help="Prometheus job that scrapes `servewatch detect` (default %(default)s)",
    )
    parser.add_argument(
        "--runbook-url",
        default=defaults.runbook_url,
        help="runbook URL pattern, {alertname} replaced (default %(default)s)",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """The :class:`Config` the options describe (``ServewatchError`` with the reason on a bad value)."""
    try:
        return Config(
            availability=args.availability,
            latency_p99=parse_duration(args.latency_p99),
            detector_job=getattr(args, "detector_job", Config.detector_job),
            runbook_url=getattr(args, "runbook_url", Config.runbook_url),
            time_scale=args.time_scale,
        )
    except ValueError as error:
        raise ServewatchError(str(error)) from None
