"""The serialized layout of KLL sketches: a structural check of bytes from outside, readers, and the writer.

``datasketches`` 5.2 kills the interpreter (SIGSEGV) when ``kll_doubles_sketch.deserialize`` meets a flipped
bit in a header (truncated and random bytes raise cleanly). :func:`check_kll` walks the documented layout
(preamble, family, version, flags, k and m, level count and offsets) and checks it for consistency with the
length and with n, so only well-formed sketches are handed to the C++ code::

    check_kll(data)                       # raises ProfileError("kll sketch: ...") when anything is off
    sketch = kll_doubles_sketch.deserialize(data)

:func:`kll_items` and :func:`kll_levels` read well-formed bytes straight into numpy; :func:`kll_bytes` writes
the same layout (what :class:`~servewatch.kll_sketch.KllSketch` serializes, and ``deserialize`` reads)::

    levels, n, min_k, low, high = kll_levels(data)       # level 0 first, each level's items
    kll_bytes(200, min_k, n, levels, low, high) == data   # for a sketch whose level 0 is sorted

Layout (little-endian; see datasketches-cpp ``kll_sketch_impl.hpp``)::

    0 preamble ints (2 short | 5 full)  1 serial version (1 | 2 single item)  2 family (15)  3 flags
    4 k (u16)  6 m (u8, 8)  7 unused
    full only:  8 n (u64)  16 min_k (u16)  18 num_levels (u8)  19 unused
                20 levels[num_levels] (u32)  then min, max (one item each)
    then the retained items: levels[num_levels] - levels[0] of them (levels[num_levels] = total capacity)
"""

from __future__ import annotations

import functools
import itertools
import math
import struct

import numpy as np

from .errors import ProfileError

__all__ = ["check_kll", "kll_bytes", "kll_items", "kll_levels", "level_capacities"]

_FAMILY = 15
_M = 8
_MIN_K, _MAX_K = 8, 65535
_EMPTY, _LEVEL_ZERO_SORTED, _SINGLE_ITEM = 1, 2, 4
_HEADER = struct.Struct("<BBBBHBB")
_WEIGHTS = np.exp2(np.arange(64))
_FULL = struct.Struct("<QHBB")


