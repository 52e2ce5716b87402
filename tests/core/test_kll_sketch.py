"""KllSketch: the library's layout and reads, the same bytes for the same input, KLL's error bound and space."""

from __future__ import annotations

import datasketches as ds
import numpy as np
import pytest

from servewatch.kll_layout import check_kll, kll_levels, level_capacities
from servewatch.kll_sketch import KllSketch, _offset

SIZES = (0, 1, 2, 7, 200, 201, 1000, 25_000, 400_000)


def _sketch(values: np.ndarray, k: int = 200, chunk: int | None = None) -> KllSketch:
    sketch = KllSketch(k)
    for start in range(0, max(values.size, 1), chunk or max(values.size, 1)):
        sketch.update(values[start:start + (chunk or values.size)])
    return sketch


def _max_rank_error(sketch: KllSketch | ds.kll_doubles_sketch, data: np.ndarray) -> float:
    ordered = np.sort(data)
    points = np.quantile(ordered, np.linspace(0.001, 0.999, 300))
    exact = np.searchsorted(ordered, points, side="right") / ordered.size
    return float(np.max(np.abs(np.array(sketch.get_cdf(points.tolist()))[:-1] - exact)))


@pytest.mark.parametrize("n", SIZES)
def test_bytes_are_the_library_layout_and_read_back_unchanged(n: int) -> None:
    values = np.random.default_rng(n).normal(size=n)
    sketch = _sketch(values, chunk=256 if n > 1000 else None)
    data = sketch.serialize()
    check_kll(data)
    library = ds.kll_doubles_sketch.deserialize(data)
    assert library.serialize() == data  # the library reads our bytes and writes them back identically
    assert (library.n, library.num_retained, library.k) == (n, sketch.num_retained, 200) and sketch.n == n
    assert library.is_estimation_mode() == sketch.is_estimation_mode() == (n > 200)
    if n:
        assert sketch.get_min_value() == values.min() and sketch.get_max_value() == values.max()
        ranks = [0.0, 0.1, 0.5, 0.99, 1.0]
        assert sketch.get_quantiles(ranks) == library.get_quantiles(ranks)
        assert sketch.get_cdf([0.0]) == library.get_cdf([0.0]) and sketch.get_rank(0.0) == library.get_rank(0.0)
        assert sorted(sketch) == sorted(library)
    assert KllSketch.deserialize(data).serialize() == data


def test_same_input_same_bytes_and_different_input_different_bits() -> None:
    rng = np.random.default_rng(1)
    values = rng.lognormal(size=300_000)
    for chunk in (None, 256, 7):
        first, second = _sketch(values[:30_000], chunk=chunk), _sketch(values[:30_000], chunk=chunk)
        assert first.serialize() == second.serialize()
    assert _sketch(values).serialize() == _sketch(values.copy()).serialize()
    # the halving bits are a coin flip per compaction: over lengths, levels and contents about half are 1
    items = np.sort(rng.normal(size=64))
    by_n = [_offset(n, 0, items) for n in range(20_000)]
    by_items = [_offset(1000, level % 20, np.sort(rng.normal(size=16))) for level in range(20_000)]
    assert 0.48 < np.mean(by_n) < 0.52 and 0.48 < np.mean(by_items) < 0.52
    assert abs(np.corrcoef(by_n[:-1], by_n[1:])[0, 1]) < 0.03  # consecutive compactions are not correlated


def test_merge_in_a_fixed_order_gives_the_same_bytes_and_keeps_the_inputs() -> None:
    rng = np.random.default_rng(2)
    parts = [_sketch(rng.normal(size=int(size))) for size in rng.integers(1, 5000, 40)]
    before = [part.serialize() for part in parts]

    def fold() -> bytes:
        total = KllSketch(200)
        for part in parts:
            total.merge(part)
        return total.serialize()

    assert fold() == fold()
    assert [part.serialize() for part in parts] == before
    library = ds.kll_doubles_sketch(200)
    library.update(rng.normal(size=10_000))  # a producer still on the library: its bytes merge the same way too
    twice = [KllSketch(200), KllSketch(200)]
    for total in twice:
        total.merge(parts[0])
        total.merge(library)
        total.merge(KllSketch.deserialize(library.serialize()))
    assert twice[0].serialize() == twice[1].serialize() and twice[0].n == parts[0].n + 20_000


def test_copy_is_independent() -> None:
    sketch = _sketch(np.arange(5000.0))
    twin = sketch.copy()
    twin.update(np.arange(5000.0, 10000.0))
    assert sketch.n == 5000 and twin.n == 10000 and sketch.get_max_value() == 4999.0
    assert sketch.serialize() == _sketch(np.arange(5000.0)).serialize()


def test_rank_error_within_the_library_bound_for_bulk_streamed_and_merged_sketches() -> None:
    """KLL's guarantee, on our compactions: the single-sided rank error bound (a 99th percentile) holds in
    nearly every trial, whether values come in one batch, in small batches, or as many equal-size sketches
    merged (whose bits would coincide if they depended on n alone)."""
    rng = np.random.default_rng(3)
    bound = KllSketch(200).normalized_rank_error(False)
    errors: dict[str, list[float]] = {"bulk": [], "stream": [], "merged": []}
    for trial in range(30):
        data = rng.standard_cauchy(20_000) if trial % 2 else rng.normal(size=20_000)
        errors["bulk"].append(_max_rank_error(_sketch(data), data))
        errors["stream"].append(_max_rank_error(_sketch(data, chunk=100), data))
        merged = KllSketch(200)
        for start in range(0, data.size, 400):
            merged.merge(_sketch(data[start:start + 400]))
        errors["merged"].append(_max_rank_error(merged, data))
    for mode, found in errors.items():
        assert np.mean(np.array(found) <= bound) >= 29 / 30, mode
        assert np.mean(found) < bound / 1.5, mode


def test_space_stays_within_the_level_capacities() -> None:
    rng = np.random.default_rng(4)
    sketch = KllSketch(64)
    for size in rng.integers(1, 3000, 300):
        sketch.update(rng.normal(size=int(size)))
        levels, n, _min_k, _low, _high = kll_levels(sketch.serialize())
        assert sketch.num_retained <= sum(level_capacities(64, len(levels)))
        assert len(levels) <= 1 + int(np.log2(n))  # the library's bound on the number of levels
    library = ds.kll_doubles_sketch(64)
    library.update(rng.normal(size=sketch.n))
    assert sketch.num_retained <= library.num_retained * 1.2


def test_values_the_sketch_ignores_and_accepts() -> None:
    sketch = KllSketch(200)
    sketch.update(np.array([np.nan, np.inf, -np.inf]))
    assert sketch.is_empty() and sketch.serialize() == ds.kll_doubles_sketch(200).serialize()
    with pytest.raises(RuntimeError):
        sketch.get_min_value()
    sketch.update(3)
    sketch.update(np.array([[1, 2], [3, 4]], dtype=np.int8)[:, 1])
    sketch.update(np.array([-0.0, 0.0]))
    assert sketch.n == 5 and sketch.get_min_value() == 0.0 and sketch.get_max_value() == 4.0
    with pytest.raises(ValueError):
        KllSketch(4)
