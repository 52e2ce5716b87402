"""How the detector lays time out in buckets: tiers of coarser buckets as data ages, and which buckets a
window merges.

Usage::

    from servewatch.detectors.service.tiers import Layout

    layout = Layout(bucket=60, retention=8 * 86400)
    [tier.size for tier in layout.tiers]            # [60, 600, 3600]: 1m, 10m and 1h buckets
    layout.bucket_start(profile.end, tier=0)         # the bucket a profile goes to
    layout.cover(now - 3600, now, now)               # [(tier, first_start, stop), ...] to merge for a 1h window

Buckets. A bucket of tier ``i`` covers the half-open interval ``(start, start + size]``; starts are multiples
of its size (aligned on the Unix epoch). A profile goes to the bucket that holds the end of its interval, so a
producer whose intervals end on bucket boundaries lands in the bucket its interval covers; a profile whose
interval spans several buckets counts wholly in the last one.

Tiers. Tier 0 has buckets of ``bucket`` seconds kept for 120 buckets; tier 1 has buckets ten times longer,
kept for 144 of them; tier 2 has buckets sixty times longer, kept to the end of ``retention``. With the
defaults (1m buckets, 8 days) that is 1m buckets for 2 hours, 10m buckets for a day and 1h buckets for 8 days:
at most 120 + 144 + 192 buckets per model and signal, whatever the traffic. A bucket is *sealed* once
``grace`` (two buckets) has passed after its end; sealed buckets are merged into their parent in the next
tier, and buckets older than their tier's horizon are deleted once merged. Shorter retentions drop the
tiers they do not need.

Windows. A window ``(lo, hi]`` merges every bucket that overlaps it, each time at the coarsest tier that
holds complete buckets there: whole coarse buckets in the middle, finer ones at both ends where the finer
tiers still hold that time. So a window is exact to one bucket of the finest tier still kept for its oldest
end (one minute for windows within the last two hours, with the defaults), and may reach back that much
further than its length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Layout", "Span", "Tier"]

_FACTORS = (1, 10, 60)
_KEPT = (120, 144)


@dataclass(frozen=True)
class Tier:
    """Buckets of ``size`` seconds, kept while they end within ``horizon`` seconds of now."""

    index: int
    size: float
    horizon: float


@dataclass(frozen=True)
class Span:
    """The buckets of ``tier`` whose start is in ``[first, stop)``."""

    tier: int
    first: float
    stop: float


def floor_to(t: float, size: float) -> float:
    return math.floor(t / size) * size


def ceil_to(t: float, size: float) -> float:
    return math.ceil(t / size) * size


class Layout:
    """The tiers for a base ``bucket`` and a ``retention`` (seconds); see the module docstring."""

    def __init__(self, bucket: float, retention: float) -> None:
        if not bucket > 0:
            raise ValueError(f"bucket must be positive, got {bucket!r}")
        if retention < 2 * bucket:
            raise ValueError(f"retention ({retention:g}s) must be at least two buckets ({2 * bucket:g}s)")
        self.bucket = float(bucket)
        self.retention = float(retention)
        self.grace = 2 * self.bucket
        tiers: list[Tier] = []
        for index, factor in enumerate(_FACTORS):
            size = factor * self.bucket
            if index and size * 2 > retention:
                break
            kept = _KEPT[index] * size if index < len(_KEPT) else retention
            horizon = min(kept, retention)
            tiers.append(Tier(index, size, horizon))
            if horizon >= retention:
                break
        last = tiers[-1]
        tiers[-1] = Tier(last.index, last.size, self.retention)
        self.tiers: tuple[Tier, ...] = tuple(tiers)

    def __repr__(self) -> str:
        return f"Layout(bucket={self.bucket:g}, retention={self.retention:g}, tiers={list(self.tiers)})"

    def describe(self) -> dict[str, float]:
        """What must match between a state directory and the flags it is opened with."""
        return {"bucket": self.bucket, "retention": self.retention}

    # -- buckets ----------------------------------------------------------------------------------------------

    def bucket_start(self, t: float, tier: int = 0) -> float:
        """Start of the tier's bucket ``(start, start + size]`` holding time ``t``."""
        size = self.tiers[tier].size
        return ceil_to(t, size) - size

    def parent_start(self, start: float, tier: int) -> float:
        """Start of the bucket of tier ``tier + 1`` that the tier-``tier`` bucket at ``start`` merges into."""
        return floor_to(start, self.tiers[tier + 1].size)

    def tier_for(self, t: float, now: float) -> int | None:
        """The finest tier still holding time ``t`` at ``now`` (None: older than the retention)."""
        for tier in self.tiers:
            if self.bucket_start(t, tier.index) + tier.size > self.cutoff(tier.index, now):
                return tier.index
        return None

    def sealed(self, start: float, tier: int, now: float) -> bool:
        """True once no more data is expected for the bucket (``grace`` after its end)."""
        return start + self.tiers[tier].size + self.grace <= now

    def cutoff(self, tier: int, now: float) -> float:
        """Buckets of ``tier`` that end at or before this time are deleted at ``now``. Aligned on the next
        tier's buckets, so that what a finer tier no longer holds is whole buckets of the coarser one."""
        spec = self.tiers[tier]
        align = self.tiers[tier + 1].size if tier + 1 < len(self.tiers) else spec.size
        return floor_to(now - spec.horizon, align)

    def frontier(self, tier: int, now: float) -> float:
        """Buckets of ``tier`` ending at or before this time hold all their data (their children are merged)."""
        if tier == 0:
            return math.inf
        return floor_to(now - self.grace, self.tiers[tier].size)

    # -- windows ----------------------------------------------------------------------------------------------

    def cover(self, lo: float, hi: float, now: float) -> list[Span]:
        """The buckets to merge for the window ``(lo, hi]`` at ``now``, oldest first."""
        lo = max(lo, self.cutoff(len(self.tiers) - 1, now))
        if hi <= lo:
            return []
        return self._cover(lo, hi, len(self.tiers) - 1, now)

    def _cover(self, lo: float, hi: float, tier: int, now: float) -> list[Span]:
        if hi <= lo:
            return []
        size = self.tiers[tier].size
        if tier == 0:
            return [Span(0, floor_to(lo, size), hi)]
        spans: list[Span] = []
        held = self.cutoff(tier - 1, now)  # the finer tiers hold (held, now]
        if lo < held:
            cut = min(hi, held)
            spans.append(Span(tier, floor_to(lo, size), cut))
            lo = ceil_to(cut, size)
            if hi <= lo:
                return spans
        first = ceil_to(lo, size)
        stop = min(floor_to(hi, size), floor_to(self.frontier(tier, now), size))
        if stop <= first:
            return spans + self._cover(lo, hi, tier - 1, now)
        return (spans + self._cover(lo, first, tier - 1, now) + [Span(tier, first, stop)]
                + self._cover(stop, hi, tier - 1, now))
