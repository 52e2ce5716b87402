"""split_columns: every batch shape, by the spec's source or automatically."""

from __future__ import annotations

import numpy as np

from servewatch.batch import split_columns
from servewatch.spec import Column, Source


def test_automatic_names() -> None:
    assert list(split_columns(np.zeros((2, 3)))) == ["f0", "f1", "f2"]
    assert list(split_columns(np.zeros(4))) == ["f0"]
    assert list(split_columns(np.zeros((2, 2, 2)))) == ["f0", "f1", "f2", "f3"]
    assert list(split_columns([{"a": 1, "b": 2}, {"c": 3}])) == ["a", "b", "c"]
    assert list(split_columns({"img": np.zeros((2, 2)), "t": ["x", "y"]})) == ["img.0", "img.1", "t"]
    assert split_columns([1.0, 2.0])["f0"].tolist() == [1.0, 2.0]


def test_sources() -> None:
    columns = [Column("a", source=Source(index=1)), Column("b", source=Source(key="x", index=0)),
               Column("c", source=Source(path=("u", "v", "1"))), Column("d", source=Source(key="name"))]
    rows = [{"x": [10, 20], "u": {"v": [5, 6]}, "name": "n1", "a": 0.5}, {"x": [11], "u": {"v": "s"}, "name": None}]
    split = split_columns(rows, columns)
    assert split["a"] == [0.5, None]  # positional source on dict rows: found by name
    assert split["b"] == [10, 11]
    assert split["c"][0] == 6 and repr(split["c"][1]) == "<invalid>"
    assert split["d"] == ["n1", None]
    tensor = {"x": np.arange(6).reshape(3, 2), "name": ["p", "q", "r"]}
    split = split_columns(tensor, columns)
    assert split["b"].tolist() == [0, 2, 4] and split["d"] == ["p", "q", "r"] and split["a"] == [None] * 3


def test_ragged_and_hostile_rows() -> None:
    split = split_columns([[1, 2, 3], [4], "oops", None])
    assert split["f0"][:2] == [1, 4] and split["f1"][1] is None and split["f2"][3] is None
    assert repr(split["f0"][2]) == "<invalid>"


def test_positional_spec_columns_without_source() -> None:
    split = split_columns(np.array([[1.0, 2.0, 3.0]]), [Column("first"), Column("second")])
    assert split["first"].tolist() == [1.0] and split["second"].tolist() == [2.0]
    assert split_columns(np.array([[1.0]]), [Column("x", source=Source(index=5))])["x"] == [None]
