"""The durable store: dedupe, rejections, coarsening within the retention, late data, reopening, damage."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import numpy as np
import pytest
from servewatch.detectors import ks
from servewatch.detectors.service import Layout, Store, StoreError

from servewatch.profile import Profile

T0 = 1_700_002_800.0  # a multiple of 3600 (so of 600 and 60)


def test_a_profile_delivered_twice_is_counted_once(store_factory: Callable[..., Store],
                                                   profile: Callable[..., Profile]) -> None:
    store = store_factory()
    first = profile(end=T0 + 30, producer="replica-1", sequence=7)
    assert store.write([first], now=T0 + 31) == ["accepted"]
    assert store.write([first, first], now=T0 + 32) == ["duplicate", "duplicate"]
    restarted = profile(end=T0 + 50, producer="replica-1", sequence=7, length=5)  # same id, new interval
    anonymous = profile(end=T0 + 40, producer="")
    assert store.write([restarted, anonymous, anonymous], now=T0 + 51) == ["accepted"] * 3
    assert store.received("replica-1", "fraud", "input", 7, first.start)
    merged = store.merged("fraud", "input", T0, T0 + 60, T0 + 61)
    assert merged is not None and merged.rows == 4 * 200


def test_rejections_name_their_reason(store_factory: Callable[..., Store], profile: Callable[..., Profile]) -> None:
    store = store_factory(retention=86400, max_series=2)
    now = T0 + 100_000
    old = profile(end=now - 86400 - 3600)
    ahead = profile(end=now + 3600)
    first, other_signal = profile(end=now), profile(signal="prediction", end=now)
    third = profile(model="other", end=now)
    changed = Profile("fraud", "input", start=now - 1, end=now).update({"amount": np.array(["a", "b"])})
    assert store.write([old, ahead, first, other_signal, third, changed], now=now) == \
        ["too_old", "future", "accepted", "accepted", "series_limit", "conflict"]
    assert [(s.model, s.signal) for s in store.series()] == [("fraud", "input"), ("fraud", "prediction")]


def test_sealed_buckets_merge_into_coarser_ones(store_factory: Callable[..., Store],
                                                profile: Callable[..., Profile]) -> None:
    store = store_factory()
    for minute in range(1, 31):
        store.write([profile(end=T0 + 60 * minute, rows=100, sequence=minute, seed=minute)], now=T0 + 60 * minute + 1)
    merged = store.maintain(T0 + 60 * 30 + 1)
    assert merged == 28 + 2  # minutes whose bucket ended two buckets (the grace) ago, and two full 10m buckets
    index = store.index("fraud", "input", T0 - 3600)
    assert index.starts(1) == [T0, T0 + 600, T0 + 1200]
    found = store.load("fraud", "input", 1, T0 + 600)
    assert found is not None and found[1].rows == 10 * 100
    window = store.merged("fraud", "input", T0, T0 + 1800, T0 + 1801)  # uses the two complete 10m buckets
    direct = Profile.merged(profile(end=T0 + 60 * m, rows=100, seed=m) for m in range(1, 31))
    assert window is not None and direct is not None and window.rows == direct.rows == 3000
    assert ks(window.columns["amount"], direct.columns["amount"]).value < 0.03


def test_disk_stays_bounded_by_the_retention(store_factory: Callable[..., Store]) -> None:
    store = store_factory(bucket=1.0, retention=600.0)
    assert [t.size for t in store.layout.tiers] == [1.0, 10.0]
    counts = []
    for second in range(1, 1501):
        now = T0 + second
        small = Profile("m", "input", start=now - 1, end=now, producer="p", sequence=second).update({"x": [1.0, 2.0]})
        store.write([small], now=now + 0.1)
        if second % 10 == 0:
            store.maintain(now + 0.1)
            counts.append(len(store.index("m", "input", 0.0)))
    assert max(counts[-60:]) <= 120 + 60 + 4          # 1s buckets for 2 minutes, 10s buckets for 10 minutes
    window = store.merged("m", "input", T0 + 1500 - 300, T0 + 1500, T0 + 1500.1)
    assert window is not None and 2 * 300 <= window.rows <= 2 * 302
    everything = store.merged("m", "input", 0.0, T0 + 1500, T0 + 1500.1)
    assert everything is not None and 2 * 600 <= everything.rows <= 2 * 620   # older data is gone
    with sqlite3.connect(store.path) as connection:
        keys = connection.execute("SELECT count(*) FROM received").fetchone()[0]
    assert keys <= 3600 + 20


def test_late_data_reaches_buckets_already_merged_upwards(store_factory: Callable[..., Store],
                                                          profile: Callable[..., Profile]) -> None:
    store = store_factory()
    for minute in range(1, 21):
        store.write([profile(end=T0 + 60 * minute, rows=100, sequence=minute)], now=T0 + 60 * minute + 1)
    store.maintain(T0 + 60 * 25)
    before = store.load("fraud", "input", 1, T0)
    late = profile(end=T0 + 60 * 3 + 30, rows=7, sequence=99)
    assert store.write([late], now=T0 + 60 * 26) == ["accepted"]
    after = store.load("fraud", "input", 1, T0)
    assert before is not None and after is not None and after[1].rows == before[1].rows + 7
    minute = store.load("fraud", "input", 0, T0 + 180)
    assert minute is not None and minute[1].rows == 107


def test_reopening_keeps_everything_and_refuses_another_bucket_size(store_factory: Callable[..., Store],
                                                                    profile: Callable[..., Profile]) -> None:
    store = store_factory()
    first = profile(end=T0 + 30, producer="a", sequence=1)
    store.write([first], now=T0 + 31)
    store.save_reference(first, "warmup:3600.0", T0 + 31)
    store.close()
    again = store_factory()
    assert [s.first_seen for s in again.series()] == [T0]
    assert again.write([first], now=T0 + 40) == ["duplicate"]
    reference = again.reference("fraud", "input", "warmup:3600.0")
    assert reference is not None and reference.rows == 200
    again.close()
    with pytest.raises(StoreError, match="60s buckets"):
        Store(again.directory, Layout(1.0, 3600.0))


def test_a_damaged_bucket_is_reported_and_started_afresh(store_factory: Callable[..., Store],
                                                         profile: Callable[..., Profile]) -> None:
    store = store_factory()
    store.write([profile(end=T0 + 30, sequence=1)], now=T0 + 31)
    store.close()
    with sqlite3.connect(store.path) as connection:
        (data,) = connection.execute("SELECT data FROM bucket_data").fetchone()
        damaged = data[:40] + bytes([data[40] ^ 0x10]) + data[41:]
        connection.execute("UPDATE bucket_data SET data=?", (damaged,))
    store = store_factory()
    assert store.load("fraud", "input", 0, T0) is None
    assert store.corrupt == 1
    assert store.write([profile(end=T0 + 40, sequence=2, rows=5)], now=T0 + 41) == ["accepted"]
    found = store.load("fraud", "input", 0, T0)
    assert found is not None and found[1].rows == 5


def test_columns_beyond_the_limit_are_dropped_and_counted(store_factory: Callable[..., Store]) -> None:
    store = store_factory(max_columns=3)
    wide = Profile("m", "input", start=T0, end=T0 + 30).update(np.ones((10, 5)))
    assert store.write([wide], now=T0 + 31) == ["column_limit"]   # stored, but not whole: the caller is told
    found = store.load("m", "input", 0, T0)
    assert found is not None and sorted(found[1].columns) == ["f0", "f1", "f2"] and found[1].rows == 10
    assert sorted(wide.columns) == ["f0", "f1", "f2", "f3", "f4"]  # the caller's profile is left alone
    assert store.write([Profile("m", "input", start=T0, end=T0 + 31).update({"f1": [2.0]})], now=T0 + 32) == \
        ["accepted"]
    assert store.columns_dropped == {"m": 2}


def _overflowing(model: str, end: float, sequence: int) -> Profile:
    profile = Profile(model, "input", start=end - 1, end=end, producer="hostile", sequence=sequence)
    profile.update({"x": [1.0]})
    profile.rows = 2**63 - 1   # what the wire refuses now; a store holding it from before must still cope
    return profile


def test_a_model_whose_roll_up_fails_stops_no_other_model(store_factory: Callable[..., Store],
                                                          profile: Callable[..., Profile],
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """Two profiles whose rows overflow 64 bits once merged, in neighbouring buckets: their model's roll-up
    fails at every maintain, counted and logged once; the healthy model is rolled up all the same, after a
    restart too."""
    store = store_factory()
    assert store.write([_overflowing("bad", T0 + 30, 1), _overflowing("bad", T0 + 90, 2),
                        profile(model="good", end=T0 + 30), profile(model="good", end=T0 + 90, sequence=1)],
                       now=T0 + 91) == ["accepted"] * 4
    caplog.set_level("ERROR", logger="servewatch.detect")
    for attempt in (1, 2):
        store.maintain(T0 + 1000)
        assert store.failures.counts == {("bad", "maintain"): attempt}
    assert len([r for r in caplog.records if "bad/input: maintain failed" in r.getMessage()]) == 1
    assert store.index("good", "input", 0.0).starts(1) == [T0]           # rolled up into its 10-minute bucket
    assert store.index("bad", "input", 0.0).starts(0) == [T0, T0 + 60]   # left as they were, for the next try
    merged = store.merged("good", "input", T0, T0 + 600, T0 + 1000)
    assert merged is not None and merged.rows == 400
    store.close()
    again = store_factory()
    again.write([profile(model="good", end=T0 + 1030, sequence=2)], now=T0 + 1031)
    again.maintain(T0 + 2000)
    assert again.failures.counts == {("bad", "maintain"): 1}
    assert again.index("good", "input", 0.0).starts(1) == [T0, T0 + 600]
    again.maintain(T0 + 9 * 86400)                      # past the retention: what never rolled up goes too
    assert not again.index("bad", "input", 0.0) and again.failures.counts == {("bad", "maintain"): 2}
    again.maintain(T0 + 9 * 86400 + 60)
    assert again.failures.counts == {("bad", "maintain"): 2}


@pytest.mark.parametrize("damage", [
    "UPDATE bucket_data SET data = CAST(x'ff00fe9a' AS TEXT) WHERE id = ?",   # a blob read back as text
    "UPDATE bucket_data SET data = 12345 WHERE id = ?",
    "DELETE FROM bucket_data WHERE id = ?",                                     # its sketches gone
])
def test_an_unreadable_bucket_row_is_damage_of_its_model_alone(store_factory: Callable[..., Store],
                                                              profile: Callable[..., Profile], damage: str) -> None:
    store = store_factory()
    store.write([profile(model="bad", end=T0 + 30), profile(model="good", end=T0 + 30)], now=T0 + 31)
    store.close()
    with sqlite3.connect(store.path) as connection:
        (bad,) = connection.execute("SELECT id FROM buckets WHERE model='bad'").fetchone()
        connection.execute(damage, (bad,))
    store = store_factory()
    assert store.load("bad", "input", 0, T0) is None and store.corrupt == 1
    assert store.maintain(T0 + 1000) == 4                  # both rolled up twice (1m -> 10m -> 1h), the bad one afresh
    assert store.failures.counts == {}
    merged = store.merged("good", "input", T0, T0 + 600, T0 + 1000)
    assert merged is not None and merged.rows == 200
    assert store.write([profile(model="bad", end=T0 + 30, sequence=1, rows=5)], now=T0 + 40) == ["accepted"]
    found = store.load("bad", "input", 0, T0)
    assert found is not None and found[1].rows == 5                       # late data lands in a working bucket


def test_a_column_that_changes_kind_between_buckets_breaks_nothing(store_factory: Callable[..., Store]) -> None:
    store = store_factory(bucket=1.0, retention=3600.0)
    numeric = Profile("m", "input", start=T0, end=T0 + 1).update({"x": [1.0, 2.0], "y": [1.0, 1.0]})
    categorical = Profile("m", "input", start=T0 + 1, end=T0 + 2).update({"x": ["a", "b"], "y": [3.0, 4.0]})
    assert store.write([numeric], now=T0 + 1.5) == ["accepted"]
    assert store.write([categorical], now=T0 + 2.5) == ["accepted"]        # another bucket: accepted
    assert store.maintain(T0 + 30) >= 2                                    # and merged upwards all the same
    merged = store.merged("m", "input", T0, T0 + 10, T0 + 30)
    assert merged is not None and merged.columns["x"].kind == "numeric" and merged.columns["x"].count == 2
    assert merged.columns["y"].count == 4 and merged.rows == 4
