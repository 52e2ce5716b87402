"""The columns of the tables users hold, as the numpy arrays a profile takes.

Usage::

    from servewatch.tables import is_table, table_columns

    table_columns(pd.read_csv("train.csv"))       # {"amount": array([12.5, nan, ...]), "country": array([...])}
    table_columns(pyarrow.parquet.read_table("train.parquet"))   # a pyarrow Table or RecordBatch
    table_columns(polars_frame)                   # anything speaking the Arrow PyCapsule stream protocol

Accepted: pandas DataFrames (numpy- and Arrow-backed dtypes, nullable, categorical, datetime), pyarrow Tables
and RecordBatches, and any object with ``__arrow_c_stream__`` (read through pyarrow). Each column becomes one
flat array: numbers, booleans and decimals as float64 with NaN where a value is missing; text and categories as
an object array with None where missing; dates and times as ``datetime64`` (see :func:`column_kind`: a
timestamp, which servewatch leaves out of profiles); durations as float seconds; anything else (lists,
structs, bytes) as an object array of Python values, which a profile counts as invalid.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["arrow_column", "column_kind", "is_table", "table_columns"]


def is_table(batch: Any) -> bool:
    """True for a pandas DataFrame, a pyarrow Table or RecordBatch, or an Arrow stream (polars, duckdb, ...)."""
    return _is_pandas(batch) or _is_arrow(batch) or hasattr(batch, "__arrow_c_stream__")


def table_columns(batch: Any) -> dict[str, np.ndarray]:
    """Column name -> one flat numpy array per column of ``batch`` (see the module docstring for the types)."""
    if _is_pandas(batch):
        return {str(name): _pandas_column(batch[name]) for name in batch.columns}
    if not _is_arrow(batch):
        import pyarrow as pa  # an Arrow stream (polars, duckdb): pyarrow reads it without a copy where it can

        batch = pa.table(batch)
    return {str(name): arrow_column(batch.column(i)) for i, name in enumerate(batch.schema.names)}


def column_kind(values: np.ndarray) -> str:
    """``"timestamp"`` for dates and times, ``"numeric"`` for numbers, else ``"categorical"``."""
    if values.dtype.kind == "M":
        return "timestamp"
    return "numeric" if values.dtype.kind in "biuf" else "categorical"


def _is_pandas(batch: Any) -> bool:
    return type(batch).__module__.startswith("pandas") and hasattr(batch, "columns") and hasattr(batch, "iloc")


def _is_arrow(batch: Any) -> bool:
    return type(batch).__module__.startswith("pyarrow") and hasattr(batch, "schema") and hasattr(batch, "column")


def _pandas_column(series: Any) -> np.ndarray:
    kind = getattr(series.dtype, "kind", "O")
    if kind in "biuf" and type(series.dtype).__name__ != "CategoricalDtype":
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if kind == "M":
        if getattr(series.dtype, "tz", None) is not None:
            series = series.dt.tz_convert(None)
        return np.asarray(series.to_numpy(dtype="datetime64[ns]", na_value=np.datetime64("NaT")))
    if kind == "m":
        return series.dt.total_seconds().to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(series.to_numpy(dtype=object, na_value=None), dtype=object)


def arrow_column(column: Any) -> np.ndarray:
    """One pyarrow Array or ChunkedArray as a flat numpy array (the module docstring's types)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind) \
            or pa.types.is_decimal(kind):
        floats = pc.fill_null(pc.cast(column, pa.float64()), float("nan"))
        return np.asarray(floats.to_numpy(zero_copy_only=False), dtype=np.float64)
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind):
        if pa.types.is_timestamp(kind) and kind.tz is not None:
            column = column.cast(pa.timestamp(kind.unit))
        if pa.types.is_time(kind):
            return np.asarray(pc.cast(column, pa.int64()).to_numpy(zero_copy_only=False)).astype("datetime64[ns]")
        return np.asarray(column.to_numpy(zero_copy_only=False)).astype("datetime64[ns]")
    if pa.types.is_duration(kind):
        seconds = pc.divide(pc.cast(pc.cast(column, pa.duration("ns")), pa.int64()), 1e9)
        return np.asarray(pc.fill_null(seconds, float("nan")).to_numpy(zero_copy_only=False))
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or _is_string_view(kind):
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
    return np.asarray(column.to_pylist() + [None], dtype=object)[:-1]  # lists, structs, bytes: one object per row


def _is_string_view(kind: Any) -> bool:
    import pyarrow as pa

    check = getattr(pa.types, "is_string_view", None)
    return bool(check and check(kind))

