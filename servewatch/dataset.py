"""Profiles of the files the command line is given: profile files, or data files profiled chunk by chunk.

Usage::

    from servewatch.dataset import read_profiles

    reading = read_profiles("refs/fraud.pb")                                # every profile in a profile file
    reading = read_profiles("today.parquet", spec=spec.model("fraud"))      # a data file, profiled on the fly
    reading.profiles                                                        # [input profile, prediction profile]
    reading.left_out                                                        # {"order_id": "identifier (...)"}

Data files (CSV, Parquet, Arrow IPC, ``.npy``: :mod:`servewatch.datafiles`) are read a chunk at a time, so memory
stays bounded, with a progress line on long reads. Columns are matched to the spec's by name (by ``source.index``
or position in a plain ``.npy``); the spec's prediction columns, when the file has them, make a second profile.
Columns the spec marks ``type: identifier``/``timestamp`` are left out, and so (without spec columns) are those
that look like one: dates and times, text with a different value in every row, increasing whole numbers.

A file that cannot give a meaningful profile is refused with a :class:`~servewatch.ProfileError`: no rows, a spec
column it lacks, every column empty, or a numeric column with no number in it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .datafiles import DATA_SUFFIXES, DataFile, is_data_file
from .errors import ProfileError
from .profile import Profile
from .progress import Progress
from .spec import Column, ModelSpec
from .tables import column_kind

__all__ = ["DATA_SUFFIXES", "Reading", "is_data_file", "read_profiles"]

_MAX_PROFILE_FILE = 256 * 2**20
_MAX_COLUMNS = 64
"""Columns profiled without a spec, as :class:`~servewatch.Profile` does."""
_MIN_ID_ROWS = 50
"""A column looks like an identifier only from this many values on (fewer distinct values are just categories)."""


@dataclass(frozen=True)
class Reading:
    """What one file gave: its profiles and the columns left out of them."""

    profiles: list[Profile]
    left_out: dict[str, str] = field(default_factory=dict)
    """Column -> why it was not profiled (``"identifier (the spec says so)"``, ``"timestamp (dates or times)"``)."""


def read_profiles(path: str, *, spec: ModelSpec | None = None, model: str | None = None,
                  progress: bool = True) -> Reading:
    """The profiles in ``path``: decoded from a profile file, or built from a data file (inputs, plus
    predictions when the spec lists prediction columns the file has). ``progress``: a progress line on stderr
    when a read takes long."""
    if is_data_file(path):
        return _profile_data(path, spec, model or (spec.name if spec is not None else "default"), progress)
    from .wire import Limits, decode_profiles

    size = os.path.getsize(path)
    if size > _MAX_PROFILE_FILE:
        raise ProfileError(f"{path}: {size} bytes is too large for a profile file")
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        profiles = decode_profiles(data, Limits(max_bytes=_MAX_PROFILE_FILE))
    except ProfileError as error:
        raise ProfileError(f"{path}: not a profile file ({str(error).splitlines()[0]}); data files end in "
                           f"{', '.join(DATA_SUFFIXES)}") from None
    if not profiles:
        raise ProfileError(f"{path}: a profile file holding no profile")
    return Reading(profiles)


def _profile_data(path: str, spec: ModelSpec | None, model: str, progress: bool) -> Reading:
    data = DataFile(path)
    names = data.names
    features = spec.features if spec is not None else ()
    predictions = spec.predictions if spec is not None else ()
    skipped = spec.skipped if spec is not None else ()
    left_out = {column.name: f"{column.type} (the spec says so)" for column in skipped}
    if names is not None:
        _require(path, names, features, "feature")
        predicting = [column for column in predictions if column.name in names]
        if predicting:
            _require(path, names, predictions, "prediction")
        if spec is not None:  # named columns: matched by name, not by the serving source
            spec = replace(spec, features=tuple(replace(c, source=None) for c in features),
                           predictions=tuple(replace(c, source=None) for c in predictions))
    else:
        _require_positions(path, data.width, features)
        predicting = []
    inputs: Profile | None = None
    # a file has no interval (0..0): its profiles' bytes depend on its data only
    outputs = Profile(model, "prediction", spec=spec, start=0.0, end=0.0) if predicting else None
    types = {column.name: column.type for column in features + predictions}
    types.update({column.name: "categorical" for column in skipped})  # dropped unparsed
    with Progress(f"reading {path}") as bar:
        for chunk in data.chunks(types, progress=bar if progress else None):
            if inputs is None:
                if isinstance(chunk, dict) and not features:
                    left_out.update(_looks_unprofiled(chunk))
                    for name in left_out:
                        chunk.pop(name, None)
                    automatic = _automatic(spec, model, chunk, data.kinds)
                    inputs = Profile(model, "input", spec=automatic, start=0.0, end=0.0)
                else:
                    inputs = Profile(model, "input", spec=spec, start=0.0, end=0.0)
            elif isinstance(chunk, dict):
                for name in left_out:
                    chunk.pop(name, None)
            inputs.update(chunk)
            if outputs is not None:
                outputs.update(chunk)
    inputs = inputs or Profile(model, "input", spec=spec, start=0.0, end=0.0)
    profiles = [inputs] + ([outputs] if outputs is not None else [])
    for profile in profiles:
        _check(path, profile, bool(left_out))
    return Reading(profiles, left_out)


def _require(path: str, names: list[str], columns: tuple[Column, ...], what: str) -> None:
    absent = [column.name for column in columns if column.name not in names]
    if absent:
        shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
        raise ProfileError(f"{path}: no column {absent[0]!r} (a {what} of the spec"
                           + (f"; {len(absent) - 1} more missing" if len(absent) > 1 else "")
                           + f"); the file has: {shown}")


def _require_positions(path: str, width: int, columns: tuple[Column, ...]) -> None:
    for position, column in enumerate(columns):
        source = column.source
        if source is not None and (source.key is not None or source.path is not None):
            raise ProfileError(f"{path}: a .npy array has no column names, but feature {column.name!r} is found "
                               "by source key/path; give it source: {index: N} to profile this file")
        index = source.index if source is not None and source.index is not None else position
        if index >= width:
            raise ProfileError(f"{path}: feature {column.name!r} is column {index}, but the array has "
                               f"{width} column(s)")


def _automatic(spec: ModelSpec | None, model: str, chunk: dict[str, Any], kinds: dict[str, str | None]) -> ModelSpec:
    """Columns named and typed by the file (the reader's kinds: a CSV column of numbers with a few bad cells is
    numeric, whatever its first cell), at most as many as a profile takes automatically."""
    columns = []
    for name, values in list(chunk.items())[:_MAX_COLUMNS]:
        kind = kinds.get(name) or (column_kind(values) if isinstance(values, np.ndarray) else "numeric")
        columns.append(Column(name, "categorical" if kind == "categorical" else "numeric"))
    return replace(spec or ModelSpec(name=model), features=tuple(columns))


def _looks_unprofiled(chunk: dict[str, Any]) -> dict[str, str]:
    """The columns of a first chunk that look like identifiers or timestamps, and why."""
    found = {}
    for name, values in chunk.items():
        if not isinstance(values, np.ndarray):
            continue
        kind = column_kind(values)
        if kind == "timestamp":
            found[name] = "timestamp (dates or times)"
        elif kind == "categorical":
            present = [value for value in values.tolist() if isinstance(value, str)]
            if len(present) >= _MIN_ID_ROWS and len(present) == values.size and len(set(present)) == len(present):
                found[name] = "identifier (a different value in every row)"
        else:
            numbers = values[np.isfinite(values)] if values.dtype.kind == "f" else values
            if numbers.size >= _MIN_ID_ROWS and numbers.size == values.size \
                    and np.all(numbers == np.round(numbers)) and np.all(np.diff(numbers) > 0):
                found[name] = "identifier (increasing whole numbers)"
    return found


def _check(path: str, profile: Profile, left_out: bool) -> None:
    columns = profile.columns
    if profile.rows == 0:
        raise ProfileError(f"{path}: no data rows" + (" (only a header)" if path.lower().endswith((".csv", ".tsv"))
                                                       else ""))
    if not columns:
        raise ProfileError(f"{path}: no column left to profile" + (" (all left out: identifiers, timestamps)"
                                                                    if left_out else ""))
    if all(column.count == column.missing for column in columns.values()):
        raise ProfileError(f"{path}: every column is empty in all {profile.rows} rows; check the delimiter "
                           "and the spec's column names")
    for name, column in columns.items():
        if column.is_numeric and column.invalid and column.valid == 0 and column.invalid + column.missing \
                + column.non_finite == column.count:
            raise ProfileError(f"{path}: column {name!r} should hold numbers, but none of its "
                               f"{column.invalid} value(s) is one; fix the data or give it type: categorical")
