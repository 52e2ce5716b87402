"""Feature extraction: what a model receives (or returns) -> a batch of rows the profile can take.

Usage::

    from servewatch.instrumentation.extraction import Extractor

    extract = Extractor("input", spec.model("fraud").features, max_columns=64).extract
    batch = extract(np.random.rand(8, 20))        # ("dense", the array, 8 rows, width 20)
    batch = extract([{"amount": 3.5, "country": "DE"}])           # kind "rows"
    batch = extract(torch_images)                 # kind "columns": {"mean.0": ..., "std.0": ..., ...}
    batch = extract({"INPUT": np.random.rand(8, 4)})              # kind "tensors": named 2-D float arrays

Accepted values, and the batch they become (``N`` rows):

- numpy arrays; torch tensors (recognised by type, never by importing torch; ``.detach().cpu().numpy()``,
  after subsampling big images on the device); anything with ``__array__`` or a ``.numpy()`` method;
- a mapping: named tensors / columns (``{"x": (N, 3) array, "text": [...]}``), or one row when every value is a
  scalar (``{"amount": 3.5}``); a pandas DataFrame (its columns) or Series;
- a list: dict rows (JSON), list rows, scalars (one column), strings, arrays/tensors (one per sample: stacked;
  single-row batches ``(1, ...)`` are concatenated), dicts of arrays (per-request named tensors, each with a
  leading batch dimension: concatenated along it, e.g. two ``(3, 4)`` requests give 6 rows of 4 columns);
- a string (one text row), bytes (one payload: ``bytes`` = its size), a number (one row, one column);
- a pydantic model or a dataclass instance (or a list of them): its fields, as a mapping (or dict rows), as
  FastAPI hands request bodies to an endpoint.

Anything else raises :class:`Unsupported` (the recorder counts it as ``unsupported.<signal>``). How a value is
read is decided once per type and cached (:data:`MAX_TYPES` types), so a torch tensor costs what a numpy
array does plus ``Tensor.numpy()``; named 2-D float arrays of equal rows (what PyTriton and tritonclient
send) take a short path too (kind :data:`TENSORS`: the buffer copies them side by side into one block).

Columns are then named and bounded: by the spec's ``source`` when the spec lists columns for the signal
(:func:`servewatch.batch.split_columns` applies it when the rows are profiled), else automatically (``f<i>``
for an unnamed array, ``<key>`` / ``<key>.<i>`` for named ones, dict keys for rows), at most
``SERVEWATCH_MAX_COLUMNS``. Inputs too wide for that become projections
(:mod:`servewatch.instrumentation.projections`):

- arrays of 3+ dimensions -> images: ``mean.<c>``, ``std.<c>`` per channel (always);
- strings that look like prose -> ``chars``, ``tokens``; short single words stay categories; in dict rows
  (without a spec) each string field is judged on its own, so ``{"review": "..."}`` gives ``review.chars``;
- 2-D arrays wider than ``SERVEWATCH_MAX_COLUMNS`` -> ``norm``, ``mean`` (floats) or ``length`` (integers);
- predictions: rows of class probabilities (each in [0, 1], summing to 1) or more scores than
  ``SERVEWATCH_MAX_COLUMNS`` -> ``class`` (top index, categorical) and ``score``; integer or boolean outputs
  of one column -> ``class``; other numeric outputs (regression) -> the values, ``f0``, ``f1``, ...

With a spec, 2-D arrays are projected only when a spec column names a projection by ``key`` (``class``,
``score``, ``norm``, ``mean``, ``length``, optionally after ``<tensor>.``); otherwise the spec's ``index``
picks raw columns. Arrays kept for later are copied, so a framework may reuse its buffers after the call.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np

from servewatch.batch import split_columns
from servewatch.spec import Column

from .arrays import (
    Unsupported,
    as_array,
    is_arraylike,
    is_tensor_type,
    merge_requests,
    rectangular,
    stack,
    tensor_array,
)
from .projections import (
    ROW_PROJECTIONS,
    class_columns,
    image_columns,
    is_probabilities,
    is_text,
    text_columns,
    wide_columns,
)

__all__ = ["COLUMNS", "DENSE", "MAX_TYPES", "OBJECTS", "ROWS", "TENSORS", "Batch", "Extractor", "Unsupported",
           "combine"]

DENSE = "dense"
"""A 2-D numeric array; ``signature`` is its width."""
OBJECTS = "objects"
"""A 2-D object array (strings, mixed values); ``signature`` is its width."""
COLUMNS = "columns"
"""A mapping of column or tensor name -> values (N along the first axis)."""
ROWS = "rows"
"""A list of rows (dicts or sequences)."""
TENSORS = "tensors"
"""A mapping of tensor name -> 2-D float array, all of N rows and none needing a projection; ``signature`` is
``((name, width), ...)``."""
MAX_TYPES = 256
"""Value types whose way of reading is remembered (further types are classified on every call)."""

_NUMERIC = "biuf"


Batch = tuple[str, Any, int, Any]
"""One extracted batch, ``(kind, data, rows, signature)``: rows of one kind; batches with equal kind and
signature can be combined. (A plain tuple: it is made on every call.)"""


class Extractor:
    """Extraction for one (model, signal): ``signal`` is ``"input"`` or ``"prediction"``; ``columns`` are the
    spec's columns for it (empty: automatic naming)."""

    def __init__(self, signal: str, columns: Sequence[Column] = (), max_columns: int = 64) -> None:
        self.signal = signal
        self.columns = tuple(columns)
        self.max_columns = max_columns
        self.predictions = signal == "prediction"
        self._plain_width = 1 if self.predictions else max_columns  # float arrays this wide need no projection
        keys = [column.source.key if column.source is not None and column.source.key else column.name
                for column in self.columns]
        self.project_rows = not self.columns or any(key.rsplit(".", 1)[-1] in ROW_PROJECTIONS for key in keys)

    # -- the entry point ------------------------------------------------------------------------------------

    def extract(self, value: Any) -> Batch | None:
        """The batch ``value`` holds (None for None or an empty batch); raises :class:`Unsupported`."""
        cls = type(value)
        if cls is np.ndarray:
            shape = value.shape
            if len(shape) == 2 and shape[1] <= self._plain_width and shape[0] and value.dtype.kind == "f":
                return DENSE, value, shape[0], shape[1]  # the common case, kept short
            return self._unnamed(value)
        reader = _READERS.get(cls)
        if reader is None:
            reader = _reader(cls)
        return reader(self, value)

    # -- one reader per kind of value (chosen by type in _reader) ------------------------------------------

    def _tensor(self, value: Any) -> Batch | None:
        return self.extract(tensor_array(value))

    def _dict(self, value: Mapping[Any, Any]) -> Batch | None:
        tensors = self._tensors(value)
        if tensors is not None:
            return tensors
        if value and all(_is_scalar(item) for item in value.values()):
            return ROWS, [value], 1, None
        return self._mapping(value)

    def _tensors(self, mapping: Mapping[Any, Any]) -> Batch | None:
        """``mapping`` as a :data:`TENSORS` batch when every value is a 2-D float array of the same rows that
        needs no projection; else None (the general path reads it)."""
        rows = 0
        signature = []
        named = True
        for name, array in mapping.items():
            if type(array) is not np.ndarray or array.dtype.kind != "f":
                return None
            shape = array.shape
            if len(shape) != 2 or not shape[0] or shape[1] > self._plain_width or (rows and shape[0] != rows):
                return None
            rows = shape[0]
            if type(name) is not str:
                named, name = False, str(name)
            signature.append((name, shape[1]))
        if not rows or (len(signature) > self.max_columns and not self.columns):
            return None
        if not named:
            mapping = {str(name): array for name, array in mapping.items()}
        return TENSORS, mapping, rows, tuple(signature)

    def _text(self, value: str) -> Batch:
        return self._strings([value], "", unnamed=True)

    def _bytes(self, value: bytes | bytearray | memoryview) -> Batch:
        return COLUMNS, {"bytes": np.array([float(len(value))])}, 1, (("bytes", ()),)

    def _number(self, value: Any) -> Batch | None:
        return self._unnamed(np.asarray([value]))

    def _none(self, value: None) -> None:
        return None

    def _other(self, value: Any) -> Batch | None:
        """Everything else, by what the value itself offers."""
        cls = value.__class__
        if cls is not type(value):  # a proxy (wrapt.ObjectProxy ...): read as what it stands for
            reader = _reader(cls)
            if reader is not Extractor._other:
                return reader(self, value)
        if _is_dataframe(value):
            names = list(value.columns)[: len(value.columns) if self.columns else self.max_columns]
            return self._mapping({str(name): value[name].to_numpy() for name in names})
        fields = _fields(value)
        if fields is not None:
            return self.extract(fields)
        return self._unnamed(as_array(value))

    # -- arrays ---------------------------------------------------------------------------------------------

    def _unnamed(self, array: np.ndarray) -> Batch | None:
        if array.ndim == 0:
            array = array.reshape(1)
        if array.shape[0] == 0:
            return None
        kind = array.dtype.kind
        if kind in _NUMERIC:
            if array.ndim <= 2:
                table = array.reshape(-1, 1) if array.ndim == 1 else array
                projected = self._project_rows(table, "")
                if projected is not None:
                    return _columns_batch(projected)
                return DENSE, table, table.shape[0], table.shape[1]
            return _columns_batch(image_columns(array, ""))
        if kind in "OUS" and array.ndim <= 2 and (array.ndim == 1 or array.shape[1] == 1):
            return self._strings(array.reshape(-1), "", unnamed=True)
        if kind in "OUS" and array.ndim == 2:
            table = np.array(array[:, : self.max_columns] if not self.columns else array, dtype=object)
            return OBJECTS, table, table.shape[0], table.shape[1]
        raise Unsupported(f"an array of dtype {array.dtype} and shape {array.shape}")

    def _project_rows(self, table: np.ndarray, prefix: str) -> dict[str, np.ndarray] | None:
        """Projections of a 2-D numeric array, or None to keep its columns."""
        width = table.shape[1]
        if self.predictions:
            if table.dtype.kind in "biu" and width == 1:
                return {f"{prefix}class": _labels(table[:, 0])}
            if self.project_rows and width >= 2 and (width > self.max_columns or is_probabilities(table)):
                return class_columns(table, prefix)
            return None
        if self.project_rows and width > self.max_columns:
            return wide_columns(table, prefix)
        return None

    def _named(self, name: str, value: Any) -> dict[str, Any]:
        """The columns of one named input (a mapping entry)."""
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
            return self._strings(value, name + ".")[1]
        array = value if isinstance(value, np.ndarray) else as_array(value) if not isinstance(value, (list, tuple)) \
            else rectangular(value)
        if array is None:  # ragged or mixed lists: their items, as they are
            return {name: list(value)}
        if array.ndim == 0:
            array = array.reshape(1)
        kind = array.dtype.kind
        if kind in _NUMERIC:
            if array.ndim >= 3:
                return image_columns(array, name + ".")
            if array.ndim == 2:
                projected = self._project_rows(array, name + ".")
                if projected is not None:
                    return projected
            elif self.predictions and kind in "biu":
                return {name: _labels(array)}
            return {name: np.array(array, dtype=np.float64)}
        if kind in "OUS" and array.ndim == 1:
            return self._strings(array, name + ".")[1] if is_text(array) else {name: np.array(array, dtype=object)}
        if kind in "OUS" and array.ndim == 2:
            return {name: np.array(array, dtype=object)}
        raise Unsupported(f"input {name!r}: an array of dtype {array.dtype} and shape {array.shape}")

    def _strings(self, values: Sequence[Any] | np.ndarray, prefix: str, *, unnamed: bool = False) -> Batch:
        if is_text(values):
            return _columns_batch(text_columns(values, prefix))
        if unnamed and self.predictions:
            return _columns_batch({"class": np.array(values, dtype=object)})
        if unnamed:
            table = np.empty((len(values), 1), dtype=object)
            table[:, 0] = list(values)
            return OBJECTS, table, len(values), 1
        name = prefix[:-1]
        return _columns_batch({name: np.array(values, dtype=object)})

    # -- containers -----------------------------------------------------------------------------------------

    def _mapping(self, mapping: Mapping[Any, Any]) -> Batch | None:
        columns: dict[str, Any] = {}
        for key, value in mapping.items():
            if not self.columns and len(columns) >= self.max_columns:
                break
            if _is_scalar(value) or _is_dataframe(value):  # parameters beside the tensors, not rows
                continue
            columns.update(self._named(str(key), value))
        return _columns_batch(columns) if columns else None

    def _sequence(self, values: Sequence[Any]) -> Batch | None:
        if not values:
            return None
        first = values[0]
        if isinstance(first, Mapping):
            if any(is_arraylike(item) for item in first.values()):
                merged = merge_requests(values)
                return self._tensors(merged) or self._mapping(merged)
            return ROWS, list(values), len(values), None
        if isinstance(first, str):
            return self._strings(values, "", unnamed=True)
        if isinstance(first, (bytes, bytearray)):
            sizes = np.array([float(len(item)) if isinstance(item, (bytes, bytearray)) else np.nan for item in values])
            return _columns_batch({"bytes": sizes})
        if is_arraylike(first):
            return self._unnamed(stack([as_array(item) for item in values]))
        if _fields(first) is not None:  # pydantic models, dataclasses: rows of fields
            return ROWS, [_fields(item) for item in values], len(values), None
        table = rectangular(values)
        if table is not None and table.dtype.kind in _NUMERIC and table.ndim <= 2:
            return self._unnamed(table)
        return ROWS, list(values), len(values), None

    # -- at flush time --------------------------------------------------------------------------------------

    def prepare(self, kind: str, data: Any) -> Any:
        """What the profile gets for combined ``data`` of ``kind``: dict rows without a spec are split here, so
        that string fields holding prose become ``<field>.chars`` / ``<field>.tokens``."""
        if kind != ROWS or self.columns:
            return data
        split = split_columns(data, None, max_columns=self.max_columns)
        prepared: dict[str, Any] = {}
        for name, column in split.items():
            sample = [item for item in column[:16] if item is not None] if isinstance(column, list) else []
            if sample and all(isinstance(item, (bytes, bytearray, memoryview)) for item in sample):
                prepared[f"{name}.bytes"] = np.array([float(len(item)) if isinstance(item, (bytes, bytearray, memoryview))
                                                      else np.nan for item in column])
            elif sample and isinstance(sample[0], str) and is_text([item for item in sample if isinstance(item, str)]):
                prepared.update(text_columns(column, name + "."))
            else:
                prepared[name] = column
        return prepared