def check_kll(data: bytes, item_size: int = 8) -> None:
    """Raise :class:`ProfileError` unless ``data`` is a well-formed serialized KLL sketch of ``item_size``-byte
    items (8: ``kll_doubles_sketch``, 4: ``kll_floats_sketch``)."""
    size = len(data)
    if size < 8:
        _fail(f"{size} bytes is shorter than the 8-byte preamble")
    preamble, version, family, flags, k, m, _ = _HEADER.unpack_from(data, 0)
    if family != _FAMILY:
        _fail(f"family {family} is not KLL ({_FAMILY})")
    if m != _M:
        _fail(f"m is {m}, expected {_M}")
    if not _MIN_K <= k <= _MAX_K:
        _fail(f"k {k} outside [{_MIN_K}, {_MAX_K}]")
    if flags & ~(_EMPTY | _LEVEL_ZERO_SORTED | _SINGLE_ITEM):
        _fail(f"unknown flag bits {flags:#04x}")
    if flags & _EMPTY:
        if flags & _SINGLE_ITEM or preamble != 2 or version != 1 or size != 8:
            _fail("inconsistent empty sketch")
        return
    if flags & _SINGLE_ITEM:
        if preamble != 2 or version != 2 or size != 8 + item_size:
            _fail("inconsistent single-item sketch")
        if not math.isfinite(struct.unpack_from("<d" if item_size == 8 else "<f", data, 8)[0]):
            _fail("its item is not a finite number")
        return
    if preamble != 5 or version != 1:
        _fail(f"preamble {preamble} / serial version {version} do not describe a full sketch")
    if size < 20:
        _fail(f"{size} bytes is shorter than the 20-byte full header")
    n, min_k, num_levels, _ = _FULL.unpack_from(data, 8)
    if not _MIN_K <= min_k <= k:
        _fail(f"min_k {min_k} outside [{_MIN_K}, k={k}]")
    if not 1 <= num_levels <= 61:
        _fail(f"{num_levels} levels outside [1, 61]")
    levels_end = 20 + 4 * num_levels
    if size < levels_end:
        _fail("truncated in the level offsets")
    levels = struct.unpack_from(f"<{num_levels}I", data, 20)
    capacity = _total_capacity(k, num_levels)
    bounds = (*levels, capacity)
    populations = [bounds[i + 1] - bounds[i] for i in range(num_levels)]
    if levels[0] > capacity or min(populations) < 0:
        _fail(f"level offsets {list(levels)} are not ordered within capacity {capacity}")
    retained = capacity - levels[0]
    expected = levels_end + 2 * item_size + retained * item_size
    if size != expected:
        _fail(f"length {size} does not match the {retained} items its levels describe ({expected} bytes)")
    weight = sum(count << level for level, count in enumerate(populations))
    if weight != n or n < 1:
        _fail(f"n {n} does not match the weights of its retained items ({weight})")
    low, high = struct.unpack_from("<dd" if item_size == 8 else "<ff", data, levels_end)
    if not (math.isfinite(low) and math.isfinite(high) and low <= high):
        _fail("min and max are not ordered finite numbers")
    items = np.frombuffer(data, dtype=_dtype(item_size), count=retained, offset=levels_end + 2 * item_size)
    if retained and not (items.min() >= low and items.max() <= high):  # NaN fails both: items are finite
        _fail("items fall outside the recorded min/max")
    if retained > 1:  # every level but an unsorted level 0 is sorted; a step into the next level may go down
        down = np.flatnonzero(np.diff(items) < 0)
        if down.size:
            if not flags & _LEVEL_ZERO_SORTED:
                down = down[down >= populations[0] - 1]
            starts = set(itertools.accumulate(populations))
            if any(int(index) + 1 not in starts for index in down):
                _fail("a level is not sorted")


