"""What a profile may hold on the wire, and the checks the encoder and the decoder both apply.

Usage::

    from servewatch.wire import Limits                 # the public name (servewatch.wire re-exports it)

    limits = Limits(max_columns=256)                   # a producer or receiver with tighter bounds
    encode_profiles([profile], limits=limits)          # refuses what decode_profiles(data, limits) rejects

:class:`Limits` is the one home of those bounds (names and keys, rows and counts, sequence numbers, interval
ends, columns, sketch and request bytes); each ``check_*`` raises :class:`~servewatch.ProfileError` with its
``reason`` code (:data:`servewatch.errors.PROFILE_REASONS`), so both sides say the same thing about the same
profile.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ProfileError
from .profile import SIGNALS

__all__ = ["DEFAULT_LIMITS", "Limits", "check_counts", "check_identity", "check_interval", "check_name",
           "check_range", "check_width"]


@dataclass(frozen=True)
class Limits:
    """What a profile may hold: the encoder refuses and the decoder rejects anything beyond."""

    max_bytes: int = 64 * 2**20
    """Bytes of one serialized request."""
    max_columns: int = 4096
    """Columns of one profile."""
    max_name_length: int = 256
    """Characters of a model, signal, producer or column name, and of every key in a record's body."""
    max_sketch_bytes: int = 2**20
    """Bytes of one serialized sketch."""
    max_count: int = 2**48
    """Rows of a profile, and each count of a column (2.8e14: a million rows a second for nine years, and
    far enough below 2**63 that merging thousands of profiles never overflows a 64-bit count)."""
    max_sequence: int = 2**63 - 1
    """Sequence numbers are in ``[0, max_sequence]``."""
    max_time: float = 1e10
    """Interval ends are Unix seconds in ``[0, max_time)`` (year 2286; in nanoseconds they fit 64 bits)."""


DEFAULT_LIMITS = Limits()


def check_identity(model: str, signal: str, producer: str | None, limits: Limits) -> None:
    check_name(model, "servewatch.model", limits, required=True)
    if signal not in SIGNALS:
        raise ProfileError(f"servewatch.signal must be one of {', '.join(SIGNALS)}, got {signal[:40]!r}")
    check_name(producer or "", "servewatch.producer", limits, required=False)


def check_name(text: str, where: str, limits: Limits, *, required: bool) -> None:
    if len(text) > limits.max_name_length or (required and not text):
        raise ProfileError(f"{where} must be {int(required)} to {limits.max_name_length} characters, "
                           f"got {len(text)}", "name_length")


def check_interval(start: float, end: float, limits: Limits) -> None:
    for where, seconds in (("servewatch.interval.start", start), ("servewatch.interval.end", end)):
        if not math.isfinite(seconds) or not 0 <= seconds < limits.max_time:
            raise ProfileError(f"{where} {seconds!r} is not a plausible Unix time (0 to {limits.max_time:.0e})",
                               "interval")
    if end < start:
        raise ProfileError("servewatch.interval.end is before servewatch.interval.start", "interval")


def check_range(value: int, top: int, where: str, reason: str) -> None:
    if not 0 <= value <= top:
        raise ProfileError(f"{where} {value} outside [0, {_power(top)}]", reason)


def check_width(columns: int, limits: Limits) -> None:
    if columns > limits.max_columns:
        raise ProfileError(f"{columns} columns is over the limit of {limits.max_columns}", "oversized")


def check_counts(counts: Mapping[str, int], where: str, limits: Limits) -> int:
    """The column's valid values, once every count is in range and they agree with each other."""
    for key, value in counts.items():
        if not 0 <= value <= limits.max_count:
            raise ProfileError(f"{where}: {key} {value} outside [0, {_power(limits.max_count)}]", "count_range")
    valid = counts["count"] - counts["missing"] - counts["non_finite"] - counts["invalid"]
    if valid < 0:
        raise ProfileError(f"{where}: missing + non_finite + invalid exceed count", "count_range")
    if counts["below_min"] + counts["above_max"] > valid:
        raise ProfileError(f"{where}: out-of-range counts exceed the values", "count_range")
    if counts["not_allowed"] > valid:
        raise ProfileError(f"{where}: not_allowed exceeds the values", "count_range")
    return valid


def _power(value: int) -> str:
    """``2**48`` for a power of two (and ``2**63-1`` for one less), else the number."""
    for exponent, offset in ((value.bit_length() - 1, 0), (value.bit_length(), 1)):
        if value > 1024 and value == 2**exponent - offset:
            return f"2**{exponent}" + ("-1" if offset else "")
    return str(value)
