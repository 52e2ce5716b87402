"""Cached windows always equal merging their buckets afresh, as they slide, roll up and receive late data."""

from __future__ import annotations

import random
from collections.abc import Callable

from servewatch.detectors.service import Store
from servewatch.detectors.service.windows import Loader, Windows
from servewatch.profile import Profile

T0 = 1_700_002_800.0


def test_sliding_windows_match_a_fresh_merge(store_factory: Callable[..., Store]) -> None:
    store = store_factory(bucket=1.0, retention=1800.0)
    windows = Windows(store)
    rng = random.Random(3)
    sequence = 0
    checked = 0
    for second in range(1, 1200):
        now = T0 + second
        batch = []
        for _ in range(rng.choice([0, 1, 1, 2])):
            sequence += 1
            late = rng.random() < 0.1
            end = now - (rng.uniform(2, 400) if late else rng.uniform(0, 1))
            values = [rng.gauss(0, 1) for _ in range(rng.randint(1, 4))]
            batch.append(Profile("m", "input", start=end - 1, end=end, producer="p", sequence=sequence)
                         .update({"x": values}))
        if batch:
            assert set(store.write(batch, now=now)) <= {"accepted"}
        if second % 7 == 0:
            store.maintain(now)
            index = store.index("m", "input", now - 4000)
            loader = Loader(store, "m", "input")
            for length in (5.0, 60.0, 600.0, 1500.0):
                cached = windows.profile(("m", length), loader, index, now - length, now, now).profile
                fresh = store.merged("m", "input", now - length, now, now)
                assert (cached.rows if cached else 0) == (fresh.rows if fresh else 0), (second, length)
                if cached is not None and fresh is not None:
                    assert cached.columns["x"].count == fresh.columns["x"].count
                    assert cached.columns["x"].sketch.n == fresh.columns["x"].sketch.n
                checked += 1
            windows.sweep()
    assert checked == 4 * (1199 // 7)
