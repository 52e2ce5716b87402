"""The detector's durable store: profiles merged into time buckets in SQLite (WAL), deduplicated.

Usage::

    from servewatch.detectors.service.store import Store
    from servewatch.detectors.service.tiers import Layout

    store = Store("state/", Layout(bucket=60, retention=8 * 86400))
    outcomes = store.write(profiles, now=time.time())    # "accepted" | "duplicate" | a rejection reason, each
    store.maintain(now)                                  # merge sealed buckets upwards, drop expired ones
    merged = store.merged("fraud", "input", now - 3600, now, now)   # the buckets of a window, merged
    store.close()

``write`` commits before it returns: an acknowledged profile survives the detector being killed (``kill -9``
included). With ``fsync=True`` every commit is also flushed to the disk (``synchronous=FULL``), so it
survives a power cut or a kernel crash too, at about a millisecond of latency per commit (commits are
shared by concurrent requests); by default SQLite's WAL is flushed at checkpoints (``synchronous=NORMAL``),
as Prometheus' own WAL is.

A profile that names its producer is recorded under (producer, model, signal, sequence, interval start):
delivered again, it is counted once. The interval start is part of the key so that a producer restarting
under the same id (its sequence starting again at 0) is not mistaken for a repeat; keys are kept for an
hour (or the finest tier's horizon, if longer). Profiles without a producer cannot be deduplicated.

Tables (:mod:`.database`): ``buckets`` (small rows: series, tier, start, version, whether merged upwards)
apart from ``bucket_data`` (the sketches, in the :mod:`.codec` encoding), so scans and bookkeeping never touch
the sketches; ``received`` (dedupe keys), ``series`` (first bucket of each model and signal), ``refs`` (frozen
references), ``meta`` (schema, bucket size). One connection writes (under a lock; the service's committer
thread and the maintenance share it), another reads (evaluation); WAL lets them run side by side. Tier-0
buckets still receiving data stay decoded in memory, so a write decodes nothing; everything else is read
back when needed.

Rejection reasons: ``too_old`` (older than the retention), ``future`` (ends more than five minutes ahead of
the detector's clock), ``series_limit`` (more models and signals than ``max_series``), ``conflict`` (a
column changed kind within a bucket). ``column_limit`` is an acceptance: the profile is stored, but the
columns that would take its bucket past ``max_columns`` (:data:`MAX_COLUMNS`) are left out, counted per
model in ``columns_dropped``.

Damage stays with its model. A bucket row that does not decode (a failed checksum, a blob turned into text,
its sketches missing) is counted in ``corrupt``, logged and started afresh. A roll-up that fails on one
model's data (a row count past 64 bits, say) is recorded in ``failures`` (:mod:`.failures`) and retried at
the next :meth:`Store.maintain`; the other models' buckets are rolled up all the same. Only a failure of the
store itself (disk full, I/O errors) makes ``maintain`` raise.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby

from ...profile import Profile
from .buckets import Bucket, BucketIndex, Changes, merge_into
from .codec import StoreCorrupt, decode_bucket, encode_bucket
from .database import StoreError, connect, init_schema
from .failures import Failures
from .tiers import Layout

__all__ = ["MAX_COLUMNS", "Series", "Store", "StoreError", "store_failure"]

_log = logging.getLogger("servewatch.detect")

_MAX_SKEW = 300.0
_DEDUPE_HORIZON = 3600.0
_BUCKET = ("SELECT b.id, b.version, b.rolled, CAST(d.data AS BLOB) FROM buckets b LEFT JOIN bucket_data d "
           "ON d.id = b.id WHERE model=? AND signal=? AND tier=? AND start=?")
"""A bucket and its data: as bytes whatever the row holds (a text value would fail to decode in the sqlite3
module, outside the checksum's reach), None when the data row is gone."""

MAX_COLUMNS = 512
"""Columns a model's signal keeps per bucket (``Store(max_columns=...)``); the rest are left out and counted."""


def store_failure(error: BaseException) -> bool:
    """True for a failure of the store itself (disk full, I/O, locked, a malformed database file): every
    model's work would fail the same way, so it is no model's failure. Anything else (a row count past 64
    bits, a damaged row) comes from the data of the models involved."""
    return isinstance(error, (OSError, sqlite3.OperationalError)) or type(error) is sqlite3.DatabaseError


@dataclass(frozen=True)
class Series:
    """A (model, signal) the store holds data for; ``first_seen`` is the start of its first bucket."""

    model: str
    signal: str
    first_seen: float


class Store:
    """Buckets of merged profiles under ``directory`` (``detector.db``); see the module docstring."""

    def __init__(self, directory: str | os.PathLike[str], layout: Layout, *, max_series: int = 1000,
                 max_columns: int = MAX_COLUMNS, fsync: bool = False) -> None:
        self.directory = os.fspath(directory)
        self.layout = layout
        self.max_series = max_series
        self.max_columns = max_columns
        self.dedupe_horizon = max(_DEDUPE_HORIZON, layout.tiers[0].horizon)
        os.makedirs(self.directory, exist_ok=True)
        self.path = os.path.join(self.directory, "detector.db")
        self._lock = threading.RLock()
        self._read_lock = threading.Lock()
        synchronous = "FULL" if fsync else "NORMAL"
        fresh = not os.path.exists(self.path)
        self._writer = connect(self.path, synchronous, fresh)
        init_schema(self._writer, self.path, self.layout)
        self._reader = connect(self.path, synchronous, False)
        self._series: dict[tuple[str, str], Series] = {
            (m, s): Series(m, s, first) for m, s, first in self._writer.execute("SELECT model, signal, first_seen "
                                                                                "FROM series")}
        self._version = int(self._writer.execute("SELECT coalesce(max(version), 0) FROM buckets").fetchone()[0])
        self._open: dict[tuple[str, str, int, float], Bucket] = {}
        self.corrupt = 0
        """Stored buckets found damaged (each was logged and replaced by an empty one)."""
        self.columns_dropped: Counter[str] = Counter()
        """Columns left out, per model, because a bucket held ``max_columns`` already."""
        self.failures = Failures()
        """Per-model failures of maintenance (and of evaluation, which records them here too)."""

    @property
    def closed(self) -> bool:
        return self._writer is None

    def close(self) -> None:
        """Checkpoint the WAL into the database and close (idempotent)."""
        with self._lock, self._read_lock:
            if self._writer is None:
                return
            try:
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as error:
                _log.warning("checkpoint at close failed: %s", error)
            self._reader.close()
            self._writer.close()
            self._writer = self._reader = None  # type: ignore[assignment]
            self._open.clear()

    # -- writing ----------------------------------------------------------------------------------------------

    def write(self, profiles: Sequence[Profile], now: float) -> list[str]:
        """Store ``profiles`` in one transaction, committed before this returns. One outcome per profile:
        ``"accepted"``, ``"duplicate"`` or a rejection reason. Raises ``sqlite3.Error`` / ``OSError`` when
        the store cannot commit (nothing of the batch is then kept)."""
        with self._lock:
            work = Changes()
            connection = self._writer
            connection.execute("BEGIN IMMEDIATE")
            try:
                outcomes = [self._write_one(profile, now, work) for profile in profiles]
                self._save(work.changed())
                connection.execute("COMMIT")
            except BaseException:
                self._abandon(work)
                raise
            self.columns_dropped.update(work.dropped)
            for key, bucket in work.changed():
                if key[2] == 0 and not self.layout.sealed(key[3], 0, now):
                    self._open[key] = bucket
                else:
                    self._open.pop(key, None)
            return outcomes

    def _abandon(self, work: Changes) -> None:
        """Roll back, and forget what the transaction changed in memory."""
        try:
            if self._writer.in_transaction:
                self._writer.execute("ROLLBACK")
            self._reload_series()
        except sqlite3.Error as error:
            _log.error("rolling back failed too: %s", error)
        for key in work.buckets:
            self._open.pop(key, None)

    def _write_one(self, profile: Profile, now: float, work: Changes) -> str:
        end = profile.end if profile.end is not None else profile.start
        if end > now + max(_MAX_SKEW, self.layout.grace):
            return "future"
        tier = self.layout.tier_for(end, now)
        if tier is None:
            return "too_old"
        name = (profile.model, profile.signal)
        if name not in self._series and len(self._series) >= self.max_series:
            return "series_limit"
        start = self.layout.bucket_start(end, tier)
        bucket = self._bucket(profile.model, profile.signal, tier, start, work)
        mine = bucket.profile.columns
        if any(name in mine and mine[name].kind != column.kind for name, column in profile.columns.items()):
            return "conflict"
        if profile.producer:
            cursor = self._writer.execute("INSERT OR IGNORE INTO received VALUES (?, ?, ?, ?, ?, ?)",
                                          (profile.producer, profile.model, profile.signal, profile.sequence,
                                           profile.start, now))
            if cursor.rowcount == 0:
                return "duplicate"
        if name not in self._series:
            first = self.layout.bucket_start(end, 0)
            self._writer.execute("INSERT OR IGNORE INTO series VALUES (?, ?, ?)", (*name, first))
            self._series[name] = Series(*name, first)
        extra = [n for n in profile.columns if n not in mine]
        outcome = "accepted"
        if len(mine) + len(extra) > self.max_columns:
            profile = profile.copy()
            dropped = extra[max(self.max_columns - len(mine), 0):]
            for column in dropped:
                del profile.columns[column]
            work.dropped[profile.model] += len(dropped)
            outcome = "column_limit"
        self._merge_up(profile, tier, start, bucket, work)
        return outcome

    def _merge_up(self, profile: Profile, tier: int, start: float, bucket: Bucket, work: Changes) -> None:
        """Merge ``profile`` into ``bucket``, and into its ancestors for as long as they already hold the
        bucket's earlier content (late data for a bucket that was merged upwards)."""
        while True:
            merge_into(bucket.profile, profile)
            work.touched.add((profile.model, profile.signal, tier, start))
            if not bucket.rolled or tier + 1 >= len(self.layout.tiers):
                return
            start, tier = self.layout.parent_start(start, tier), tier + 1
            bucket = self._bucket(profile.model, profile.signal, tier, start, work)

    def _bucket(self, model: str, signal: str, tier: int, start: float, work: Changes) -> Bucket:
        """A bucket as this transaction sees it (from the transaction, the open buckets, disk, or new)."""
        key = (model, signal, tier, start)
        bucket = work.buckets.get(key) or self._open.get(key)
        if bucket is None:
            row = self._writer.execute(_BUCKET, key).fetchone()
            profile = self._decode(row[3], key) if row is not None else None
            if profile is None:
                size = self.layout.tiers[tier].size
                profile = Profile(model, signal, start=start, end=start + size)
            bucket = Bucket(profile, row[1], bool(row[2]), row[0]) if row else Bucket(profile, 0, False)
        work.buckets[key] = bucket
        return bucket

    def _save(self, buckets: Iterable[tuple[tuple[str, str, int, float], Bucket]]) -> None:
        """Write the buckets (metadata and sketches apart: the small rows stay cheap to scan and update)."""
        connection = self._writer
        for key, bucket in buckets:
            self._version += 1
            bucket.version = self._version
            data = encode_bucket(bucket.profile)
            if bucket.id is None:
                cursor = connection.execute("INSERT INTO buckets (model, signal, tier, start, version, rolled, rows) "
                                            "VALUES (?, ?, ?, ?, ?, ?, ?)", (*key, bucket.version, int(bucket.rolled),
                                                                            bucket.profile.rows))
                bucket.id = cursor.lastrowid
                connection.execute("INSERT INTO bucket_data (id, data) VALUES (?, ?)", (bucket.id, data))
            else:
                connection.execute("UPDATE buckets SET version=?, rolled=?, rows=? WHERE id=?",
                                   (bucket.version, int(bucket.rolled), bucket.profile.rows, bucket.id))
                connection.execute("INSERT OR REPLACE INTO bucket_data (id, data) VALUES (?, ?)", (bucket.id, data))

    def _decode(self, data: bytes | None, key: tuple[str, str, int, float]) -> Profile | None:
        try:
            if data is None:
                raise StoreCorrupt("its sketches are missing")
            return decode_bucket(data)
        except StoreCorrupt as error:
            self.corrupt += 1
            _log.error("stored bucket %s/%s tier %d at %s is damaged (%s); starting it afresh", *key, error)
            return None

    def _reload_series(self) -> None:
        self._series = {(m, s): Series(m, s, first) for m, s, first in
                        self._writer.execute("SELECT model, signal, first_seen FROM series")}

    # -- maintenance ------------------------------------------------------------------------------------------

    def maintain(self, now: float, batch: int = 64) -> int:
        """Merge every sealed bucket into its parent, delete buckets past their tier's horizon and old
        dedupe keys. Commits every ``batch`` parents so writers are never held up for long. Returns how many
        buckets were merged upwards. A model whose roll-up fails is recorded in ``failures`` and left for the
        next call; only a failure of the store itself raises."""
        merged = 0
        tiers = self.layout.tiers
        for tier in tiers[:-1]:
            limit = now - tier.size - self.layout.grace
            after: tuple[str, str, float] = ("", "", -math.inf)  # keyset paging: a failed series is passed by
            while True:
                with self._lock:
                    children = self._writer.execute(
                        "SELECT model, signal, start FROM buckets WHERE tier=? AND rolled=0 AND start<=? "
                        "AND (model, signal, start) > (?, ?, ?) ORDER BY model, signal, start LIMIT ?",
                        (tier.index, limit, *after, batch)).fetchall()
                    if not children:
                        break
                    after = children[-1]
                    merged += self._roll_contained(tier.index, children)
        with self._lock:
            connection = self._writer
            connection.execute("BEGIN IMMEDIATE")
            try:
                retained = self.layout.cutoff(len(tiers) - 1, now) - tiers[-1].size
                for tier in tiers:  # merged upwards already, or of the last tier (IN keeps the index usable)
                    kept = "(1)" if tier.index < len(tiers) - 1 else "(0, 1)"
                    connection.execute(f"DELETE FROM buckets WHERE tier=? AND rolled IN {kept} AND start<=?",
                                       (tier.index, self.layout.cutoff(tier.index, now) - tier.size))
                    if tier.index < len(tiers) - 1:  # never merged upwards (its roll-up kept failing): too old now
                        connection.execute("DELETE FROM buckets WHERE tier=? AND rolled=0 AND start<=?",
                                           (tier.index, retained))
                connection.execute("DELETE FROM buckets WHERE tier>=?", (len(tiers),))
                connection.execute("DELETE FROM received WHERE at<?", (now - self.dedupe_horizon,))
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            for key in [key for key in self._open if self.layout.sealed(key[3], key[2], now)]:
                del self._open[key]
        return merged

    def _roll_contained(self, tier: int, children: list[tuple[str, str, float]]) -> int:
        """:meth:`_roll`, and when one series' data fails the batch, each series on its own: the failure stays
        with its series (recorded in ``failures``), the others are rolled up (caller holds the lock)."""
        series = {key: list(group) for key, group in groupby(children, key=lambda child: (child[0], child[1]))}
        try:
            rolled = self._roll(tier, children)
        except Exception as error:
            if store_failure(error):
                raise
            rolled = -1
        if rolled < 0:  # outside the handler, so that a series' own failure is logged without the batch's
            rolled = 0
            for (model, signal), group in list(series.items()):
                try:
                    rolled += self._roll(tier, group)
                except Exception as error:
                    if store_failure(error):
                        raise
                    self.failures.record("maintain", model, signal, error)
                    del series[(model, signal)]
        for model, signal in series:
            self.failures.clear("maintain", model, signal)
        return rolled

    def _roll(self, tier: int, children: list[tuple[str, str, float]]) -> int:
        """Merge ``children`` (tier ``tier``) into their parents in one transaction (caller holds the lock)."""
        work = Changes()
        connection = self._writer
        connection.execute("BEGIN IMMEDIATE")
        try:
            for model, signal, start in children:
                child = self._bucket(model, signal, tier, start, Changes())
                parent_start = self.layout.parent_start(start, tier)
                parent = self._bucket(model, signal, tier + 1, parent_start, work)
                self._merge_up(child.profile, tier + 1, parent_start, parent, work)
                connection.execute("UPDATE buckets SET rolled=1 WHERE model=? AND signal=? AND tier=? AND start=?",
                                   (model, signal, tier, start))
                self._open.pop((model, signal, tier, start), None)
            self._save(work.changed())
            connection.execute("COMMIT")
        except BaseException:
            self._abandon(work)
            raise
        return len(children)

    # -- reading ----------------------------------------------------------------------------------------------

    def series(self) -> list[Series]:
        """Every (model, signal) ever stored, in name order."""
        with self._lock:
            return sorted(self._series.values(), key=lambda s: (s.model, s.signal))

    def index(self, model: str, signal: str, since: float) -> BucketIndex:
        """The series' buckets starting at or after ``since``."""
        with self._read_lock:
            rows = self._reader.execute("SELECT tier, start, version FROM buckets WHERE model=? AND signal=? AND "
                                        "start>=?", (model, signal, since)).fetchall()
        return BucketIndex(rows)

    def load(self, model: str, signal: str, tier: int, start: float) -> tuple[int, Profile] | None:
        """(version, profile) of one bucket, or None when it does not exist (or is damaged)."""
        with self._read_lock:
            row = self._reader.execute(_BUCKET, (model, signal, tier, start)).fetchone()
        if row is None:
            return None
        profile = self._decode(row[3], (model, signal, tier, start))
        return (row[1], profile) if profile is not None else None

    def merged(self, model: str, signal: str, lo: float, hi: float, now: float) -> Profile | None:
        """The buckets of the window ``(lo, hi]`` merged into one profile (None when it holds none)."""
        spans = self.layout.cover(lo, hi, now)
        keys = self.index(model, signal, min((span.first for span in spans), default=hi)).select(spans)
        merged: Profile | None = None
        for tier, start, _ in keys:
            found = self.load(model, signal, tier, start)
            if found is not None:
                merged = found[1] if merged is None else merge_into(merged, found[1])
        return merged

    def received(self, producer: str, model: str, signal: str, sequence: int, start: float) -> bool:
        """True when a profile with this dedupe key was accepted (within the dedupe horizon)."""
        with self._read_lock:
            return self._reader.execute("SELECT 1 FROM received WHERE producer=? AND model=? AND signal=? AND "
                                        "sequence=? AND start=?", (producer, model, signal, sequence, start)
                                        ).fetchone() is not None

    # -- references -------------------------------------------------------------------------------------------

    def reference(self, model: str, signal: str, key: str) -> Profile | None:
        """A reference profile saved under ``key`` (e.g. ``"warmup:3600"``), or None."""
        with self._read_lock:
            row = self._reader.execute("SELECT CAST(data AS BLOB) FROM refs WHERE model=? AND signal=? AND key=?",
                                       (model, signal, key)).fetchone()
        return self._decode(row[0], (model, signal, -1, 0.0)) if row is not None else None

    def save_reference(self, profile: Profile, key: str, now: float) -> None:
        """Keep ``profile`` as the reference of its (model, signal) under ``key``, beyond the retention."""
        with self._lock:
            self._writer.execute("INSERT OR REPLACE INTO refs VALUES (?, ?, ?, ?, ?)",
                                 (profile.model, profile.signal, key, now, encode_bucket(profile)))
