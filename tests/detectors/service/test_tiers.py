"""Bucket tiers and window covers: every window is covered exactly once, by complete buckets, cheaply."""

from __future__ import annotations

import math
import random

import pytest
from servewatch.detectors.service.tiers import Layout


def test_default_tiers_are_minutes_ten_minutes_and_hours() -> None:
    layout = Layout(60, 8 * 86400)
    assert [(t.size, t.horizon) for t in layout.tiers] == [(60, 7200), (600, 86400), (3600, 8 * 86400)]


def test_short_retentions_drop_tiers() -> None:
    assert [t.size for t in Layout(60, 3600).tiers] == [60]
    assert [(t.size, t.horizon) for t in Layout(60, 3 * 3600).tiers] == [(60, 7200), (600, 3 * 3600)]
    assert [t.size for t in Layout(1, 600).tiers] == [1, 10]
    assert [t.size for t in Layout(1, 3600).tiers] == [1, 10, 60]
    with pytest.raises(ValueError, match="two buckets"):
        Layout(60, 90)


def test_a_profile_goes_to_the_bucket_holding_its_end() -> None:
    layout = Layout(60, 86400)
    assert layout.bucket_start(120.0) == 60.0          # an interval (60, 120] ending on the boundary
    assert layout.bucket_start(120.5) == 120.0
    assert layout.bucket_start(179.9) == 120.0
    assert layout.bucket_start(1234.0, tier=1) == 1200.0


def _existing(layout: Layout, now: float, lo: float) -> dict[int, list[float]]:
    """Every bucket each tier would hold at ``now`` (all of them populated), from ``lo`` on."""
    held = {}
    for tier in layout.tiers:
        first = math.floor((max(lo, layout.cutoff(tier.index, now)) - tier.size) / tier.size) * tier.size
        starts = []
        start = first
        while start < now:
            if start + tier.size > layout.cutoff(tier.index, now):
                starts.append(start)
            start += tier.size
        held[tier.index] = starts
    return held


@pytest.mark.parametrize("bucket,retention", [(60, 8 * 86400), (1, 600), (1, 3600), (60, 3 * 3600), (10, 86400)])
def test_covers_are_exact_disjoint_and_complete(bucket: float, retention: float) -> None:
    layout = Layout(bucket, retention)
    rng = random.Random(7)
    for _ in range(400):
        now = 1.7e9 + rng.uniform(0, 10 * retention)
        now = round(now, 3)
        length = rng.choice([5, 60, 300, 3600, 86400, retention / 3]) * rng.uniform(0.5, 2)
        hi = now - rng.choice([0.0, 0.0, rng.uniform(0, retention)])
        lo = hi - length
        spans = layout.cover(lo, hi, now)
        held = _existing(layout, now, lo - retention)
        chosen = sorted((start, start + layout.tiers[span.tier].size, span.tier) for span in spans
                        for start in held[span.tier] if span.first <= start < span.stop)
        oldest = max(lo, layout.cutoff(len(layout.tiers) - 1, now))
        if hi <= oldest:
            assert chosen == []
            continue
        for (_, a_end, _), (b_start, _, _) in zip(chosen, chosen[1:]):
            assert a_end <= b_start, "buckets overlap"
            assert a_end == b_start, f"a gap between {a_end} and {b_start}"
        assert chosen[0][0] <= oldest and chosen[-1][1] >= hi, "the window is not covered"
        for start, end, tier in chosen:
            assert end > lo and start < hi, "a bucket outside the window"
            if tier and end > layout.cutoff(tier - 1, now):   # finer data exists: the coarse one must be complete
                assert end <= layout.frontier(tier, now)
        finest_held = min(t.index for t in layout.tiers if layout.cutoff(t.index, now) <= oldest) \
            if any(layout.cutoff(t.index, now) <= oldest for t in layout.tiers) else len(layout.tiers) - 1
        slack = layout.tiers[finest_held].size
        assert chosen[0][0] > oldest - max(slack, layout.tiers[chosen[0][2]].size) - 1e-6


def test_covers_use_few_buckets() -> None:
    layout = Layout(60, 8 * 86400)
    now = 1_700_000_000.0 + 1234.5
    for window, most in [(300, 6), (3600, 30), (86400, 60), (7 * 86400, 200)]:
        spans = layout.cover(now - window, now, now)
        held = _existing(layout, now, now - window - 8 * 86400)
        count = sum(1 for span in spans for start in held[span.tier] if span.first <= start < span.stop)
        assert count <= most, (window, count)


def test_seal_and_cutoff_order_keeps_data_until_it_is_merged_upwards() -> None:
    for layout in (Layout(60, 8 * 86400), Layout(1, 600)):
        for tier in layout.tiers[:-1]:
            parent = layout.tiers[tier.index + 1]
            assert tier.horizon > parent.size + layout.grace + tier.size
