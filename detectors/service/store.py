"""The detector's durable store: profiles merged into time buckets in SQLite (WAL), deduplicated.

Usage::

    from servewatch.detectors.service.store import Store
    from servewatch.detectors.service.tiers import Layout

    store = Store("state/", Layout(bucket=60, retention=8 * 86400))
    outcomes = store.write(profiles, now=time.time())    # "accepted" | "duplicate" | a rejection reason, each
    store.maintain(now)                                  # merge sealed buckets upwards, drop expired ones
    merged = store.merged("fraud", "input", now - 3600, now, now)   # the buckets of a window, merged
    store.close()

``write`` commits before it returns (``synchronous=FULL``: an acknowledged profile survives a killed process
and a power cut). A profile that names its producer is recorded under (producer, model, signal, sequence,
interval start): delivered again, it is counted once. The interval start is part of the key so that a
producer restarting under the same id (its sequence starting again at 0) is not mistaken for a repeat; keys
are kept for an hour (or the finest tier's horizon, if longer). Profiles without a producer cannot be
deduplicated.

One connection writes (under a lock; the service's single committer thread and the maintenance share it),
another reads (evaluation); WAL lets them run side by side. Tier-0 buckets still receiving data stay decoded
in memory, so a write decodes nothing; everything else is read back when needed. Rejection reasons:
``too_old`` (older than the retention), ``future`` (ends more than five minutes ahead of the detector's
clock), ``series_limit`` (more models and signals than ``max_series``), ``conflict`` (a column changed kind).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ...errors import ServewatchError
from ...profile import Profile
from .codec import StoreCorrupt, decode_bucket, encode_bucket
from .tiers import Layout, Span

__all__ = ["Bucket", "Series", "Store", "StoreError"]

_log = logging.getLogger("servewatch.detect")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (model TEXT NOT NULL, signal TEXT NOT NULL, first_seen REAL NOT NULL,
    PRIMARY KEY (model, signal));
CREATE TABLE IF NOT EXISTS buckets (model TEXT NOT NULL, signal TEXT NOT NULL, tier INTEGER NOT NULL,
    start REAL NOT NULL, version INTEGER NOT NULL, rolled INTEGER NOT NULL DEFAULT 0, rows INTEGER NOT NULL,
    data BLOB NOT NULL, UNIQUE (model, signal, tier, start));
CREATE INDEX IF NOT EXISTS buckets_by_time ON buckets (model, signal, start, tier, version);
CREATE INDEX IF NOT EXISTS buckets_to_roll ON buckets (tier, rolled, start);
CREATE TABLE IF NOT EXISTS received (producer TEXT NOT NULL, model TEXT NOT NULL, signal TEXT NOT NULL,
    sequence INTEGER NOT NULL, start REAL NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (producer, model, signal, sequence, start)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS received_by_age ON received (at);
CREATE TABLE IF NOT EXISTS refs (model TEXT NOT NULL, signal TEXT NOT NULL, key TEXT NOT NULL,
    created REAL NOT NULL, data BLOB NOT NULL, PRIMARY KEY (model, signal, key));
"""
_SCHEMA_VERSION = "1"
_MAX_SKEW = 300.0
_DEDUPE_HORIZON = 3600.0


class StoreError(ServewatchError):
    """The state directory cannot be used (a different layout, a newer schema)."""


@dataclass(frozen=True)
class Series:
    """A (model, signal) the store holds data for; ``first_seen`` is the start of its first bucket."""

    model: str
    signal: str
    first_seen: float


@dataclass
class Bucket:
    """A bucket's merged profile and bookkeeping (``version`` changes with every write)."""

    profile: Profile
    version: int
    rolled: bool


