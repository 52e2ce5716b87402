"""A batch of model inputs (or outputs) split into named columns, by the spec's ``source`` or automatically: the
forms :meth:`Profile.update <servewatch.Profile.update>` accepts (the instrumentation hands it what it extracted).

Usage::

    from servewatch.batch import split_columns

    split_columns(np.array([[1.0, 2.0], [3.0, 4.0]]))             # {"f0": array([1., 3.]), "f1": array([2., 4.])}
    split_columns([{"amount": 3.5, "country": "DE"}])             # {"amount": [3.5], "country": ["DE"]}
    split_columns({"x": np.ones((4, 3))})                         # {"x.0": ..., "x.1": ..., "x.2": ...}
    split_columns(rows, spec.model("fraud").features)             # columns named and located by the spec

Accepted batches: a 1-D or 2-D numpy array (rows x columns), a list of rows (dicts, lists or scalars), a mapping of
column name (or tensor name) to values, and a table (pandas, pyarrow, polars: :mod:`servewatch.tables`). With spec
columns, each column is found by its ``source`` (``index``, ``key``, ``key`` + ``index``, dotted ``path``) or,
without one, by its name (keyed inputs) or its position in the spec (positional inputs); what is absent becomes
``None`` (counted as missing). Without spec columns, names are automatic: a dict field by its key, column i of an
unnamed array ``f<i>``, column i of a named 2-D tensor ``<name>.<i>``, at most ``max_columns`` of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .spec import Column, Source
from .tables import is_table, table_columns

__all__ = ["split_columns"]


def split_columns(batch: Any, columns: Sequence[Column] | None = None, *, max_columns: int = 64) -> dict[str, Any]:
    """Column name -> values (array or list, one value per row) of ``batch``."""
    if is_table(batch):
        batch = table_columns(batch)
    if isinstance(batch, Mapping):
        return _from_mapping(batch, columns, max_columns)
    if isinstance(batch, np.ndarray):
        return _from_array(batch, columns, max_columns)
    if isinstance(batch, (list, tuple)):
        return _from_rows(batch, columns, max_columns)
    return _from_array(np.asarray([batch], dtype=object), columns, max_columns)


def _as_2d(array: np.ndarray) -> np.ndarray:
    if array.ndim == 0:
        return array.reshape(1, 1)
    if array.ndim == 1:
        return array.reshape(-1, 1)
    if array.ndim > 2:
        return array.reshape(array.shape[0], -1)
    return array


def _from_array(array: np.ndarray, columns: Sequence[Column] | None, max_columns: int) -> dict[str, Any]:
    table = _as_2d(array)
    rows, width = table.shape
    if not columns:
        return {f"f{i}": table[:, i] for i in range(min(width, max_columns))}
    result: dict[str, Any] = {}
    for position, column in enumerate(columns):
        source = column.source or Source(index=position)
        index = source.index if source.index is not None else (position if source.key is None and source.path is None else None)
        result[column.name] = table[:, index] if index is not None and index < width else [None] * rows
    return result


def _from_mapping(batch: Mapping[str, Any], columns: Sequence[Column] | None, max_columns: int) -> dict[str, Any]:
    if not columns:
        result: dict[str, Any] = {}
        for name, values in batch.items():
            if len(result) >= max_columns:
                break
            values = np.asarray(values) if not isinstance(values, np.ndarray) and _rectangular(values) else values
            if isinstance(values, np.ndarray) and values.ndim > 1:
                table = _as_2d(values)
                for i in range(min(table.shape[1], max_columns - len(result))):
                    result[f"{name}.{i}"] = table[:, i]
            else:
                result[str(name)] = values
        return result
    rows = _mapping_rows(batch)
    result = {}
    for column in columns:
        source = column.source or Source(key=column.name)
        if source.path is not None:
            head, *rest = source.path
            values = batch.get(head)
            result[column.name] = [None] * rows if values is None else [_walk(item, rest) for item in values]
            continue
        key = source.key if source.key is not None else column.name
        values = batch.get(key)
        if values is None:
            result[column.name] = [None] * rows
        elif source.index is not None and source.key is not None:
            grid = _as_2d(np.asarray(values)) if _rectangular(values) else None
            if grid is not None and source.index < grid.shape[1]:
                result[column.name] = grid[:, source.index]
            else:
                result[column.name] = [_walk(item, [str(source.index)]) for item in values]
        else:
            result[column.name] = values
    return result


def _mapping_rows(batch: Mapping[str, Any]) -> int:
    for values in batch.values():
        try:
            return len(values)
        except TypeError:
            continue
    return 0


def _rectangular(values: Any) -> bool:
    if isinstance(values, np.ndarray):
        return True
    try:
        return np.asarray(values).dtype != object
    except (ValueError, TypeError):
        return False


def _from_rows(rows: Sequence[Any], columns: Sequence[Column] | None, max_columns: int) -> dict[str, Any]:
    if not rows:
        return {column.name: [] for column in columns or ()}
    first = rows[0]
    if all(isinstance(row, Mapping) for row in rows):
        return _from_dict_rows(rows, columns, max_columns)
    if isinstance(first, (list, tuple, np.ndarray)) and not isinstance(first, (str, bytes)):
        try:
            table = np.asarray(rows)
        except (ValueError, TypeError):
            table = None
        if table is not None and table.dtype != object and table.ndim >= 2:
            return _from_array(table, columns, max_columns)
        return _from_list_rows(rows, columns, max_columns)
    if all(not isinstance(row, (Mapping, list, tuple, np.ndarray)) for row in rows):
        return _from_array(np.asarray(rows, dtype=object if any(isinstance(r, str) or r is None for r in rows) else None),
                           columns, max_columns)
    return _from_list_rows(rows, columns, max_columns)


def _from_list_rows(rows: Sequence[Any], columns: Sequence[Column] | None, max_columns: int) -> dict[str, Any]:
    """Ragged or mixed rows: an absent item is None (missing), a row that is not a sequence gives ``_Bad``."""
    if not columns:
        width = min(max((len(row) for row in rows if isinstance(row, (list, tuple))), default=1), max_columns)
        return {f"f{i}": [_item(row, i) for row in rows] for i in range(width)}
    result = {}
    for position, column in enumerate(columns):
        source = column.source or Source(index=position)
        if source.path is not None:
            result[column.name] = [_walk(row, list(source.path)) for row in rows]
        else:
            index = source.index if source.index is not None else position
            result[column.name] = [_item(row, index) for row in rows]
    return result


def _from_dict_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column] | None,
                    max_columns: int) -> dict[str, Any]:
    if not columns:
        names: dict[str, None] = {}
        for row in rows:
            for key in row:
                if len(names) >= max_columns:
                    break
                names.setdefault(str(key))
        return {name: [row.get(name) for row in rows] for name in names}
    result = {}
    for column in columns:
        getter = _getter(column)
        result[column.name] = [getter(row) for row in rows]
    return result


def _getter(column: Column) -> Callable[[Mapping[str, Any]], Any]:
    source = column.source or Source(key=column.name)
    if source.path is not None:
        path = list(source.path)
        return lambda row: _walk(row, path)
    if source.key is None:  # a positional source: dict rows are found by the column's name instead
        return lambda row: row.get(column.name)
    key = source.key
    if source.index is not None:
        index = source.index
        return lambda row: _item(row.get(key), index)
    return lambda row: row.get(key)


def _item(row: Any, index: int) -> Any:
    if isinstance(row, (list, tuple, np.ndarray)):
        return row[index] if index < len(row) else None
    return _Bad if row is not None else None


def _walk(value: Any, path: list[str]) -> Any:
    for part in path:
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, (list, tuple, np.ndarray)) and part.lstrip("-").isdigit():
            index = int(part)
            value = value[index] if -len(value) <= index < len(value) else None
        else:
            return None if value is None else _Bad
        if value is None:
            return None
    return value


class _BadType:
    """Stands for a value found where a row or container of the wrong type was: counted as invalid."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<invalid>"


_Bad = _BadType()
