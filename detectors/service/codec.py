"""The store's own encoding of a profile: compact, fast to read back, and checksummed.

Usage::

    from servewatch.detectors.service.codec import decode_bucket, encode_bucket

    data = encode_bucket(profile)          # bytes for one SQLite row
    profile = decode_bucket(data)          # StoreCorrupt if the bytes were damaged on disk

Buckets are read back many times (every rebuild of a window merges the buckets it covers), so they do not
use the OTLP wire form, whose strict decoder costs about a millisecond per profile; this form decodes in tens
of microseconds. Its bytes only ever come from this process, and a CRC-32 over everything after the magic
catches damage on disk before any sketch bytes reach the C++ library::

    b"SWB1"  crc32 (u32)  header length (u32)  header (JSON)  sketch bytes, in header order

    header: {"m": model, "s": signal, "r": rows, "a": start, "b": end,
             "c": [[name, kind, [count, missing, non_finite, invalid, below_min, above_max, not_allowed],
                    [sketch byte lengths]], ...]}
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import datasketches as ds

from ...column import ColumnProfile
from ...errors import ProfileError
from ...profile import Profile

__all__ = ["StoreCorrupt", "decode_bucket", "encode_bucket"]

_MAGIC = b"SWB1"
_PREFIX = struct.Struct("<4sII")
_COUNTS = ("count", "missing", "non_finite", "invalid", "below_min", "above_max", "not_allowed")


class StoreCorrupt(ProfileError):
    """Bytes in the store that fail their checksum or do not decode."""


def encode_bucket(profile: Profile) -> bytes:
    """``profile`` in the store's encoding."""
    columns: list[Any] = []
    blobs: list[bytes] = []
    for name, column in profile.columns.items():
        if column.sketch is not None:
            parts = [column.sketch.serialize()]
        else:
            parts = [column.frequent.serialize(), column.distinct.serialize_compact()]  # type: ignore[union-attr]
        columns.append([name, column.kind, [getattr(column, key) for key in _COUNTS], [len(p) for p in parts]])
        blobs.extend(parts)
    header = json.dumps({"m": profile.model, "s": profile.signal, "r": profile.rows, "a": profile.start,
                         "b": profile.end, "c": columns}, separators=(",", ":")).encode()
    body = struct.pack("<I", len(header)) + header + b"".join(blobs)
    return _MAGIC + struct.pack("<I", zlib.crc32(body)) + body


def decode_bucket(data: bytes) -> Profile:
    """The profile ``data`` holds; :class:`StoreCorrupt` when it is damaged."""
    if len(data) < _PREFIX.size or data[:4] != _MAGIC:
        raise StoreCorrupt("not a stored bucket (bad magic)")
    magic, crc, header_length = _PREFIX.unpack_from(data, 0)
    view = memoryview(data)
    if zlib.crc32(view[8:]) != crc:
        raise StoreCorrupt("stored bucket fails its checksum")
    offset = _PREFIX.size + header_length
    try:
        header = json.loads(bytes(view[_PREFIX.size:offset]))
        profile = Profile(header["m"], header["s"], start=header["a"], end=header["b"])
        profile.rows = int(header["r"])
        columns = profile.columns
        for name, kind, counts, lengths in header["c"]:
            parts = []
            for length in lengths:
                parts.append(bytes(view[offset:offset + length]))
                offset += length
            values = dict(zip(_COUNTS, counts))
            if kind == "numeric":
                columns[name] = ColumnProfile.from_parts(name, kind, values,
                                                         sketch=ds.kll_doubles_sketch.deserialize(parts[0]))
            else:
                columns[name] = ColumnProfile.from_parts(name, kind, values,
                                                         frequent=ds.frequent_strings_sketch.deserialize(parts[0]),
                                                         distinct=ds.hll_sketch.deserialize(parts[1]))
    except StoreCorrupt:
        raise
    except Exception as error:  # a checksum collision on garbage: still never a crash
        raise StoreCorrupt(f"stored bucket does not decode: {error}") from None
    if offset != len(data):
        raise StoreCorrupt("stored bucket has trailing bytes")
    return profile
