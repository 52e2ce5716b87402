"""Data files read in bounded chunks: CSV, Parquet, Arrow IPC (Feather) and ``.npy``.

Usage::

    from servewatch.datafiles import DataFile, is_data_file

    data = DataFile("train.parquet")
    data.names                                    # column names (header, schema); None for a plain .npy
    for chunk in data.chunks({"amount": "numeric"}, progress=print_fraction):
        profile.update(chunk)                     # column -> flat numpy array, at most CHUNK_ROWS rows

Memory stays that of one chunk whatever the file's size (for Parquet, of one row group: pyarrow decodes a row
group's columns whole). Formats, by suffix:

- ``.csv``/``.tsv``: UTF-8 (a BOM is fine), the delimiter the header line uses (``,`` ``;`` tab ``|``). A column
  is numeric when the spec says so, else when 95% of the non-empty cells of the first chunk are numbers; a cell
  that is not a number in a numeric column stays text (the profile counts it invalid), an empty cell is missing.
  A text column whose first chunk is all ISO 8601 dates or times becomes ``datetime64`` (a timestamp).
- ``.parquet``/``.pq`` and ``.arrow``/``.feather``/``.ipc``: with pyarrow (``pip install servewatch[files]``),
  a record batch at a time; the Arrow IPC file is memory-mapped. Types as :func:`servewatch.tables.arrow_column`.
- ``.npy``: memory-mapped, a block of rows at a time (a 2-D array of rows x columns, or 1-D); a structured array's
  fields are named columns. Arrays of Python objects are refused (they would need unpickling).

Anything wrong with a file raises :class:`~servewatch.ProfileError` naming the file and, where known, the line.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from .errors import ProfileError

__all__ = ["CHUNK_ROWS", "DATA_SUFFIXES", "DataFile", "is_data_file"]

CHUNK_ROWS = 65536
"""Rows per chunk: a few MB per column, a small fraction of a large file."""

_FORMATS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow",
            ".feather": "arrow", ".ipc": "arrow", ".npy": "npy"}
DATA_SUFFIXES = tuple(_FORMATS)
"""The suffixes read as data files; anything else is read as a profile file."""
_DELIMITERS = (",", ";", "\t", "|")
_NUMERIC_SHARE = 0.95

Progress = Callable[[float], None]
"""Called with the fraction of the file read so far (0..1)."""


def is_data_file(path: str) -> bool:
    """True for the suffixes of :data:`DATA_SUFFIXES` (anything else is read as profile bytes)."""
    return os.path.splitext(path.lower())[1] in _FORMATS


class DataFile:
    """One data file, opened lazily; ``names`` reads only the header or schema."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.format = _FORMATS.get(os.path.splitext(path.lower())[1], "csv")
        self._names: list[str] | None = None
        self._width = 0
        self.kinds: dict[str, str | None] = {}
        """CSV: each column's kind as the first chunk decided it (``numeric``, ``categorical``, ``timestamp``;
        None while only empty cells were seen); other formats: empty (their types say)."""

    @property
    def names(self) -> list[str] | None:
        """The column names, or None for a plain (unstructured) ``.npy`` array."""
        if self._names is None:
            if self.format == "npy":
                array = self._npy()
                self._width = 1 if array.ndim < 2 else int(np.prod(array.shape[1:]))
                self._names = list(array.dtype.names or ())
            else:
                self._names = getattr(self, f"_{self.format}_names")()
        return self._names or None

    @property
    def width(self) -> int:
        """How many columns the file has."""
        return len(self.names or ()) or self._width

    def chunks(self, types: Mapping[str, str] | None = None, *, rows: int = CHUNK_ROWS,
               progress: Progress | None = None) -> Iterator[Any]:
        """The file, ``rows`` rows at a time: column name -> flat array (a 2-D array for a plain ``.npy``).
        ``types`` (column -> ``"numeric"``/``"categorical"``) types CSV columns; the rest are inferred."""
        reader = getattr(self, f"_{self.format}_chunks")
        return reader(dict(types or {}), rows, progress or _ignore)

    # -- CSV ------------------------------------------------------------------------------------------------

    def _csv_names(self) -> list[str]:
        with self._csv_text() as handle:
            header = self._csv_block(csv.reader(handle, delimiter=self._csv_delimiter(handle)), 1)
            names = header[0] if header else None
        if not names or not any(name.strip() for name in names):
            raise ProfileError(f"{self.path}: empty file, expected a header row")
        return [name.strip() for name in names]

    def _csv_chunks(self, types: dict[str, str], rows: int, progress: Progress) -> Iterator[dict[str, Any]]:
        names = self.names or []
        size = max(os.path.getsize(self.path), 1)
        kinds = self.kinds = {name: types.get(name) for name in names}
        width = len(names)
        with self._csv_text() as handle:
            reader = csv.reader(handle, delimiter=self._csv_delimiter(handle))
            self._csv_block(reader, 1)
            while True:
                block = self._csv_block(reader, rows)
                if not block:
                    return
                if len(block[0]) != width or len(set(map(len, block))) != 1:  # ragged rows, blank lines
                    block = [(row + [""] * width)[:width] for row in block if row]
                    if not block:
                        continue
                chunk = {}
                for name, cells in zip(names, zip(*block)):
                    chunk[name], kinds[name] = _convert(cells, kinds[name])
                yield chunk
                progress(min(handle.buffer.tell() / size, 1.0))  # type: ignore[attr-defined]

    def _csv_text(self) -> io.TextIOWrapper:
        return open(self.path, newline="", encoding="utf-8-sig")  # noqa: SIM115 (the callers close it)

    def _csv_delimiter(self, handle: io.TextIOWrapper) -> str:
        line = self._guard(handle.readline)
        handle.seek(0)
        counts = {delimiter: line.count(delimiter) for delimiter in _DELIMITERS}
        best = max(_DELIMITERS, key=lambda delimiter: counts[delimiter])
        return best if counts[best] else ","

    def _csv_block(self, reader: Any, rows: int) -> list[list[str]]:
        """The next ``rows`` rows (fewer at the end of the file)."""
        try:
            return list(itertools.islice(reader, rows))
        except UnicodeDecodeError:
            raise ProfileError(self._not_utf8()) from None
        except csv.Error as error:
            raise ProfileError(f"{self.path}: line {reader.line_num}: not CSV: {error}") from None

    def _guard(self, read: Callable[[], str]) -> str:
        try:
            return read()
        except UnicodeDecodeError:
            raise ProfileError(self._not_utf8()) from None

    def _not_utf8(self) -> str:
        """Where the first byte that is not UTF-8 is (text is decoded in blocks, so the reader cannot say)."""
        decoder = codecs.getincrementaldecoder("utf-8")()
        line = 1
        with open(self.path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as error:
                    line += block.count(b"\n", 0, max(error.start, 0))
                    return (f"{self.path}: line {line}: not UTF-8 text (byte 0x{block[error.start]:02x}); "
                            "save the file as UTF-8")
                line += block.count(b"\n")
        return f"{self.path}: not UTF-8 text; save the file as UTF-8"

    # -- Parquet and Arrow IPC ------------------------------------------------------------------------------

    def _parquet_names(self) -> list[str]:
        return list(self._parquet().schema_arrow.names)

    def _parquet_chunks(self, _types: dict[str, str], rows: int, progress: Progress) -> Iterator[dict[str, Any]]:
        from .tables import arrow_column

        parquet = self._parquet()
        total, done = max(parquet.metadata.num_rows, 1), 0
        for batch in self._arrow_guard(parquet.iter_batches(batch_size=rows)):
            done += batch.num_rows
            yield {name: arrow_column(batch.column(i)) for i, name in enumerate(batch.schema.names)}
            progress(done / total)

    def _parquet(self) -> Any:
        pyarrow = _pyarrow(self.path, "Parquet")
        import pyarrow.parquet as parquet

        try:
            return parquet.ParquetFile(self.path)
        except (pyarrow.ArrowException, OSError) as error:
            raise ProfileError(f"{self.path}: not a Parquet file: {_first_line(error)}") from None

    def _arrow_names(self) -> list[str]:
        return list(self._arrow()[1].schema.names)

    def _arrow_chunks(self, _types: dict[str, str], rows: int, progress: Progress) -> Iterator[dict[str, Any]]:
        from .tables import arrow_column

        source, reader = self._arrow()
        with source:
            count = getattr(reader, "num_record_batches", None)  # a file knows its batches; a stream does not
            batches = (reader.get_batch(i) for i in range(count)) if count is not None else iter(reader)
            size = max(os.path.getsize(self.path), 1)
            for done, batch in enumerate(self._arrow_guard(batches), 1):
                for start in range(0, batch.num_rows, rows):
                    part = batch.slice(start, rows)
                    yield {name: arrow_column(part.column(i)) for i, name in enumerate(part.schema.names)}
                progress(done / count if count else min(source.tell() / size, 1.0))

    def _arrow(self) -> tuple[Any, Any]:
        pyarrow = _pyarrow(self.path, "Arrow IPC")
        try:
            source = pyarrow.memory_map(self.path)
        except (pyarrow.ArrowException, OSError) as error:
            raise ProfileError(f"{self.path}: {_first_line(error)}") from None
        for opener in (pyarrow.ipc.open_file, pyarrow.ipc.open_stream):
            try:
                source.seek(0)
                return source, opener(source)
            except pyarrow.ArrowException:
                continue
        source.close()
        raise ProfileError(f"{self.path}: not an Arrow IPC (Feather v2) file or stream")

    def _arrow_guard(self, batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow

        try:
            yield from batches
        except (pyarrow.ArrowException, OSError) as error:
            raise ProfileError(f"{self.path}: {_first_line(error)}") from None

    # -- .npy -----------------------------------------------------------------------------------------------

    def _npy(self) -> np.ndarray:
        try:
            array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except ValueError as error:
            if "allow_pickle" in str(error) or "object" in str(error).lower():
                raise ProfileError(f"{self.path}: an array of Python objects (dtype object), which servewatch "
                                   "does not unpickle; save numbers or strings") from None
            raise ProfileError(f"{self.path}: not a .npy file: {_first_line(error)}") from None
        if not isinstance(array, np.ndarray):
            raise ProfileError(f"{self.path}: not a .npy file (an .npz archive?)")
        if array.dtype.kind == "O" or (array.dtype.names and any(array.dtype[name].kind == "O"
                                                                  for name in array.dtype.names)):
            raise ProfileError(f"{self.path}: an array of Python objects, which servewatch does not unpickle")
        return array

    def _npy_chunks(self, _types: dict[str, str], rows: int, progress: Progress) -> Iterator[Any]:
        array = self._npy()
        if array.ndim == 0:
            array = array.reshape(1)
        total = max(array.shape[0], 1)
        for start in range(0, array.shape[0], rows):
            block = np.array(array[start:start + rows])  # read the rows into memory: a writeable, bounded copy
            if block.dtype.names:
                yield {name: np.ascontiguousarray(block[name]).reshape(block.shape[0], -1)[:, 0]
                       for name in block.dtype.names}
            else:
                yield block
            progress(min((start + rows) / total, 1.0))


def _convert(cells: tuple[str, ...], kind: str | None) -> tuple[np.ndarray, str | None]:
    """One CSV column's cells as an array, and the column's kind from now on (None: not known yet)."""
    if kind == "timestamp":
        times = _times(cells)
        return (times, kind) if times is not None else (_texts(cells), kind)
    if kind != "categorical":
        numbers = _numbers(cells)
        if numbers is not None:
            return numbers, ("numeric" if kind is not None or not np.isnan(numbers).all() else None)
        mixed = np.array([_number(cell) for cell in cells], dtype=object)
        if kind == "numeric" or _mostly_numbers(mixed):
            return mixed, "numeric"
    if kind is None:
        times = _times(cells)
        if times is not None:
            return times, "timestamp"
    return _texts(cells), ("categorical" if kind is None else kind)


def _texts(cells: tuple[str, ...]) -> np.ndarray:
    texts = np.array(cells, dtype=object)
    texts[texts == ""] = None
    return texts


def _numbers(cells: tuple[str, ...]) -> np.ndarray | None:
    text = np.array(cells)
    text[np.char.str_len(text) == 0] = "nan"
    try:
        return text.astype(np.float64)
    except ValueError:
        return None


def _mostly_numbers(values: np.ndarray) -> bool:
    """At least 95% of the non-empty cells are numbers: a numeric column with a few bad cells (counted invalid)."""
    present = [value for value in values.tolist() if value is not None]
    return sum(isinstance(value, float) for value in present) >= _NUMERIC_SHARE * len(present) > 0


def _number(cell: str) -> Any:
    if cell == "":
        return None
    try:
        return float(cell)
    except ValueError:
        return cell


def _times(cells: tuple[str, ...]) -> np.ndarray | None:
    sample = next((cell for cell in cells if cell), "")
    if len(sample) < 8 or sample[4:5] != "-" or not sample[:4].isdigit():
        return None
    try:
        return np.array([cell.replace(" ", "T", 1).rstrip("Z") or "NaT" for cell in cells], dtype="datetime64[ns]")
    except ValueError:
        return None


def _pyarrow(path: str, what: str) -> Any:
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401 (loads the submodule)
    except ImportError:
        raise ProfileError(f"{path}: reading {what} needs pyarrow: pip install 'servewatch[files]'") from None
    return pyarrow


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _ignore(_fraction: float) -> None:
    return None
