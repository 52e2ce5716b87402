"""Histogram states for re-exposed OTLP metrics: explicit-bucket and base-2 exponential, as Prometheus buckets.

Usage::

    from servewatch.detectors.service.prometheus_histogram import Explicit, Exponential

    state = Explicit.from_point(point)               # an OTLP HistogramDataPoint
    state.add(Explicit.from_point(next_delta_point))  # delta temporality: counts add up (same bounds)
    state.buckets()                                   # [(upper bound, cumulative count), ..., (inf, count)]

    exp = Exponential.from_point(point)              # an OTLP ExponentialHistogramDataPoint
    exp.add(Exponential.from_point(next_delta))      # scales are aligned by downscaling the finer one
    exp.buckets()                                    # classic buckets: one per exponential bucket

Prometheus' text format has no native histograms, so an exponential histogram is written as a classic one
whose ``le`` bounds are its bucket boundaries: negative buckets (upper bound ``-base**i``), the zero bucket
(upper bound the zero threshold), positive buckets (upper bound ``base**(i + 1)``), ``base = 2**2**-scale``,
every index between the lowest and highest populated one. A histogram spanning more than ``MAX_BUCKETS``
indexes is downscaled (each step halves the resolution) until it fits, so no point is dropped and the number
of series stays bounded.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Explicit", "Exponential", "MAX_BUCKETS"]

MAX_BUCKETS = 160
_MIN_SCALE, _MAX_SCALE = -10, 20


class Explicit:
    """An explicit-bucket histogram: ``bounds`` (ascending), ``counts`` (one more than bounds), sum, count."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: tuple[float, ...], counts: list[int], total: float | None, count: int) -> None:
        self.bounds = bounds
        self.counts = counts
        self.sum = total
        self.count = count

    @classmethod
    def from_point(cls, point: Any) -> Explicit:
        """From an OTLP ``HistogramDataPoint``; ValueError with the reason when it is inconsistent."""
        bounds = tuple(float(b) for b in point.explicit_bounds)
        counts = [int(c) for c in point.bucket_counts]
        if not counts and not bounds:
            counts = [int(point.count)]
        if len(counts) != len(bounds) + 1:
            raise ValueError(f"{len(counts)} bucket counts for {len(bounds)} bounds")
        if any(not math.isfinite(b) for b in bounds) or any(not b < a for b, a in zip(bounds, bounds[1:])):
            raise ValueError("bounds are not finite and strictly increasing")
        if sum(counts) != point.count:
            raise ValueError(f"bucket counts add up to {sum(counts)}, count says {point.count}")
        return cls(bounds, counts, point.sum if point.HasField("sum") else None, int(point.count))

    def add(self, other: Explicit) -> Explicit:
        """Add a delta; a delta with other bounds starts the histogram over with it (a reset)."""
        if other.bounds != self.bounds:
            return other
        self.counts = [a + b for a, b in zip(self.counts, other.counts)]
        self.count += other.count
        if self.sum is not None and other.sum is not None:
            self.sum += other.sum
        else:
            self.sum = None
        return self

    def buckets(self) -> list[tuple[float, int]]:
        cumulative, out = 0, []
        for bound, count in zip((*self.bounds, math.inf), self.counts):
            cumulative += count
            out.append((bound, cumulative))
        return out


class Exponential:
    """A base-2 exponential histogram: ``scale``, zero bucket, sparse positive and negative buckets."""

    __slots__ = ("scale", "zero_count", "zero_threshold", "positive", "negative", "sum", "count")

    def __init__(self, scale: int, zero_count: int, zero_threshold: float, positive: dict[int, int],
                 negative: dict[int, int], total: float | None, count: int) -> None:
        self.scale = scale
        self.zero_count = zero_count
        self.zero_threshold = zero_threshold
        self.positive = positive
        self.negative = negative
        self.sum = total
        self.count = count

    @classmethod
    def from_point(cls, point: Any) -> Exponential:
        """From an OTLP ``ExponentialHistogramDataPoint``; ValueError with the reason when unusable."""
        if not _MIN_SCALE <= point.scale <= _MAX_SCALE:
            raise ValueError(f"scale {point.scale} outside [{_MIN_SCALE}, {_MAX_SCALE}]")
        positive = _sparse(point.positive.offset, point.positive.bucket_counts)
        negative = _sparse(point.negative.offset, point.negative.bucket_counts)
        threshold = float(point.zero_threshold)
        if not math.isfinite(threshold) or threshold < 0:
            raise ValueError(f"zero threshold {threshold!r} is not a finite non-negative number")
        if sum(positive.values()) + sum(negative.values()) + point.zero_count != point.count:
            raise ValueError("bucket counts do not add up to the count")
        state = cls(point.scale, int(point.zero_count), threshold, positive, negative,
                    point.sum if point.HasField("sum") else None, int(point.count))
        state._fit()
        return state

    def add(self, other: Exponential) -> Exponential:
        """Add a delta: both are brought to the coarser scale first."""
        if other.scale < self.scale:
            self._downscale(self.scale - other.scale)
        elif other.scale > self.scale:
            other._downscale(other.scale - self.scale)
        for mine, theirs in ((self.positive, other.positive), (self.negative, other.negative)):
            for index, count in theirs.items():
                mine[index] = mine.get(index, 0) + count
        self.zero_count += other.zero_count
        self.zero_threshold = max(self.zero_threshold, other.zero_threshold)
        self.count += other.count
        self.sum = self.sum + other.sum if self.sum is not None and other.sum is not None else None
        self._fit()
        return self

    def buckets(self) -> list[tuple[float, int]]:
        out: list[tuple[float, int]] = []
        cumulative = 0
        if self.negative:
            for index in range(max(self.negative), min(self.negative) - 1, -1):
                cumulative += self.negative.get(index, 0)
                _append(out, -self._power(index), cumulative)
        cumulative += self.zero_count
        _append(out, self.zero_threshold, cumulative)
        if self.positive:
            for index in range(min(self.positive), max(self.positive) + 1):
                cumulative += self.positive.get(index, 0)
                _append(out, self._power(index + 1), cumulative)
        _append(out, math.inf, self.count)
        return out

    def _power(self, index: int) -> float:
        """``base ** index`` without overflowing (inf) or underflowing (0) into an exception."""
        exponent = index * 2.0 ** -self.scale
        return math.inf if exponent > 1023 else 0.0 if exponent < -1074 else 2.0 ** exponent

    def _fit(self) -> None:
        while self.scale > _MIN_SCALE and max(_span(self.positive), _span(self.negative)) > MAX_BUCKETS:
            self._downscale(1)

    def _downscale(self, by: int) -> None:
        for name in ("positive", "negative"):
            merged: dict[int, int] = {}
            for index, count in getattr(self, name).items():
                merged[index >> by] = merged.get(index >> by, 0) + count
            setattr(self, name, merged)
        self.scale -= by


def _append(out: list[tuple[float, int]], bound: float, cumulative: int) -> None:
    """Add a bucket, folding it into the previous one when its bound is not above it (rounding at the
    extremes, positive buckets inside the zero threshold)."""
    if out and not bound > out[-1][0]:
        out[-1] = (out[-1][0], cumulative)
    else:
        out.append((bound, cumulative))


def _sparse(offset: int, counts: Any) -> dict[int, int]:
    return {offset + i: int(count) for i, count in enumerate(counts) if count}


def _span(buckets: dict[int, int]) -> int:
    return max(buckets) - min(buckets) + 1 if buckets else 0
