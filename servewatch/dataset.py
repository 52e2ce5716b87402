"""Reading data files (CSV, Parquet, .npy) and profile files for the command line.

Usage::

    from servewatch.dataset import read_profiles, read_table

    batch = read_table("train.csv", spec.model("fraud").features)    # column name -> values
    profiles = read_profiles("refs/fraud.pb")                         # every profile in a profile file
    profiles = read_profiles("today.csv", spec=spec.model("fraud"))   # or a data file, profiled on the fly

CSV cells are matched to spec columns by name. An empty cell is missing; in a numeric column a cell that
is not a number is kept as text, so the profile counts it as invalid. Columns the spec does not list (or
every column, without a spec) are numeric when all their cells parse as numbers, else categorical.
Parquet needs ``pyarrow``; ``.npy`` holds a 2-D array whose columns the spec's ``source.index`` selects.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .errors import ProfileError
from .profile import Profile
from .spec import Column, ModelSpec

__all__ = ["DATA_SUFFIXES", "is_data_file", "read_profiles", "read_table"]

DATA_SUFFIXES = (".csv", ".parquet", ".npy")
_MAX_PROFILE_FILE = 256 * 2**20


def is_data_file(path: str) -> bool:
    """True for CSV, Parquet and .npy files (anything else is read as profile bytes)."""
    return path.lower().endswith(DATA_SUFFIXES)


def read_table(path: str, columns: Sequence[Column] = ()) -> Any:
    """The rows of a data file as a batch :meth:`Profile.update` accepts."""
    lower = path.lower()
    if lower.endswith(".npy"):
        return np.load(path, allow_pickle=False)
    if lower.endswith(".parquet"):
        try:
            import pyarrow.parquet as parquet
        except ImportError:
            raise ProfileError("reading Parquet needs pyarrow: pip install pyarrow") from None
        table = parquet.read_table(path)
        return {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    return _read_csv(path, {column.name: column for column in columns})


def _read_csv(path: str, columns: dict[str, Column]) -> dict[str, list[Any]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise ProfileError(f"{path}: empty file, expected a header row")
        cells: list[list[str]] = [[] for _ in header]
        for row in reader:
            for i in range(len(header)):
                cells[i].append(row[i] if i < len(row) else "")
    table: dict[str, list[Any]] = {}
    for name, values in zip(header, cells):
        column = columns.get(name)
        numeric = column.is_numeric if column is not None else _all_numbers(values)
        table[name] = [_number(cell) for cell in values] if numeric else [cell if cell != "" else None for cell in values]
    return table


def _all_numbers(values: list[str]) -> bool:
    return all(cell == "" or _number(cell) is not cell for cell in values) and any(cell != "" for cell in values)


def _number(cell: str) -> Any:
    if cell == "":
        return None
    try:
        return float(cell)
    except ValueError:
        return cell


def read_profiles(path: str, *, spec: ModelSpec | None = None, model: str | None = None) -> list[Profile]:
    """The profiles in ``path``: decoded from a profile file, or built from a data file (inputs, plus
    predictions when the spec lists prediction columns the file has)."""
    if is_data_file(path):
        name = model or (spec.name if spec is not None else "default")
        batch = read_table(path, (spec.features + spec.predictions) if spec is not None else ())
        if spec is not None and isinstance(batch, dict):  # named columns: match by name, not by serving source
            spec = replace(spec, features=tuple(replace(c, source=None) for c in spec.features),
                           predictions=tuple(replace(c, source=None) for c in spec.predictions))
        profiles = [Profile.from_data(batch, model=name, spec=spec)]
        if spec is not None and spec.predictions and isinstance(batch, dict) \
                and any(column.name in batch for column in spec.predictions):
            profiles.append(Profile.from_data(batch, model=name, signal="prediction", spec=spec))
        return profiles
    from .wire import Limits, decode_profiles

    size = os.path.getsize(path)
    if size > _MAX_PROFILE_FILE:
        raise ProfileError(f"{path}: {size} bytes is too large for a profile file")
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        return decode_profiles(data, Limits(max_bytes=_MAX_PROFILE_FILE))
    except ProfileError as error:
        raise ProfileError(f"{path}: {error}") from None
