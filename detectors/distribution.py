"""Read-only views of a column's sketch that the statistics work on.

:class:`Distribution` is the sorted view of a numeric column's KLL sketch: its retained items in order, the
cumulative share of the stream at each, and the sketch's rank error. :class:`Categories` is a categorical
column's category counts from its frequent-items sketch. Both are built once per column and cached on it
(``ColumnProfile.view``) until the column changes::

    view = Distribution.of(column)
    view.cdf_at(np.array([0.0, 1.0]))      # P(X <= x), exact for the sketch's retained items
    view.quantiles([0.25, 0.5, 0.75])
"""

from __future__ import annotations

from collections.abc import Sequence

import datasketches as ds
import numpy as np

from ..column import ColumnProfile
from ..kll_layout import kll_items

__all__ = ["Categories", "Distribution"]


class Distribution:
    """The step CDF a KLL sketch describes: ``items`` (sorted, unique) and ``cdf`` (share of the stream
    <= each item; the last is 1). ``rank_error`` is the sketch's single-sided normalized rank error, 0 while
    the sketch still holds every value."""

    __slots__ = ("items", "cdf", "n", "rank_error", "low", "high", "_steps")

    def __init__(self, items: np.ndarray, weights: np.ndarray, n: int, rank_error: float,
                 low: float | None = None, high: float | None = None) -> None:
        order = np.argsort(items)
        items, weights = items[order], weights[order]
        cumulative = np.cumsum(weights)
        if items.size > 1:
            last = items[1:] != items[:-1]
            if not last.all():  # collapse ties onto their last position
                last = np.append(last, True)
                cumulative, items = cumulative[last], items[last]
        self.items = items
        steps = np.zeros(cumulative.size + 1)  # the CDF left of the first item, then at each item
        if cumulative.size:
            np.divide(cumulative, cumulative[-1], out=steps[1:])
        self._steps = steps
        self.cdf = steps[1:]
        self.n = n
        self.rank_error = rank_error
        self.low = float(items[0]) if low is None and items.size else low
        """The smallest value the sketch saw (it may have compacted it away from ``items``)."""
        self.high = float(items[-1]) if high is None and items.size else high

    @classmethod
    def of(cls, column: ColumnProfile) -> Distribution:
        """The (cached) view of numeric ``column``."""
        view = column.view
        if isinstance(view, Distribution):
            return view
        sketch = column.sketch
        if sketch is None:
            raise TypeError(f"column {column.name!r} is categorical; a Distribution needs a numeric column")
        if sketch.is_empty():
            view = cls(np.empty(0), np.empty(0), 0, 0.0)
        else:
            items, weights, low, high = kll_items(sketch.serialize())
            error = sketch.normalized_rank_error(False) if sketch.is_estimation_mode() else 0.0
            view = cls(items, weights, sketch.n, error, low, high)
        column.view = view
        return view

    def cdf_at(self, points: np.ndarray | float) -> np.ndarray:
        """P(X <= x) for each x in ``points``."""
        return self._steps[self.items.searchsorted(points, side="right")]

    def cdf_below(self, points: np.ndarray | float) -> np.ndarray:
        """P(X < x) for each x in ``points``."""
        return self._steps[self.items.searchsorted(points, side="left")]

    def quantiles(self, ranks: Sequence[float] | np.ndarray) -> np.ndarray:
        """The smallest retained item whose CDF reaches each rank (inclusive quantiles)."""
        index = self.cdf.searchsorted(np.asarray(ranks, dtype=np.float64) - 1e-12, side="left")
        return self.items[np.minimum(index, self.items.size - 1)]

    def mean_std(self) -> tuple[float, float]:
        """The mean and standard deviation of the sketched distribution."""
        weights = np.diff(np.concatenate(([0.0], self.cdf)))
        mean = float(np.dot(weights, self.items))
        return mean, float(np.sqrt(max(np.dot(weights, (self.items - mean) ** 2), 0.0)))


class Categories:
    """Category -> estimated count from a categorical column's frequent-items sketch. ``exact`` is True
    while the sketch tracks every category it saw (then ``other`` is 0)."""

    __slots__ = ("counts", "n", "exact", "distinct")

    def __init__(self, counts: dict[str, float], n: int, exact: bool, distinct: float) -> None:
        self.counts = counts
        self.n = n
        self.exact = exact
        self.distinct = distinct

    @property
    def other(self) -> float:
        """Weight the sketch no longer attributes to a tracked category."""
        return max(self.n - sum(self.counts.values()), 0.0)

    @classmethod
    def of(cls, column: ColumnProfile) -> Categories:
        """The (cached) view of categorical ``column``."""
        view = column.view
        if isinstance(view, Categories):
            return view
        sketch = column.frequent
        if sketch is None:
            raise TypeError(f"column {column.name!r} is numeric; Categories need a categorical column")
        counts: dict[str, float] = {}
        exact = True
        if not sketch.is_empty():
            for item, estimate, lower, _upper in sketch.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES):
                counts[item] = float(estimate)
                exact = exact and estimate == lower
        exact = exact and sum(counts.values()) == sketch.total_weight == column.valid
        distinct = column.distinct.get_estimate() if column.distinct is not None else float(len(counts))
        # the counts are the truth: a sketch that purged every item (or merged such a one) weighs less
        view = cls(counts, max(int(sketch.total_weight), column.valid), exact, distinct)
        column.view = view
        return view