def kll_items(data: bytes, item_size: int = 8) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``(items, weights, min, max)`` of a serialized KLL sketch that is known to be well formed (our own,
    or one :func:`check_kll` passed): its retained items with their weights (2**level), read straight from
    the bytes, which is far cheaper than iterating the sketch in Python. Empty sketch: empty arrays, NaN."""
    dtype = _dtype(item_size)
    flags, k = data[3], int.from_bytes(data[4:6], "little")
    if flags & _EMPTY:
        return np.empty(0), np.empty(0), float("nan"), float("nan")
    if flags & _SINGLE_ITEM:
        value = float(np.frombuffer(data, dtype=dtype, count=1, offset=8)[0])
        return np.array([value]), np.ones(1), value, value
    num_levels = data[18]
    levels = list(struct.unpack_from(f"<{num_levels}I", data, 20))
    levels.append(_total_capacity(k, num_levels))
    populations = [levels[i + 1] - levels[i] for i in range(num_levels)]
    start = 20 + 4 * num_levels
    low, high = struct.unpack_from("<dd" if item_size == 8 else "<ff", data, start)
    items = np.frombuffer(data, dtype=dtype, count=levels[-1] - levels[0], offset=start + 2 * item_size)
    weights = np.repeat(_WEIGHTS[:num_levels], populations)
    return items.astype(np.float64), weights, float(low), float(high)


def kll_levels(data: bytes) -> tuple[list[np.ndarray], int, int, float, float]:
    """``(levels, n, min_k, min, max)`` of a well-formed serialized ``kll_doubles_sketch`` (see
    :func:`kll_items`): ``levels[h]`` holds the items of weight 2**h as a read-only float64 view of ``data``
    (level 0 in stored order, the others sorted). Empty sketch: no levels, n 0, NaN."""
    if data[3] & _EMPTY:
        return [], 0, int.from_bytes(data[4:6], "little"), float("nan"), float("nan")
    if data[3] & _SINGLE_ITEM:
        item = np.frombuffer(data, dtype="<f8", count=1, offset=8)
        return [item], 1, int.from_bytes(data[4:6], "little"), float(item[0]), float(item[0])
    num_levels = data[18]
    fields = _full_header(num_levels).unpack_from(data, 0)
    k, n, min_k, low, high = fields[4], fields[7], fields[8], fields[-2], fields[-1]
    capacity = _total_capacity(k, num_levels)
    first = fields[11]
    items = np.frombuffer(data, dtype="<f8", count=capacity - first, offset=36 + 4 * num_levels)
    cuts = [bound - first for bound in fields[11:-2]]
    cuts.append(capacity - first)
    return [items[cuts[h]:cuts[h + 1]] for h in range(num_levels)], n, min_k, low, high


def kll_bytes(k: int, min_k: int, n: int, levels: list[np.ndarray], low: float, high: float) -> bytes:
    """A serialized ``kll_doubles_sketch`` of ``levels`` (level 0 first, every level sorted; their weights
    must add up to ``n``) in the layout above, flagged level-0-sorted; ``deserialize`` reads it back and its
    ``serialize`` gives the same bytes. The caller keeps the levels within :func:`level_capacities`."""
    if n == 0:
        return _HEADER.pack(2, 1, _FAMILY, _EMPTY, k, _M, 0)
    if n == 1:
        return _HEADER.pack(2, 2, _FAMILY, _SINGLE_ITEM | _LEVEL_ZERO_SORTED, k, _M, 0) + struct.pack("<d", low)
    num_levels = len(levels)
    sizes = [level.size for level in levels]
    offsets = itertools.accumulate(sizes[:-1], initial=_total_capacity(k, num_levels) - sum(sizes))
    head = _full_header(num_levels).pack(5, 1, _FAMILY, _LEVEL_ZERO_SORTED, k, _M, 0, n, min_k, num_levels, 0,
                                         *offsets, low, high)
    items = np.concatenate(levels) if num_levels > 1 else levels[0]
    return head + items.astype("<f8", copy=False).tobytes()


@functools.lru_cache(maxsize=64)
def _full_header(num_levels: int) -> struct.Struct:
    """The full preamble, the level offsets, min and max of a sketch of ``num_levels`` levels."""
    return struct.Struct(f"<BBBBHBBQHBB{num_levels}Idd")


def level_capacities(k: int, num_levels: int) -> tuple[int, ...]:
    """The nominal capacity of each level (level 0 first) of a sketch of ``num_levels`` levels: about
    k * (2/3)**depth from the top, at least 8, computed as the C++ library does."""
    return _level_capacities(k, num_levels)


def _dtype(item_size: int) -> str:
    if item_size == 8:
        return "<f8"
    if item_size == 4:
        return "<f4"
    raise ValueError("item_size must be 4 or 8")


@functools.lru_cache(maxsize=1024)
def _level_capacities(k: int, num_levels: int) -> tuple[int, ...]:
    return tuple(max(_M, _capacity_at_depth(k, num_levels - height - 1)) for height in range(num_levels))


@functools.lru_cache(maxsize=1024)
def _total_capacity(k: int, num_levels: int) -> int:
    return sum(_level_capacities(k, num_levels))


def _capacity_at_depth(k: int, depth: int) -> int:
    if depth <= 30:
        return _scaled(k, depth)
    half = depth // 2
    return _scaled(_scaled(k, half), depth - half)


def _scaled(k: int, depth: int) -> int:
    """round(k * (2/3)**depth), in the integer arithmetic the C++ library uses."""
    return (((2 * k) << depth) // 3**depth + 1) >> 1


def _fail(reason: str) -> None:
    raise ProfileError(f"kll sketch: {reason}", reason="corrupt_sketch")
