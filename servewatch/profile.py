"""Profiles: the mergeable summary of one model's traffic in one interval, for one signal.

Usage::

    import numpy as np
    from servewatch import Profile, load_spec

    profile = Profile("fraud", "input")                        # automatic columns f0, f1, ... / dict keys
    profile.update(np.random.rand(1000, 3))                    # a batch: 2-D array, rows, column mapping, DataFrame
    profile.update_row({"amount": 12.0, "country": "DE"})      # one row; buffered, then profiled vectorized
    profile.columns["f0"].sketch.get_quantile(0.5)

    spec = load_spec("servewatch.yaml").model("fraud")
    profile = Profile.from_data(rows, model="fraud", spec=spec)  # columns named, typed and ruled by the spec

    data = profile.to_bytes()                                  # an OTLP ExportLogsServiceRequest (one log record)
    same = Profile.from_bytes(data)                            # strict: raises ProfileError on anything malformed
    total = a.copy().merge(b)                                  # merging == profiling the union (within sketch error)

Reproducible: the same data (and the same merges, in the same order) give the same sketches and the same
bytes, so every statistic read from them is the same from run to run (see :mod:`servewatch.kll_sketch`).

A profile is ``model`` + ``signal`` (``"input"`` or ``"prediction"``) + ``start``/``end`` (Unix seconds) +
``producer``/``sequence`` (who sent it, and its number in that producer's stream: the detector counts a
re-delivered profile once) + ``columns`` (name -> :class:`~servewatch.column.ColumnProfile`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .column import ColumnProfile
from .batch import split_columns
from .errors import ProfileError
from .spec import Column, ModelSpec

__all__ = ["Profile", "SIGNALS"]

SIGNALS = ("input", "prediction")
"""The two signals a model has: what it receives and what it answers."""

_ROW_BUFFER = 256


class Profile:
    """The columns of one (model, signal) over one interval. Not thread-safe: callers hold a lock.

    ``spec`` (a :class:`~servewatch.spec.ModelSpec`) names, types and locates the columns and gives their
    rules; without one (or with a spec that lists no columns for this signal) columns are named automatically,
    at most ``max_columns`` of them, typed by their first values (strings -> categorical, else numeric).
    ``k`` sizes every KLL sketch (default: the spec's, else 200).
    """

    def __init__(self, model: str = "default", signal: str = "input", *, spec: ModelSpec | None = None,
                 k: int | None = None, max_columns: int = 64, start: float | None = None, end: float | None = None,
                 producer: str = "", sequence: int = 0) -> None:
        if signal not in SIGNALS:
            raise ValueError(f"signal must be one of {SIGNALS}, got {signal!r}")
        self.model = model
        self.signal = signal
        self.spec = spec
        self.k = k or (spec.k if spec is not None else 200)
        self.max_columns = max_columns
        self.start = time.time() if start is None else float(start)
        self.end = end
        self.producer = producer
        self.sequence = sequence
        self.rows = 0
        self._columns: dict[str, ColumnProfile] = {}
        self._spec_columns: tuple[Column, ...] = spec.columns(signal) if spec is not None else ()
        self._pending: list[Any] = []
        for column in self._spec_columns:
            self._columns[column.name] = ColumnProfile(column.name, column.type, k=self.k, rules=column.rules)

    @classmethod
    def from_data(cls, data: Any, *, model: str = "default", signal: str = "input", spec: ModelSpec | None = None,
                  k: int | None = None, max_columns: int = 64, start: float = 0.0, end: float = 0.0) -> Profile:
        """Profile a whole batch at once (see :meth:`update` for the accepted forms). The same data and
        arguments give the same profile, byte for byte: a batch has no interval of its own, so ``start`` and
        ``end`` are 0 unless given (give them to file a batch in time, e.g. one pushed to the detector)."""
        return cls(model, signal, spec=spec, k=k, max_columns=max_columns, start=start, end=end).update(data)

    @classmethod
    def from_columns(cls, model: str, signal: str, columns: Mapping[str, ColumnProfile], *, rows: int,
                     start: float, end: float | None, producer: str = "", sequence: int = 0) -> Profile:
        """A profile holding ``columns`` as they are (already profiled: decoded from the wire, say), under
        their names in this order, with ``rows`` rows; the caller gives up the columns (they are not copied)."""
        profile = cls(model, signal, start=start, end=end, producer=producer, sequence=sequence)
        profile.rows = rows
        profile._columns = dict(columns)
        return profile

    def __repr__(self) -> str:
        return (f"Profile({self.model!r}, {self.signal!r}, rows={self.rows + len(self._pending)}, "
                f"columns={list(self.columns)})")

    @property
    def columns(self) -> dict[str, ColumnProfile]:
        """Column name -> :class:`ColumnProfile` (buffered rows are profiled first)."""
        if self._pending:
            self.flush()
        return self._columns

    # -- updating -----------------------------------------------------------------------------------------

    def update(self, batch: Any) -> Profile:
        """Profile a batch: a 2-D array, a list of rows (dicts or lists), a column mapping or a DataFrame."""
        if self._pending:
            self.flush()
        split = split_columns(batch, self._spec_columns, max_columns=self.max_columns)
        self.rows += _row_count(split)
        self._update_columns(split)
        return self

    def update_row(self, row: Any) -> Profile:
        """Profile one row (a dict or a sequence). Rows are buffered and profiled together, which keeps the
        per-row cost near a list append."""
        self._pending.append(row)
        if len(self._pending) >= _ROW_BUFFER:
            self.flush()
        return self

    def flush(self) -> None:
        """Profile the buffered rows now (reading ``columns``, merging and encoding do it for you)."""
        rows, self._pending = self._pending, []
        if rows:
            split = split_columns(rows, self._spec_columns, max_columns=self.max_columns)
            self.rows += len(rows)
            self._update_columns(split)

    def _update_columns(self, split: dict[str, Any]) -> None:
        columns = self._columns
        for name, values in split.items():
            column = columns.get(name)
            if column is None:
                if self._spec_columns or len(columns) >= self.max_columns:
                    continue
                column = columns[name] = ColumnProfile(name, _infer_kind(values), k=self.k)
            column.update(values)

    # -- combining ----------------------------------------------------------------------------------------

    def merge(self, other: Profile) -> Profile:
        """Fold ``other`` into this profile (in place): counts add, sketches merge, the interval widens."""
        if other.model != self.model or other.signal != self.signal:
            raise ProfileError(f"cannot merge {other.model}/{other.signal} into {self.model}/{self.signal}")
        mine = self.columns
        for name, column in other.columns.items():
            if name in mine:
                mine[name].merge(column)
            else:
                mine[name] = column.copy()
        self.rows += other.rows
        self.start = min(self.start, other.start)
        ends = [end for end in (self.end, other.end) if end is not None]
        self.end = max(ends) if ends else None
        return self

    @classmethod
    def merged(cls, profiles: Iterable[Profile]) -> Profile | None:
        """A new profile holding all of ``profiles`` (None for none); the inputs are left untouched."""
        result: Profile | None = None
        for profile in profiles:
            result = profile.copy() if result is None else result.merge(profile)
        return result

    def copy(self) -> Profile:
        """An independent copy."""
        twin = Profile(self.model, self.signal, k=self.k, max_columns=self.max_columns, start=self.start,
                       end=self.end, producer=self.producer, sequence=self.sequence)
        twin.spec = self.spec
        twin._spec_columns = self._spec_columns
        twin.rows = self.rows
        twin._columns = {name: column.copy() for name, column in self.columns.items()}
        return twin

    # -- wire form ----------------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """This profile as a serialized OTLP ``ExportLogsServiceRequest`` (POST it to ``/v1/logs`` as is)."""
        from .wire import encode_profiles

        return encode_profiles([self])

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        """Decode bytes from :meth:`to_bytes` (or any OTLP request holding exactly one profile record).

        Strict: a size limit, the version, every type and every sketch's layout are checked first; anything
        wrong raises :class:`~servewatch.ProfileError` with the reason.
        """
        from .wire import decode_profiles

        profiles = decode_profiles(data)
        if len(profiles) != 1:
            raise ProfileError(f"expected exactly one profile, found {len(profiles)}")
        return profiles[0]


def _row_count(split: dict[str, Any]) -> int:
    for values in split.values():
        return int(values.shape[0]) if isinstance(values, np.ndarray) else len(values)
    return 0


def _infer_kind(values: Any) -> str:
    """Strings -> categorical; anything else (numbers, booleans, missing) -> numeric."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind in "US":
            return "categorical"
        if values.dtype.kind != "O":
            return "numeric"
    for value in values:
        if value is None or (isinstance(value, float) and value != value):
            continue
        return "categorical" if isinstance(value, (str, bytes)) else "numeric"
    return "numeric"
