"""One column's mergeable summary: counts plus an Apache DataSketches sketch.

Usage::

    import numpy as np
    from servewatch.column import ColumnProfile

    amount = ColumnProfile("amount")                       # numeric: a KLL sketch (k=200)
    amount.update(np.array([12.5, 80.0, np.nan, 7.25]))    # vectorized; NaN counts as missing
    amount.update([3.0, None, "oops"])                     # None -> missing, "oops" -> invalid; never raises
    amount.sketch.get_quantile(0.5)

    country = ColumnProfile("country", "categorical")      # frequent-items + HLL distinct-count sketches
    country.update(["US", "DE", "US", None])

    amount.merge(other_amount)                             # same as having profiled both streams

Numeric columns take any array of numbers: numpy of any real dtype (bool and ints included), read-only or
not, views and strided columns; pandas Series (numpy-backed, nullable and Arrow-backed dtypes), pyarrow and
polars arrays; lists. They count ``missing`` (None/NaN/NA), ``non_finite`` (+-inf), ``invalid`` (values that are
not numbers: strings, lists, ...), and, when rules give ``min``/``max``, ``below_min``/``above_max``; the finite
values go to a :class:`~servewatch.kll_sketch.KllSketch` (a ``kll_doubles_sketch`` whose bytes depend only on
its input: profiling the same data twice gives the same profile). Categorical columns count ``missing``,
``invalid`` (lists, dicts, ...) and, when rules give ``allowed``, ``not_allowed``; values go to a
``frequent_strings_sketch`` and an HLL.
``count`` is every value offered, whatever became of it.
"""

from __future__ import annotations

import numbers
from collections import Counter
from collections.abc import Iterable
from typing import Any

import datasketches as ds
import numpy as np

from .category import category
from .errors import ProfileError
from .kll_sketch import KllSketch
from .spec import Rules
from .tables import arrow_column, table_columns

__all__ = ["ColumnProfile"]

_EMPTY_RULES = Rules()


