"""The current profile of one (model, signal), and the rows waiting to be profiled together.

Usage::

    from servewatch.instrumentation.buffer import SignalBuffer

    buffer = SignalBuffer("fraud", "input", spec=spec.model("fraud"), max_columns=64)
    buffer.add(buffer.extractor.extract(batch))   # caller holds the model's lock; O(1) for small batches
    profile = buffer.close(time.time())           # the interval's profile (None if it saw no rows); a new one begins
    buffer.counts()                               # column -> [values, missing, invalid] since the process started

Sketch updates are cheap per value but not per call (a numpy pass and a C++ call per column, a few
microseconds), so small batches are gathered first: numeric rows (a 2-D float array, or named 2-D float
tensors side by side) are copied into a preallocated column-major block of :data:`BLOCK_VALUES` values (at
least :data:`FLUSH_ROWS` rows; each column contiguous, so it reaches the sketch without another copy), other
kinds are kept as a list of chunks of up to :data:`FLUSH_ROWS` rows.
The block is profiled when full, when a batch of another shape arrives, and before the profile is read or
closed; a batch as big as the block goes straight in. Memory per buffer: one block (at most
``max(BLOCK_VALUES, FLUSH_ROWS x MAX_BLOCK_WIDTH)`` doubles, 512 KiB) plus ``FLUSH_ROWS`` rows of chunks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from servewatch.profile import Profile
from servewatch.spec import ModelSpec

from .extraction import DENSE, TENSORS, Batch, Extractor, combine
from .guard import errors

__all__ = ["BLOCK_VALUES", "FLUSH_ROWS", "MAX_BLOCK_WIDTH", "MAX_CLASSES", "SignalBuffer"]

BLOCK_VALUES = 16384
"""Numeric values gathered before they are profiled (128 KiB: a 20-column row fills it every 819 calls)."""
FLUSH_ROWS = 256
"""Rows gathered at least (numeric) or at most (other kinds) before they are profiled."""
MAX_BLOCK_WIDTH = 256
"""Numeric batches wider than this are profiled as they come instead of being copied into a block."""
MAX_CLASSES = 20
"""Prediction classes with a series of their own in ``servewatch.prediction.class`` (first seen, first
served: a counter must never move a class back to ``other``); the rest count as ``other``."""


class SignalBuffer:
    """Gathers batches of one (model, signal) into its current :class:`~servewatch.profile.Profile`. Not
    thread-safe: callers hold the model's lock (the ``extractor`` may be used without it)."""

    def __init__(self, model: str, signal: str, *, spec: ModelSpec | None, max_columns: int, start: float) -> None:
        self.model = model
        self.signal = signal
        self.spec = spec if spec is not None and spec.columns(signal) else None
        self.k = spec.k if spec is not None else 200
        self.max_columns = max_columns
        self.extractor = Extractor(signal, spec.columns(signal) if spec is not None else (), max_columns)
        self.profile = self._new_profile(start)
        self.totals: dict[str, list[int]] = {}
        self.class_totals: dict[str, int] = {}
        self._slots: set[str] = set()
        self._kind: str | None = None
        self._signature: Any = None
        self._width = 0
        self._block: np.ndarray | None = None
        self._filled = 0
        self._chunks: list[Any] = []
        self._chunk_rows = 0

    def _new_profile(self, start: float) -> Profile:
        return Profile(self.model, self.signal, spec=self.spec, k=self.k, max_columns=self.max_columns, start=start)

    # -- adding -----------------------------------------------------------------------------------------------

    def add(self, batch: Batch) -> None:
        """Take one extracted batch (its arrays are copied or profiled before this returns)."""
        kind, data, rows, signature = batch
        if kind is not self._kind or signature != self._signature:
            self.flush()
            self._kind, self._signature = kind, signature
            if kind is TENSORS:
                self._width = sum(width for _, width in signature)
            elif kind is DENSE:
                self._width = signature
        if kind is DENSE or kind is TENSORS:
            width = self._width
            block = self._block
            if block is None or block.shape[1] != width:
                if width > MAX_BLOCK_WIDTH:
                    self._update(data)
                    return
                block = self._block = np.empty((max(FLUSH_ROWS, BLOCK_VALUES // width), width), order="F")
            capacity = block.shape[0]
            if rows >= capacity:
                self.flush()
                self._update(data)
                return
            if self._filled + rows > capacity:
                self.flush()
            filled = self._filled
            if kind is DENSE:
                if rows == 1:
                    block[filled] = data  # a row index is cheaper than a slice (numpy drops the leading 1)
                else:
                    block[filled:filled + rows] = data
            else:
                offset = 0
                for array in data.values():  # in the signature's order
                    end = offset + array.shape[1]
                    if rows == 1:
                        block[filled, offset:end] = array
                    else:
                        block[filled:filled + rows, offset:end] = array
                    offset = end
            self._filled += rows
            if self._filled == capacity:
                self.flush()
            return
        self._chunks.append(data)
        self._chunk_rows += rows
        if self._chunk_rows >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Profile what is gathered now."""
        if self._filled:
            filled, self._filled = self._filled, 0
            rows = self._block[:filled]  # type: ignore[index]
            self._update(rows if self._kind is DENSE else _tensors(rows, self._signature))
        if self._chunks:
            chunks, self._chunks, self._chunk_rows = self._chunks, [], 0
            try:
                data = self.extractor.prepare(self._kind, combine(self._kind, chunks))  # type: ignore[arg-type]
            except Exception as error:
                errors.report("profile.update", error)
                return
            self._update(data)

    def _update(self, data: Any) -> None:
        try:
            self.profile.update(data)
        except Exception as error:  # the rows are lost, the request is not
            errors.report("profile.update", error)

    # -- closing and reading ---------------------------------------------------------------------------------

    def close(self, now: float) -> Profile | None:
        """End the current interval at ``now``: its profile (None when it holds no rows) is returned, a new one
        begins, and its counts join the running totals."""
        self.flush()
        profile, self.profile = self.profile, self._new_profile(now)
        profile.end = max(now, profile.start)
        for name, counts in _column_counts(profile).items():
            total = self.totals.setdefault(name, [0, 0, 0])
            for i, value in enumerate(counts):
                total[i] += value
        for name, count in self._current_classes(profile).items():
            self.class_totals[name] = self.class_totals.get(name, 0) + count
        return profile if profile.rows else None

    def counts(self) -> dict[str, list[int]]:
        """Column -> ``[values, missing, invalid]`` since the start of the process (the current interval
        included; ``invalid`` counts wrong types and infinities)."""
        self.flush()
        result = {name: list(total) for name, total in self.totals.items()}
        for name, counts in _column_counts(self.profile).items():
            total = result.setdefault(name, [0, 0, 0])
            for i, value in enumerate(counts):
                total[i] += value
        return result

    def classes(self) -> dict[str, int]:
        """Prediction class -> count since the start of the process (at most :data:`MAX_CLASSES` + ``other``)."""
        self.flush()
        result = dict(self.class_totals)
        for name, count in self._current_classes(self.profile).items():
            result[name] = result.get(name, 0) + count
        return result

    def _current_classes(self, profile: Profile) -> dict[str, int]:
        """The class counts of ``profile``'s first categorical column, folded into the class slots."""
        column = next((column for column in profile.columns.values() if not column.is_numeric), None)
        if column is None:
            return {}
        counts: dict[str, int] = {}
        for category, estimate in sorted(column.categories().items(), key=lambda item: -item[1]):
            if category not in self._slots:
                if len(self._slots) >= MAX_CLASSES:
                    category = "other"
                else:
                    self._slots.add(category)
            counts[category] = counts.get(category, 0) + int(round(estimate))
        return counts


def _tensors(block: np.ndarray, signature: tuple[tuple[str, int], ...]) -> dict[str, np.ndarray]:
    """The named tensors gathered side by side in ``block``, as views of it."""
    tensors = {}
    offset = 0
    for name, width in signature:
        tensors[name] = block[:, offset:offset + width]
        offset += width
    return tensors


def _column_counts(profile: Profile) -> dict[str, tuple[int, int, int]]:
    return {name: (column.count, column.missing, column.invalid + column.non_finite)
            for name, column in profile.columns.items()}
