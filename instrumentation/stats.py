"""Request-level statistics of one model, kept on the hot path at the cost of a few integer additions.

Usage::

    from servewatch.instrumentation.stats import RequestStats

    stats = RequestStats()
    stats.add("ok", duration=0.004, batch_size=8, requests=8)      # caller holds the model's lock
    stats.outcomes["ok"].requests, stats.outcomes["ok"].duration.count

They become ``servewatch.inference.requests`` (a counter), ``servewatch.inference.duration`` and
``servewatch.inference.batch.size`` (explicit-bucket histograms) at collection time
(:mod:`servewatch.instrumentation.telemetry`). The OpenTelemetry SDK's synchronous ``record()``/``add()`` cost
about 6 µs each on this project's reference machine, five times the raw sketch update of a 20-feature row, so
the hot path aggregates into these buckets itself and the SDK only sees the totals.

Boundaries (upper-inclusive, as OTLP explicit buckets):

- duration, seconds: 0.5 ms .. 60 s, roughly 1-2.5-5 per decade: CPU/GPU inference from sub-millisecond
  tabular models to a minute-long generation (:data:`DURATION_BOUNDS`);
- batch size: powers of two 1 .. 1024 (:data:`BATCH_SIZE_BOUNDS`).

A duration counts once per request of the call (``requests``): each request of a batch waited the whole
call, so latency quantiles are per request and the histogram's count equals the requests counter. The batch
size counts once per call.

Routes: a call may name the HTTP route it served (``route="/fraud"``); its requests and durations are then
kept apart per route (:attr:`Outcome.routes`; they become the attribute ``http.route``), while a call without a
route counts in the outcome's own ``requests`` and ``duration``. The batch size never splits by route. A model
keeps at most :data:`MAX_ROUTES` distinct routes (the first seen, shared by both outcomes); later ones count as
:data:`OTHER_ROUTE`, so a client sending arbitrary paths cannot grow the series without bound.
"""

from __future__ import annotations

import math
from bisect import bisect_left

__all__ = ["BATCH_SIZE_BOUNDS", "DURATION_BOUNDS", "MAX_ROUTES", "OTHER_ROUTE", "Histogram", "Outcome", "RequestStats",
           "Route"]

DURATION_BOUNDS: tuple[float, ...] = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                                      5.0, 10.0, 30.0, 60.0)
BATCH_SIZE_BOUNDS: tuple[float, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
MAX_ROUTES = 32
"""Distinct routes one model keeps series for; requests on further routes count as :data:`OTHER_ROUTE`."""
OTHER_ROUTE = "other"


class Histogram:
    """Cumulative explicit-bucket histogram; ``low``/``high`` are the extremes since the last ``take_extremes``
    (what a delta export reports), ``min``/``max`` since the start."""

    __slots__ = ("bounds", "counts", "count", "sum", "low", "high", "min", "max")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.count = 0
        self.sum = 0.0
        self.low = self.min = math.inf
        self.high = self.max = -math.inf

    def observe(self, value: float, weight: int = 1) -> None:
        self.counts[bisect_left(self.bounds, value)] += weight
        self.count += weight
        self.sum += value * weight
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value

    def copy(self, *, take_extremes: bool = False) -> Histogram:
        """This histogram as it stands; ``take_extremes`` moves the extremes since the last take into the copy's
        ``low``/``high`` (see :meth:`take_extremes`)."""
        copy = Histogram.__new__(Histogram)
        copy.bounds, copy.counts, copy.count, copy.sum = self.bounds, list(self.counts), self.count, self.sum
        copy.low, copy.high = self.take_extremes() if take_extremes else (self.low, self.high)
        copy.min, copy.max = self.min, self.max
        return copy

    def take_extremes(self) -> tuple[float, float]:
        """``(low, high)`` since the previous call (folded into ``min``/``max``), then reset."""
        low, high = self.low, self.high
        self.min = min(self.min, low)
        self.max = max(self.max, high)
        self.low, self.high = math.inf, -math.inf
        return low, high


class Route:
    """The requests of one outcome on one route: their count and durations."""

    __slots__ = ("requests", "duration")

    def __init__(self) -> None:
        self.requests = 0
        self.duration = Histogram(DURATION_BOUNDS)


class Outcome:
    """The statistics of one outcome (``ok`` or ``error``): requests and durations of calls without a route,
    those of calls with one in ``routes`` (route -> :class:`Route`), batch sizes of all calls."""

    __slots__ = ("requests", "duration", "batch_size", "routes")

    def __init__(self) -> None:
        self.requests = 0
        self.duration = Histogram(DURATION_BOUNDS)
        self.batch_size = Histogram(BATCH_SIZE_BOUNDS)
        self.routes: dict[str, Route] = {}


class RequestStats:
    """Per-outcome request counts and histograms of one model. Not thread-safe: callers hold a lock."""

    __slots__ = ("outcomes", "routes")

    def __init__(self) -> None:
        self.outcomes = {"ok": Outcome(), "error": Outcome()}
        self.routes: set[str] = set()
        """The routes admitted so far (at most :data:`MAX_ROUTES`)."""

    def add(self, outcome: str, duration: float | None, batch_size: int | None, requests: int,
            route: str | None = None) -> None:
        """One call: ``requests`` requests served in ``duration`` seconds as a batch of ``batch_size`` rows, on
        ``route`` (None: no route). Values that are not finite and non-negative are left out (the request still
        counts)."""
        stats = self.outcomes["error" if outcome == "error" else "ok"]
        counted: Outcome | Route = stats if route is None else self._route(stats, route)
        counted.requests += requests
        if duration is not None and 0.0 <= duration < math.inf:  # Histogram.observe, inlined: this is per call
            histogram = counted.duration
            histogram.counts[bisect_left(histogram.bounds, duration)] += requests
            histogram.count += requests
            histogram.sum += duration * requests
            if duration < histogram.low:
                histogram.low = duration
            if duration > histogram.high:
                histogram.high = duration
        if batch_size is not None and 0 <= batch_size < math.inf:
            histogram = stats.batch_size
            histogram.counts[bisect_left(histogram.bounds, batch_size)] += 1
            histogram.count += 1
            histogram.sum += batch_size
            if batch_size < histogram.low:
                histogram.low = batch_size
            if batch_size > histogram.high:
                histogram.high = batch_size

    def _route(self, stats: Outcome, route: str) -> Route:
        """The :class:`Route` of ``route`` in ``stats``, admitting the route while fewer than MAX_ROUTES are."""
        counted = stats.routes.get(route)
        if counted is None:
            if route not in self.routes:
                if len(self.routes) < MAX_ROUTES:
                    self.routes.add(route)
                else:
                    route = OTHER_ROUTE
            counted = stats.routes.get(route)
            if counted is None:
                counted = stats.routes[route] = Route()
        return counted
