"""A KLL quantiles sketch whose result depends only on its input: the same values give the same bytes.

Usage::

    import numpy as np
    from servewatch.kll_sketch import KllSketch

    sketch = KllSketch(200)
    sketch.update(np.random.default_rng(0).normal(size=100_000))    # any numeric array; NaN and +-inf ignored
    sketch.get_quantile(0.5), sketch.get_cdf([0.0, 1.0])               # the kll_doubles_sketch reads
    sketch.merge(other)                                                # another KllSketch or kll_doubles_sketch
    data = sketch.serialize()                                          # kll_doubles_sketch.deserialize reads it

Why: ``datasketches.kll_doubles_sketch`` (5.2) halves a level keeping its odd or its even items by a random
bit drawn from a generator seeded by the clock, and its Python binding exposes no seed; so two profiles of
one file differed, and so did every statistic read from them. This class keeps the sketch's state in numpy and
compacts it with the same rules (k, the level capacities, the 2**h weights, the layout: see
:mod:`servewatch.kll_layout`), but draws each compaction's bit from a hash of where it happens (n after the
operation, the level) and of the bits of the items being halved. The bits are a fixed function of the input,
yet they vary from compaction to compaction and between sketches of the same size, as independent bits
would; the rank-error guarantee of KLL (each halving of a sorted level of weight w moves any rank by at most
w, up or down with equal chance) therefore holds as before, and ``normalized_rank_error`` reports the same
bound. Identical inputs, and identical merge orders, give identical bytes; merging is no more commutative
than the library's.

Updates and merges are vectorized: a batch joins level 0 whole, and the sketch is compacted level by level
from the bottom until it fits its capacity: after a merge at once, after updates once level 0 is more than
2,048 items over it (small batches compact together; the bytes, and every read, hold the compacted form,
computed aside, so reading never changes what comes next). A batch of a million values costs one sort, about
a third of ``kll_doubles_sketch.update``'s time, and is more accurate than one-by-one updates. Reads
(quantiles, ranks, CDF, PMF, iteration, ``to_string``) are answered by a ``kll_doubles_sketch`` rebuilt from
the bytes once per change, so they are exactly the library's.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any

import datasketches as ds
import numpy as np

from .kll_layout import kll_bytes, kll_levels, level_capacities

__all__ = ["KllSketch"]

_MIN_K, _MAX_K = 8, 65535
_MASK = (1 << 64) - 1
_CHUNK = 1 << 20
_SLACK = 2048
"""How far updates may leave level 0 over capacity before compacting: small batches compact together."""
_NO_ITEMS = np.empty(0)
_NO_ITEMS.setflags(write=False)


class KllSketch:
    """A deterministic ``kll_doubles_sketch``: the same methods, updates and merges that depend only on the
    input. Level arrays are never written in place (so copies share them); level 0 is kept unsorted."""

    __slots__ = ("_k", "_min_k", "_n", "_levels", "_retained", "_low", "_high", "_settled", "_bytes", "_view")

    def __init__(self, k: int = 200) -> None:
        if not _MIN_K <= k <= _MAX_K:
            raise ValueError(f"k must be in [{_MIN_K}, {_MAX_K}], got {k}")
        self._k = self._min_k = int(k)
        self._n = self._retained = 0
        self._levels: list[np.ndarray] | None = [_NO_ITEMS]
        """Items of weight 2**h at ``[h]``; None while the state is only in ``_bytes`` (parsed on change)."""
        self._low = self._high = float("nan")
        self._settled: tuple[list[np.ndarray], int] | None = None
        """The levels and retained count within capacity (what the bytes hold), cached until a change."""
        self._bytes: bytes | None = None
        self._view: ds.kll_doubles_sketch | None = None

    @classmethod
    def deserialize(cls, data: bytes) -> KllSketch:
        """A sketch from serialized ``kll_doubles_sketch`` bytes (any KLL doubles sketch's, not only ours)."""
        return cls.wrap(ds.kll_doubles_sketch.deserialize(data))

    @classmethod
    def wrap(cls, sketch: ds.kll_doubles_sketch | KllSketch) -> KllSketch:
        """``sketch`` as a :class:`KllSketch` (itself when it is one). A library sketch is read through as is
        and parsed into levels only when this one changes."""
        if isinstance(sketch, KllSketch):
            return sketch
        twin = cls.__new__(cls)
        twin._bytes, twin._view, twin._levels, twin._settled = sketch.serialize(), sketch, None, None
        twin._k = sketch.k
        twin._n = sketch.n
        twin._min_k, twin._retained = twin._k, sketch.num_retained
        empty = sketch.is_empty()
        twin._low = float("nan") if empty else sketch.get_min_value()
        twin._high = float("nan") if empty else sketch.get_max_value()
        return twin

    def __repr__(self) -> str:
        return f"KllSketch(k={self._k}, n={self._n}, retained={self._retained})"

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        return KllSketch.deserialize, (self.serialize(),)

    def __str__(self) -> str:
        return self.to_string()

    # -- state --------------------------------------------------------------------------------------------

    @property
    def k(self) -> int:
        return self._k

    @property
    def n(self) -> int:
        """How many values the sketch has seen."""
        return self._n

    @property
    def num_retained(self) -> int:
        return self._settle()[1]

    def is_empty(self) -> bool:
        return self._n == 0

    def is_estimation_mode(self) -> bool:
        """True once the sketch has compacted (no longer holds every value)."""
        return len(self._settle()[0]) > 1

    def get_min_value(self) -> float:
        """The smallest value seen (RuntimeError for an empty sketch, as the library)."""
        if self._n == 0:
            raise RuntimeError("operation is undefined for an empty sketch")
        return self._low

    def get_max_value(self) -> float:
        if self._n == 0:
            raise RuntimeError("operation is undefined for an empty sketch")
        return self._high

    def normalized_rank_error(self, as_pmf: bool) -> float:
        """The library's rank-error bound for this sketch (99th percentile; see ``kll_doubles_sketch``)."""
        return ds.kll_doubles_sketch.get_normalized_rank_error(self._parsed_min_k(), as_pmf)

    @staticmethod
    def get_normalized_rank_error(k: int, as_pmf: bool) -> float:
        return ds.kll_doubles_sketch.get_normalized_rank_error(k, as_pmf)

    # -- reads (the library's, on the same bytes) -----------------------------------------------------------

    def get_quantile(self, rank: float, inclusive: bool = False) -> float:
        return self._read().get_quantile(rank, inclusive)

    def get_quantiles(self, ranks: Sequence[float], inclusive: bool = False) -> Any:
        return self._read().get_quantiles(ranks, inclusive)

    def get_rank(self, value: float, inclusive: bool = False) -> float:
        return self._read().get_rank(value, inclusive)

    def get_cdf(self, split_points: Sequence[float], inclusive: bool = False) -> Any:
        return self._read().get_cdf(split_points, inclusive)

    def get_pmf(self, split_points: Sequence[float], inclusive: bool = False) -> Any:
        return self._read().get_pmf(split_points, inclusive)

    def to_string(self, print_levels: bool = False, print_items: bool = False) -> str:
        return self._read().to_string(print_levels, print_items)

    def __iter__(self) -> Iterator[tuple[float, int]]:
        """(item, weight) of every retained item."""
        return iter(self._read())

    def serialize(self) -> bytes:
        """The ``kll_doubles_sketch`` serialization of this sketch (cached until it changes)."""
        if self._bytes is None:
            levels = self._settle()[0]
            if levels[0].size > 1:
                levels[0] = np.sort(levels[0])
            self._bytes = kll_bytes(self._k, self._min_k, self._n, levels, self._low, self._high)
        return self._bytes

    def copy(self) -> KllSketch:
        """An independent copy (cheap: level arrays and the read-only view are shared; neither is changed)."""
        twin = KllSketch.__new__(KllSketch)
        twin._k, twin._min_k, twin._n, twin._retained = self._k, self._min_k, self._n, self._retained
        twin._levels = None if self._levels is None else list(self._levels)
        twin._low, twin._high, twin._bytes, twin._view = self._low, self._high, self._bytes, self._view
        twin._settled = None
        return twin

    # -- changes ------------------------------------------------------------------------------------------

    def update(self, values: Any) -> None:
        """Add one value or an array of values (any real dtype, any layout, read-only included). NaN and
        infinities are ignored (:class:`~servewatch.column.ColumnProfile` counts them apart)."""
        array = np.asarray(values, dtype=np.float64).reshape(-1)
        finite = np.isfinite(array)
        if not finite.all():
            array = array[finite]
        if array.size == 0:
            return
        levels = self._change()
        low, high = float(array.min()), float(array.max())
        if self._n == 0:
            self._low, self._high = low, high
        else:
            self._low, self._high = min(self._low, low), max(self._high, high)
        for start in range(0, array.size, _CHUNK):  # bounded working memory for huge batches
            chunk = array[start:start + _CHUNK]
            level0 = np.concatenate((levels[0], chunk))  # a copy of its own: callers keep their arrays
            level0 += 0.0  # -0.0 becomes 0.0: equal items, equal bytes, whatever order a sort leaves them in
            levels[0] = level0
            self._n += chunk.size
            self._retained += chunk.size
            if self._retained > _capacities(self._k, len(levels))[1] + _SLACK:
                self._retained = _compress(levels, self._retained, self._k, self._n)

    def merge(self, other: KllSketch | ds.kll_doubles_sketch) -> None:
        """Fold ``other`` into this sketch (in place): its levels join these, then the sketch is compacted
        until it fits its capacity. Both sides are taken as their bytes hold them, so merging decoded copies
        gives what merging the originals gives."""
        other = KllSketch.wrap(other)
        if other is self:
            other = self.copy()
        if other._n == 0:
            return
        theirs, retained = other._settle()
        settled, self._retained = self._settle()  # as its bytes hold it: merging a decoded copy is the same
        self._levels = levels = list(settled)
        self._bytes = self._view = self._settled = None
        if self._n == 0:
            self._low, self._high = other._low, other._high
        else:
            self._low, self._high = min(self._low, other._low), max(self._high, other._high)
        if len(theirs) > 1:
            self._min_k = min(self._min_k, other._parsed_min_k())
        levels.extend(_NO_ITEMS for _ in range(len(theirs) - len(levels)))
        for height, items in enumerate(theirs):
            if not items.size:
                continue
            mine = levels[height]
            if not mine.size:
                levels[height] = items
            else:
                joined = np.concatenate((mine, items))
                if height:
                    joined.sort(kind="stable")  # two sorted runs: a merge
                levels[height] = joined
        self._n += other._n
        self._retained = _compress(levels, self._retained + retained, self._k, self._n)

    def _change(self) -> list[np.ndarray]:
        """The levels, about to change: parsed from the bytes if need be; the cached bytes and view dropped."""
        levels = self._parsed()
        self._bytes = self._view = self._settled = None
        return levels

    def _settle(self) -> tuple[list[np.ndarray], int]:
        """The levels within capacity: these, or (after updates that left level 0 over it, by less than the
        slack) a compacted copy; the state itself is left as it is, so reading never changes what follows."""
        if self._settled is None:
            levels = self._parsed()
            if self._retained <= _capacities(self._k, len(levels))[1]:
                self._settled = (levels, self._retained)
            else:
                twin = list(levels)
                self._settled = (twin, _compress(twin, self._retained, self._k, self._n))
        return self._settled

    def _parsed(self) -> list[np.ndarray]:
        if self._levels is None:
            assert self._bytes is not None
            levels, _n, self._min_k, _low, _high = kll_levels(self._bytes)
            self._levels = levels or [_NO_ITEMS]
        return self._levels

    def _parsed_min_k(self) -> int:
        if self._levels is None:
            self._parsed()
        return self._min_k

    def _read(self) -> ds.kll_doubles_sketch:
        if self._view is None:
            self._view = ds.kll_doubles_sketch.deserialize(self.serialize())
        return self._view


def _compress(levels: list[np.ndarray], retained: int, k: int, n: int) -> int:
    """Halve the lowest level at or over its capacity until ``levels`` (``retained`` items) fit their total
    capacity; returns the items retained. ``n`` (the sketch's, after the operation) seeds the bits."""
    while True:
        capacities, total = _capacities(k, len(levels))
        if retained <= total:
            return retained
        height = 0
        while levels[height].size < capacities[height]:
            height += 1
        items = levels[height] if height else np.sort(levels[0])
        odd = items.size & 1
        levels[height] = items[:1].copy() if odd else _NO_ITEMS  # an odd level's first item stays
        promoted = items[odd + _offset(n, height, items)::2]
        if height + 1 == len(levels):
            levels.append(promoted.copy())
        elif levels[height + 1].size:
            joined = np.concatenate((levels[height + 1], promoted))
            joined.sort(kind="stable")  # two sorted runs: a merge
            levels[height + 1] = joined
        else:
            levels[height + 1] = promoted.copy()
        retained -= promoted.size


@functools.lru_cache(maxsize=1024)
def _capacities(k: int, num_levels: int) -> tuple[tuple[int, ...], int]:
    capacities = level_capacities(k, num_levels)
    return capacities, sum(capacities)


def _offset(n: int, height: int, items: np.ndarray) -> int:
    """0 or 1: which of each pair of ``items`` (a sorted level, its odd first item left out) survives a
    halving. A hash of the sketch's n after this operation, the level, and the level's first and last items
    (Python's float hash: defined by the language, unsalted): fixed by the input, and as good as a coin flip
    from one compaction to the next and between sketches of the same size."""
    x = (n * 0x9E3779B97F4A7C15 ^ height * 0xD1B54A32D192ED03 ^ hash(items.item(-1)) * 0xBF58476D1CE4E5B9
         ^ hash(items.item(items.size & 1))) & _MASK
    x = ((x ^ (x >> 31)) * 0x94D049BB133111EB) & _MASK
    return (x ^ (x >> 29)) >> 63