class Store:
    """Buckets of merged profiles under ``directory`` (``detector.db``); see the module docstring."""

    def __init__(self, directory: str | os.PathLike[str], layout: Layout, *, max_series: int = 1000,
                 max_columns: int = 512, synchronous: str = "FULL") -> None:
        self.directory = os.fspath(directory)
        self.layout = layout
        self.max_series = max_series
        self.max_columns = max_columns
        self.dedupe_horizon = max(_DEDUPE_HORIZON, layout.tiers[0].horizon)
        os.makedirs(self.directory, exist_ok=True)
        self.path = os.path.join(self.directory, "detector.db")
        self._lock = threading.RLock()
        self._read_lock = threading.Lock()
        self._writer = self._connect(synchronous)
        self._init_schema()
        self._reader = self._connect(synchronous)
        self._series: dict[tuple[str, str], Series] = {
            (m, s): Series(m, s, first) for m, s, first in self._writer.execute("SELECT model, signal, first_seen "
                                                                                "FROM series")}
        self._version = int(self._writer.execute("SELECT coalesce(max(version), 0) FROM buckets").fetchone()[0])
        self._open: dict[tuple[str, str, int, float], Bucket] = {}
        self.corrupt = 0
        """Stored buckets found damaged (each was logged and replaced by an empty one)."""

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={synchronous}")
        connection.execute("PRAGMA busy_timeout=30000")
        return connection

    def _init_schema(self) -> None:
        connection = self._writer
        if not connection.execute("SELECT name FROM sqlite_master WHERE name='meta'").fetchone():
            connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
            connection.execute("VACUUM")
        connection.executescript(_SCHEMA)
        meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("schema", _SCHEMA_VERSION) != _SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema {meta['schema']} is not one this version reads")
        bucket = repr(self.layout.bucket)
        if "bucket" in meta and meta["bucket"] != bucket:
            raise StoreError(f"{self.path} holds {float(meta['bucket']):g}s buckets; open it with that bucket "
                             f"size, or use another state directory for {self.layout.bucket:g}s buckets")
        connection.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                               [("schema", _SCHEMA_VERSION), ("bucket", bucket)])

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
            touched: dict[tuple[str, str, int, float], Bucket] = {}
            connection = self._writer
            connection.execute("BEGIN IMMEDIATE")
            try:
                outcomes = [self._write_one(profile, now, touched) for profile in profiles]
                self._save(touched.items())
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                for key in touched:
                    self._open.pop(key, None)
                self._reload_series()
                raise
            for key, bucket in touched.items():
                if key[2] == 0 and not self.layout.sealed(key[3], 0, now):
                    self._open[key] = bucket
                else:
                    self._open.pop(key, None)
            return outcomes

    def _write_one(self, profile: Profile, now: float, touched: dict[tuple[str, str, int, float], Bucket]) -> str:
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
        bucket = self._bucket(profile.model, profile.signal, tier, start, touched)
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
        if len(mine) + len(extra) > self.max_columns:
            profile = profile.copy()
            for dropped in extra[max(self.max_columns - len(mine), 0):]:
                del profile.columns[dropped]
        self._merge_up(profile, tier, start, bucket, touched)
        return "accepted"

    def _merge_up(self, profile: Profile, tier: int, start: float, bucket: Bucket,
                  touched: dict[tuple[str, str, int, float], Bucket]) -> None:
        """Merge ``profile`` into ``bucket``, and into its ancestors for as long as they already hold the
        bucket's earlier content (late data for a bucket that was merged upwards)."""
        bucket.profile.merge(profile)
        while bucket.rolled and tier + 1 < len(self.layout.tiers):
            start, tier = self.layout.parent_start(start, tier), tier + 1
            bucket = self._bucket(profile.model, profile.signal, tier, start, touched)
            bucket.profile.merge(profile)

    def _bucket(self, model: str, signal: str, tier: int, start: float,
                touched: dict[tuple[str, str, int, float], Bucket]) -> Bucket:
        """The bucket to write into (marked touched: it gets a new version and is saved on commit)."""
        key = (model, signal, tier, start)
        bucket = touched.get(key) or self._open.get(key)
        if bucket is None:
            row = self._writer.execute("SELECT version, rolled, data FROM buckets WHERE model=? AND signal=? AND "
                                       "tier=? AND start=?", key).fetchone()
            profile = self._decode(row[2], key) if row is not None else None
            if profile is None:
                size = self.layout.tiers[tier].size
                profile = Profile(model, signal, start=start, end=start + size)
            bucket = Bucket(profile, row[0] if row else 0, bool(row[1]) if row else False)
        touched[key] = bucket
        return bucket

    def _save(self, buckets: Iterable[tuple[tuple[str, str, int, float], Bucket]]) -> None:
        rows = []
        for key, bucket in buckets:
            self._version += 1
            bucket.version = self._version
            rows.append((*key, bucket.version, int(bucket.rolled), bucket.profile.rows, encode_bucket(bucket.profile)))
        self._writer.executemany(
            "INSERT INTO buckets (model, signal, tier, start, version, rolled, rows, data) VALUES (?,?,?,?,?,?,?,?) "
            "ON CONFLICT (model, signal, tier, start) DO UPDATE SET version=excluded.version, "
            "rolled=excluded.rolled, rows=excluded.rows, data=excluded.data", rows)

    def _decode(self, data: bytes, key: tuple[str, str, int, float]) -> Profile | None:
        try:
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
        buckets were merged upwards."""
        merged = 0
        tiers = self.layout.tiers
        for tier in tiers[:-1]:
            limit = now - tier.size - self.layout.grace
            while True:
                with self._lock:
                    children = self._writer.execute(
                        "SELECT model, signal, start FROM buckets WHERE tier=? AND rolled=0 AND start<=? "
                        "ORDER BY model, signal, start LIMIT ?", (tier.index, limit, batch)).fetchall()
                    if not children:
                        break
                    merged += self._roll(tier.index, children)
        with self._lock:
            connection = self._writer
            connection.execute("BEGIN IMMEDIATE")
            try:
                for tier in tiers:
                    connection.execute("DELETE FROM buckets WHERE tier=? AND start<=? AND (rolled=1 OR tier=?)",
                                       (tier.index, self.layout.cutoff(tier.index, now) - tier.size, len(tiers) - 1))
                connection.execute("DELETE FROM buckets WHERE tier>=?", (len(tiers),))
                connection.execute("DELETE FROM received WHERE at<?", (now - self.dedupe_horizon,))
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("PRAGMA incremental_vacuum(256)")
            for key in [key for key in self._open if self.layout.sealed(key[3], key[2], now)]:
                del self._open[key]
        return merged

    def _roll(self, tier: int, children: list[tuple[str, str, float]]) -> int:
        """Merge ``children`` (tier ``tier``) into their parents in one transaction (caller holds the lock)."""
        touched: dict[tuple[str, str, int, float], Bucket] = {}
        connection = self._writer
        connection.execute("BEGIN IMMEDIATE")
        try:
            for model, signal, start in children:
                child = self._bucket(model, signal, tier, start, {})
                parent_start = self.layout.parent_start(start, tier)
                parent = self._bucket(model, signal, tier + 1, parent_start, touched)
                self._merge_up(child.profile, tier + 1, parent_start, parent, touched)
                connection.execute("UPDATE buckets SET rolled=1 WHERE model=? AND signal=? AND tier=? AND start=?",
                                   (model, signal, tier, start))
                self._open.pop((model, signal, tier, start), None)
            self._save(touched.items())
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        return len(children)

    # -- reading ----------------------------------------------------------------------------------------------

    def series(self) -> list[Series]:
        """Every (model, signal) ever stored, in name order."""
        with self._lock:
            return sorted(self._series.values(), key=lambda s: (s.model, s.signal))

    def index(self, model: str, signal: str, since: float) -> dict[tuple[int, float], int]:
        """(tier, start) -> version of the series' buckets starting at or after ``since``."""
        with self._read_lock:
            rows = self._reader.execute("SELECT tier, start, version FROM buckets WHERE model=? AND signal=? AND "
                                        "start>=?", (model, signal, since)).fetchall()
        return {(tier, start): version for tier, start, version in rows}

    def load(self, model: str, signal: str, tier: int, start: float) -> tuple[int, Profile] | None:
        """(version, profile) of one bucket, or None when it does not exist (or is damaged)."""
        with self._read_lock:
            row = self._reader.execute("SELECT version, data FROM buckets WHERE model=? AND signal=? AND tier=? AND "
                                       "start=?", (model, signal, tier, start)).fetchone()
        if row is None:
            return None
        profile = self._decode(row[1], (model, signal, tier, start))
        return (row[0], profile) if profile is not None else None

    def merged(self, model: str, signal: str, lo: float, hi: float, now: float) -> Profile | None:
        """The buckets of the window ``(lo, hi]`` merged into one profile (None when it holds none)."""
        spans = self.layout.cover(lo, hi, now)
        found = self.index(model, signal, min((span.first for span in spans), default=hi))
        keys = select(spans, found)
        loaded = (self.load(model, signal, tier, start) for tier, start, _ in keys)
        return Profile.merged(item[1] for item in loaded if item is not None)

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
            row = self._reader.execute("SELECT data FROM refs WHERE model=? AND signal=? AND key=?",
                                       (model, signal, key)).fetchone()
        return self._decode(row[0], (model, signal, -1, 0.0)) if row is not None else None

    def save_reference(self, profile: Profile, key: str, now: float) -> None:
        """Keep ``profile`` as the reference of its (model, signal) under ``key``, beyond the retention."""
        with self._lock:
            self._writer.execute("INSERT OR REPLACE INTO refs VALUES (?, ?, ?, ?, ?)",
                                 (profile.model, profile.signal, key, now, encode_bucket(profile)))


def select(spans: Sequence[Span], found: dict[tuple[int, float], int]) -> list[tuple[int, float, int]]:
    """(tier, start, version) of the buckets in ``found`` that ``spans`` cover, oldest first."""
    chosen = [(tier, start, version) for (tier, start), version in found.items()
              if any(span.tier == tier and span.first <= start < span.stop for span in spans)]
    return sorted(chosen, key=lambda item: (item[1], -item[0]))