_Reader = Callable[[Extractor, Any], "Batch | None"]
_READERS: dict[type, _Reader] = {}
_BY_TYPE: tuple[tuple[type | tuple[type, ...], _Reader], ...] = (
    (type(None), Extractor._none), (Mapping, Extractor._dict), ((list, tuple), Extractor._sequence),
    (str, Extractor._text), ((bytes, bytearray, memoryview), Extractor._bytes),
    ((numbers.Number, np.generic), Extractor._number))


def _reader(cls: type) -> _Reader:
    """How values of type ``cls`` are read (in :data:`_BY_TYPE`'s order, then torch tensors; ndarray subclasses,
    DataFrames, pydantic models, proxies ... by the value each time), remembered for :data:`MAX_TYPES` types."""
    reader = next((reader for kinds, reader in _BY_TYPE if issubclass(cls, kinds)), None)
    if reader is None:
        reader = Extractor._tensor if is_tensor_type(cls) else Extractor._other
    if len(_READERS) < MAX_TYPES:
        _READERS[cls] = reader
    return reader


def combine(kind: str, chunks: list[Any]) -> Any:
    """One batch from several of the same kind and signature."""
    if len(chunks) == 1:
        return chunks[0]
    if kind == ROWS:
        return list(chain.from_iterable(chunks))
    if kind == COLUMNS:
        combined: dict[str, Any] = {}
        for name in chunks[0]:
            parts = [chunk[name] for chunk in chunks]
            if all(isinstance(part, np.ndarray) for part in parts):
                combined[name] = np.concatenate(parts)
            else:
                combined[name] = list(chain.from_iterable(parts))
        return combined
    return np.concatenate(chunks)


def _fields(value: Any) -> dict[str, Any] | None:
    """The fields of a pydantic model (``model_dump``) or a dataclass instance, else None."""
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        fields = dump()
        return fields if isinstance(fields, dict) else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    return None


def _columns_batch(columns: dict[str, Any]) -> Batch:
    rows = 0
    signature = []
    for name, values in columns.items():
        rows = rows or len(values)
        signature.append((name, values.shape[1:] if isinstance(values, np.ndarray) else None))
    return COLUMNS, columns, rows, tuple(signature)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, bytes, bytearray, memoryview, numbers.Number, np.generic))


def _labels(array: np.ndarray) -> np.ndarray:
    """Integer or boolean predictions as categories, spelled as :func:`servewatch.category.category` does."""
    if array.dtype.kind == "b":
        return np.where(array, "true", "false")
    return array.astype(str)


def _is_dataframe(value: Any) -> bool:
    return hasattr(value, "columns") and hasattr(value, "iloc") and hasattr(value, "to_numpy")
