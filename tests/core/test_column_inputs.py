"""ColumnProfile takes every numeric array users have: read-only, strided, any dtype, pandas 3, pyarrow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from servewatch import ColumnProfile, Profile

RNG = np.random.default_rng(0)
VALUES = RNG.normal(50, 20, 3000).round(1)


def _same_as_floats(values: object, expected: np.ndarray, missing: int = 0) -> ColumnProfile:
    """``values`` profile exactly as the plain float64 array ``expected`` (NaN where missing) does."""
    column = ColumnProfile("x").update(values)
    plain = ColumnProfile("x").update(np.array(expected, dtype=np.float64))
    assert (column.count, column.missing, column.invalid) == (plain.count, plain.missing, 0)
    assert column.missing == missing and column.sketch.serialize() == plain.sketch.serialize()
    finite = expected[~np.isnan(expected)]
    if finite.size > 200:  # estimation mode: the median within the sketch's rank error
        median, error = column.sketch.get_quantile(0.5), column.sketch.normalized_rank_error(False)
        assert np.mean(finite < median) <= 0.5 + error and np.mean(finite <= median) >= 0.5 - error
    return column


def _read_only(array: np.ndarray) -> np.ndarray:
    array = array.copy()
    array.setflags(write=False)
    return array


def test_read_only_arrays_with_and_without_nan() -> None:
    _same_as_floats(_read_only(VALUES), VALUES)  # the datasketches binding refused these with a TypeError
    with_nan = VALUES.copy()
    with_nan[::7] = np.nan
    _same_as_floats(_read_only(with_nan), with_nan, missing=int(np.isnan(with_nan).sum()))


def test_views_strides_and_columns_of_2d_arrays() -> None:
    _same_as_floats(VALUES[::2], VALUES[::2].copy())
    _same_as_floats(VALUES[::-3], VALUES[::-3].copy())
    table = RNG.normal(size=(2000, 5))
    _same_as_floats(table[:, 3], table[:, 3].copy())
    _same_as_floats(np.asfortranarray(table)[:, 1], table[:, 1].copy())
    _same_as_floats(_read_only(table)[:, 2], table[:, 2].copy())


@pytest.mark.parametrize("dtype", ["int8", "int16", "int64", "uint8", "uint64", "float16", "float32", "bool"])
def test_every_real_dtype(dtype: str) -> None:
    values = (RNG.integers(0, 2, 2000) if dtype == "bool" else RNG.integers(0, 120, 2000)).astype(dtype)
    _same_as_floats(values, values.astype(np.float64))
    _same_as_floats(_read_only(values)[::3], values[::3].astype(np.float64))
    huge = np.array([2**64 - 1, 2**63, 0], dtype=np.uint64)
    assert ColumnProfile("x").update(huge).sketch.get_max_value() == float(2**64 - 1)


def test_masked_arrays_count_masked_values_as_missing() -> None:
    masked = np.ma.masked_array(VALUES[:10], mask=[True, False] * 5)
    expected = np.where(masked.mask, np.nan, VALUES[:10])
    _same_as_floats(masked, expected, missing=5)


def test_callers_arrays_are_left_untouched() -> None:
    for size in (50, 5000):
        values = RNG.normal(size=size)
        before = values.copy()
        column = ColumnProfile("x").update(values)
        values[:] = 0.0  # the caller reuses its buffer: the profile kept its own copy
        assert np.array_equal(before[::-1][::-1], before) and column.sketch.get_max_value() == before.max()
        column.update(before)
        assert column.count == 2 * size


def test_pandas_float_only_dataframes_numpy_and_nullable() -> None:
    frame = pd.DataFrame({"a": VALUES, "b": VALUES[::-1].copy()})
    assert not frame["a"].to_numpy().flags.writeable or pd.__version__.startswith("2")
    profile = Profile.from_data(frame, model="m")  # the README's example, which raised a TypeError on pandas 3
    assert profile.columns["a"].count == 3000 and profile.columns["a"].sketch.n == 3000
    assert profile.columns["a"].sketch.serialize() == ColumnProfile("a").update(VALUES).sketch.serialize()
    nullable = pd.Series([1, None, 3, 4], dtype="Int64")
    _same_as_floats(nullable, np.array([1, np.nan, 3, 4]), missing=1)
    _same_as_floats(pd.Series([1.5, None, 2.5], dtype="Float64"), np.array([1.5, np.nan, 2.5]), missing=1)
    _same_as_floats(pd.Series([True, None, False], dtype="boolean"), np.array([1.0, np.nan, 0.0]), missing=1)
    _same_as_floats(pd.Series(VALUES), VALUES)
    frame = pd.DataFrame({"i": pd.array([1, None, 3], dtype="Int64"), "f": [0.5, 1.5, np.nan]})
    columns = Profile.from_data(frame, model="m").columns
    assert (columns["i"].missing, columns["i"].sketch.n, columns["f"].missing) == (1, 2, 1)


def test_arrow_backed_pandas_and_pyarrow_columns() -> None:
    pa = pytest.importorskip("pyarrow")
    frame = pd.DataFrame({"a": VALUES, "b": VALUES * 2}).astype("double[pyarrow]")
    profile = Profile.from_data(frame, model="m")
    assert profile.columns["a"].sketch.serialize() == ColumnProfile("a").update(VALUES).sketch.serialize()
    with_null = pd.Series([1.0, None, 3.0], dtype="double[pyarrow]")
    _same_as_floats(with_null, np.array([1.0, np.nan, 3.0]), missing=1)
    _same_as_floats(pd.Series([1, None, 3], dtype="int64[pyarrow]"), np.array([1.0, np.nan, 3.0]), missing=1)
    table = pa.table({"x": pa.array(VALUES), "n": pa.array([1.0, None, 2.0] * 1000),
                      "i": pa.array([1, 2, None] * 1000)})
    _same_as_floats(table.column("x").to_numpy(), VALUES)  # read-only, zero-copy
    _same_as_floats(table.column("x"), VALUES)  # a ChunkedArray as is
    _same_as_floats(table.column("n").chunk(0), np.array([1.0, np.nan, 2.0] * 1000), missing=1000)
    _same_as_floats(table.column("i"), np.array([1.0, 2.0, np.nan] * 1000), missing=1000)
    assert Profile.from_data(table.to_pandas(), model="m").columns["x"].sketch.n == 3000
