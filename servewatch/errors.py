"""The exceptions servewatch raises on bad input.

::

    ServewatchError          base class; every error below is one
     ├── SpecError           a monitoring spec that cannot be used (file, path inside it, what is wrong)
     └── ProfileError        profile bytes or data that cannot be decoded (truncated, corrupt, oversized, ...)

Both carry a human-readable reason in ``str(error)``; callers that serve untrusted input (the detector's
receiver) turn them into HTTP answers, never into crashes. A :class:`ProfileError` also carries a ``reason``
code, one of :data:`PROFILE_REASONS`, which the detector counts rejections by
(``servewatch_detector_profiles_rejected_total{reason}``)::

    try:
        Profile.from_bytes(data)
    except ProfileError as error:
        error.reason        # "rows_range"
        str(error)          # "body.rows 9223372036854775807 outside [0, 2**48]"
"""

from __future__ import annotations

__all__ = ["PROFILE_REASONS", "ProfileError", "ServewatchError", "SpecError"]

PROFILE_REASONS = {
    "corrupt_sketch": "a sketch's bytes do not decode, or its layout is impossible",
    "count_range": "a column count outside its range, or counts that contradict each other",
    "hollow_sketch": "a frequent-items sketch that holds a weight but no items and no error to explain it",
    "interval": "an interval end that is not a plausible Unix time, or an end before its start",
    "malformed": "not a profile: a missing field, a wrong type, a key given twice, ...",
    "name_length": "a model, signal, producer, column name or key empty or too long",
    "oversized": "more bytes, columns or sketch bytes than the limits allow",
    "rows_range": "a row count outside its range",
    "sequence_range": "a sequence number outside its range",
    "sketch_mismatch": "a sketch that holds a different number of values than the column's counts",
    "version": "a wire version this decoder does not read",
}
"""Every ``ProfileError.reason``, with what it means (a small fixed set: a metric label)."""


class ServewatchError(Exception):
    """Base class of every error servewatch raises on purpose."""


class SpecError(ServewatchError):
    """A spec that cannot be used.

    ``problems`` lists each problem as ``"<file>: <path>: <what is wrong>"``; ``str()`` joins them one per line.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ProfileError(ServewatchError):
    """Profile bytes (or a profile) that cannot be decoded or used; the message says why, ``reason`` (one of
    :data:`PROFILE_REASONS`) says what kind of problem it is."""

    def __init__(self, message: str, reason: str = "malformed") -> None:
        if reason not in PROFILE_REASONS:
            raise ValueError(f"unknown profile error reason {reason!r}")
        super().__init__(message)
        self.reason = reason