def _is_na(value: Any) -> bool:
    """None, NaN, pandas NA/NaT and friends: a value that is absent rather than wrong."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    return type(value).__name__ in ("NAType", "NaTType")


class ColumnProfile:
    """The summary of one column in one interval; ``kind`` is ``"numeric"`` or ``"categorical"``.

    ``k`` sizes the KLL sketch (rank error about 1.3% at 200), ``lg_max_k`` the frequent-items sketch (it
    tracks up to 0.75 * 2**lg_max_k categories exactly), ``lg_k`` the HLL. ``rules`` (from the spec) enable
    the range and allowed-value counts.
    """

    __slots__ = ("name", "kind", "rules", "count", "missing", "non_finite", "invalid", "below_min", "above_max",
                 "not_allowed", "sketch", "frequent", "distinct", "lg_k", "view")

    def __init__(self, name: str, kind: str = "numeric", *, k: int = 200, lg_max_k: int = 10, lg_k: int = 12,
                 rules: Rules | None = None) -> None:
        if kind not in ("numeric", "categorical"):
            raise ValueError(f"kind must be 'numeric' or 'categorical', got {kind!r}")
        self.name = name
        self.kind = kind
        self.rules = rules or _EMPTY_RULES
        self.count = self.missing = self.non_finite = self.invalid = 0
        self.below_min = self.above_max = self.not_allowed = 0
        self.lg_k = lg_k
        self.view: Any = None
        """A cache for readers (the detectors keep the sorted view of the sketch here); reset on any change."""
        self.sketch: KllSketch | None = None
        self.frequent: ds.frequent_strings_sketch | None = None
        self.distinct: ds.hll_sketch | None = None
        if kind == "numeric":
            self.sketch = KllSketch(k)
        else:
            self.frequent = ds.frequent_strings_sketch(lg_max_k)
            self.distinct = ds.hll_sketch(lg_k)

    @classmethod
    def from_parts(cls, name: str, kind: str, counts: dict[str, int], *,
                   sketch: KllSketch | ds.kll_doubles_sketch | None = None,
                   frequent: ds.frequent_strings_sketch | None = None, distinct: ds.hll_sketch | None = None,
                   ) -> ColumnProfile:
        """A column from already-built sketches and counts (what a decoder produces); a ``kll_doubles_sketch``
        is taken as a :class:`~servewatch.kll_sketch.KllSketch`, so merging it stays deterministic."""
        column = cls.__new__(cls)
        column.name, column.kind, column.rules = name, kind, _EMPTY_RULES
        for key in ("count", "missing", "non_finite", "invalid", "below_min", "above_max", "not_allowed"):
            setattr(column, key, int(counts.get(key, 0)))
        column.sketch = KllSketch.wrap(sketch) if sketch is not None else None
        column.frequent, column.distinct = frequent, distinct
        column.lg_k = distinct.lg_config_k if distinct is not None else 12
        column.view = None
        return column

    def __repr__(self) -> str:
        return (f"ColumnProfile({self.name!r}, {self.kind!r}, count={self.count}, missing={self.missing}, "
                f"invalid={self.invalid}, valid={self.valid})")

    @property
    def is_numeric(self) -> bool:
        return self.kind == "numeric"

    @property
    def valid(self) -> int:
        """How many values reached the sketch (finite numbers / usable categories)."""
        return self.count - self.missing - self.non_finite - self.invalid

    # -- updating -----------------------------------------------------------------------------------------

    def update(self, values: Any) -> ColumnProfile:
        """Add a batch of values (numpy array, list, pandas Series, ...). Bad values are counted, never raised."""
        self.view = None
        if self.sketch is not None:
            self._update_numeric(values)
        else:
            self._update_categorical(values)
        return self

    def _update_numeric(self, values: Any) -> None:
        array = _as_float_array(values)
        if array is None:
            floats, missing, invalid = _split_numeric(values)
            self.count += len(floats) + missing + invalid
            self.missing += missing
            self.invalid += invalid
            array = floats
        else:
            self.count += array.size
        if array.size == 0:
            return
        finite = np.isfinite(array)
        if not finite.all():
            nan = int(np.count_nonzero(np.isnan(array)))
            self.missing += nan
            self.non_finite += int(array.size - np.count_nonzero(finite)) - nan
            array = array[finite]
            if array.size == 0:
                return
        rules = self.rules
        if rules.min is not None:
            self.below_min += int(np.count_nonzero(array < rules.min))
        if rules.max is not None:
            self.above_max += int(np.count_nonzero(array > rules.max))
        self.sketch.update(array)  # type: ignore[union-attr]

    def _update_categorical(self, values: Any) -> None:
        if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
            flat = values.ravel()
            if flat.dtype.kind == "f":
                nan = np.isnan(flat)
                self.missing += int(np.count_nonzero(nan))
                self.count += int(np.count_nonzero(nan))
                flat = flat[~nan]
            uniques, counts = np.unique(flat, return_counts=True)
            self._add_categories(zip(uniques.tolist(), counts.tolist()))
            return
        if isinstance(values, np.ndarray):
            values = values.ravel().tolist()
        elif not isinstance(values, (list, tuple)):
            values = list(values) if isinstance(values, Iterable) and not isinstance(values, (str, bytes)) else [values]
        try:
            counted = Counter(values)
        except TypeError:  # unhashable values (lists, dicts) are invalid
            hashable = [value for value in values if _hashable(value)]
            self.count += len(values) - len(hashable)
            self.invalid += len(values) - len(hashable)
            counted = Counter(hashable)
        self._add_categories(counted.items())

    def _add_categories(self, items: Iterable[tuple[Any, int]]) -> None:
        allowed = self.rules.allowed
        frequent, distinct = self.frequent, self.distinct
        for value, weight in items:
            self.count += weight
            if _is_na(value):
                self.missing += weight
                continue
            if not isinstance(value, (str, numbers.Number, np.generic)) or isinstance(value, complex):
                self.invalid += weight
                continue
            text = category(value)
            frequent.update(text, weight)  # type: ignore[union-attr]
            distinct.update(text)  # type: ignore[union-attr]
            if allowed is not None and text not in allowed:
                self.not_allowed += weight

    # -- combining ----------------------------------------------------------------------------------------

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        """Fold ``other`` into this column (in place); both must be of the same kind."""
        if other.kind != self.kind:
            raise ProfileError(f"cannot merge column {self.name!r}: {self.kind} with {other.kind}")
        self.view = None
        for name in ("count", "missing", "non_finite", "invalid", "below_min", "above_max", "not_allowed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if self.sketch is not None:
            self.sketch.merge(other.sketch)
        else:
            self.frequent.merge(other.frequent)  # type: ignore[union-attr]
            union = ds.hll_union(max(self.lg_k, other.lg_k))
            union.update(self.distinct)
            union.update(other.distinct)
            self.distinct = union.get_result(ds.HLL_4)
        return self

    def copy(self) -> ColumnProfile:
        """An independent copy (sketches included)."""
        twin = ColumnProfile.__new__(ColumnProfile)
        for name in self.__slots__:
            setattr(twin, name, getattr(self, name))
        twin.view = None
        if self.sketch is not None:
            twin.sketch = self.sketch.copy()
        else:
            twin.frequent = ds.frequent_strings_sketch.deserialize(self.frequent.serialize())  # type: ignore[union-attr]
            twin.distinct = ds.hll_sketch.deserialize(self.distinct.serialize_compact())  # type: ignore[union-attr]
        return twin

    def categories(self) -> dict[str, float]:
        """Estimated count of each category the frequent-items sketch tracks (exact while it is not full)."""
        if self.frequent is None or self.frequent.is_empty():
            return {}
        rows = self.frequent.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES)
        return {item: float(estimate) for item, estimate, _low, _high in rows}


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _as_float_array(values: Any) -> np.ndarray | None:
    """A flat float64 array of ``values`` when they are plainly numeric (missing values as NaN), else None
    (take the careful path). Read-only and strided arrays are fine: the sketch copies what it keeps."""
    if isinstance(values, np.ma.MaskedArray):
        if values.dtype.kind not in "biuf":
            return None
        return np.ma.filled(values.astype(np.float64), np.nan).reshape(-1)
    array: np.ndarray | None
    if isinstance(values, np.ndarray):
        array = values
    elif isinstance(values, (list, tuple)):
        if not values:
            return np.empty(0)
        try:
            array = np.asarray(values)
        except (ValueError, TypeError):  # ragged nesting
            return None
    elif hasattr(values, "to_numpy"):  # pandas Series, pyarrow and polars arrays
        array = _column_array(values)
        if array is None:
            return None
    else:
        return None
    if array.dtype.kind not in "biuf":
        return None
    return array.astype(np.float64, copy=False).reshape(-1)


def _column_array(values: Any) -> np.ndarray | None:
    """A flat numpy array of a pandas, pyarrow or polars column (numbers as float64, NaN where missing: see
    :mod:`servewatch.tables`); None when it cannot be read as one."""
    module = type(values).__module__
    try:
        if module.startswith("pyarrow"):
            return arrow_column(values)
        if module.startswith("pandas") and hasattr(values, "to_frame"):
            return next(iter(table_columns(values.to_frame()).values()))
        return np.asarray(values.to_numpy())
    except (TypeError, ValueError, AttributeError):
        return None


def _split_numeric(values: Any) -> tuple[np.ndarray, int, int]:
    """(numbers, missing, invalid) of arbitrary values, one by one: the path for messy input."""
    if isinstance(values, np.ndarray):
        values = values.ravel().tolist()
    elif isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        values = [values]
    floats: list[float] = []
    missing = invalid = 0
    for value in values:
        if isinstance(value, float):
            floats.append(value)
        elif isinstance(value, (numbers.Real, np.bool_)) and not isinstance(value, np.datetime64):
            try:
                floats.append(float(value))
            except (OverflowError, ValueError):
                invalid += 1
        elif _is_na(value):
            missing += 1
        else:
            invalid += 1
    return np.asarray(floats, dtype=np.float64), missing, invalid

