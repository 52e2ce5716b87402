"""The detector's SQLite database: its tables, and opening a connection to it.

Usage::

    from servewatch.detectors.service.database import connect, init_schema

    writer = connect(path, "NORMAL", fresh=not os.path.exists(path))   # WAL, 30 s busy timeout
    init_schema(writer, path, layout)                                   # StoreError for another layout or schema

Tables (see :mod:`.store`): ``buckets`` (small rows: series, tier, start, version, whether merged upwards,
rows) apart from ``bucket_data`` (the sketches, deleted with their bucket by a trigger), ``received`` (dedupe
keys), ``series`` (first bucket of each model and signal), ``refs`` (frozen references), ``meta`` (schema,
bucket size).
"""

from __future__ import annotations

import sqlite3

from ...errors import ServewatchError
from .tiers import Layout

__all__ = ["SCHEMA_VERSION", "StoreError", "connect", "init_schema"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (model TEXT NOT NULL, signal TEXT NOT NULL, first_seen REAL NOT NULL,
    PRIMARY KEY (model, signal));
CREATE TABLE IF NOT EXISTS buckets (id INTEGER PRIMARY KEY, model TEXT NOT NULL, signal TEXT NOT NULL,
    tier INTEGER NOT NULL, start REAL NOT NULL, version INTEGER NOT NULL, rolled INTEGER NOT NULL DEFAULT 0,
    rows INTEGER NOT NULL, UNIQUE (model, signal, tier, start));
CREATE INDEX IF NOT EXISTS buckets_by_time ON buckets (model, signal, start, tier, version);
CREATE INDEX IF NOT EXISTS buckets_to_roll ON buckets (tier, rolled, start);
CREATE TABLE IF NOT EXISTS bucket_data (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TRIGGER IF NOT EXISTS bucket_data_follows AFTER DELETE ON buckets
    BEGIN DELETE FROM bucket_data WHERE id = old.id; END;
CREATE TABLE IF NOT EXISTS received (producer TEXT NOT NULL, model TEXT NOT NULL, signal TEXT NOT NULL,
    sequence INTEGER NOT NULL, start REAL NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (producer, model, signal, sequence, start)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS received_by_age ON received (at);
CREATE TABLE IF NOT EXISTS refs (model TEXT NOT NULL, signal TEXT NOT NULL, key TEXT NOT NULL,
    created REAL NOT NULL, data BLOB NOT NULL, PRIMARY KEY (model, signal, key));
"""
SCHEMA_VERSION = "1"


class StoreError(ServewatchError):
    """The state directory cannot be used (a different layout, a newer schema)."""


def connect(path: str, synchronous: str, fresh: bool) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, ``synchronous`` (NORMAL or FULL)."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    if fresh:  # only possible before the first table and before WAL mode
        connection.execute("PRAGMA page_size=16384")  # buckets are tens of KiB: fewer, larger pages
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA synchronous={synchronous}")
    connection.execute("PRAGMA busy_timeout=30000")
    return connection


def init_schema(connection: sqlite3.Connection, path: str, layout: Layout) -> None:
    """Create what is missing; refuse a database of another schema version or bucket size."""
    connection.executescript(_SCHEMA)
    meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
        raise StoreError(f"{path}: schema {meta['schema']} is not one this version reads")
    bucket = repr(layout.bucket)
    if "bucket" in meta and meta["bucket"] != bucket:
        raise StoreError(f"{path} holds {float(meta['bucket']):g}s buckets; open it with that bucket "
                         f"size, or use another state directory for {layout.bucket:g}s buckets")
    connection.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                           [("schema", SCHEMA_VERSION), ("bucket", bucket)])
