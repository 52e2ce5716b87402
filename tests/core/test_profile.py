"""Profiles: built from every accepted shape, bad values counted not raised, merging equals the union."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servewatch import ColumnProfile, Profile, ProfileError
from servewatch.detectors import ks
from servewatch.spec import parse_spec

SPEC = parse_spec({"models": [{"name": "fraud", "features": [
    {"name": "amount", "source": {"index": 0}, "rules": {"min": 0, "max": 100}},
    {"name": "country", "type": "categorical", "source": {"key": "country"}, "rules": {"allowed": ["US", "DE"]}},
    {"name": "age", "source": {"path": "user.age"}},
], "predictions": [{"name": "score", "source": {"index": 1}}]}]}).model("fraud")


def test_numeric_counts_and_sketch() -> None:
    column = ColumnProfile("x").update(np.array([1.0, 2.0, np.nan, np.inf, -np.inf, 3.0]))
    column.update([4.0, None, "five", [6], float("nan"), True])
    assert (column.count, column.missing, column.non_finite, column.invalid) == (12, 3, 2, 2)
    assert column.valid == 5 and column.sketch.n == 5
    assert column.sketch.get_max_value() == 4.0


def test_categorical_counts_and_sketches() -> None:
    column = ColumnProfile("c", "categorical", rules=SPEC.features[1].rules)
    column.update(["US", "DE", "FR", None, float("nan"), {"x": 1}, "US", 3, True])
    assert (column.count, column.missing, column.invalid, column.valid) == (9, 2, 1, 6)
    assert column.not_allowed == 3  # FR, "3", "true"
    assert column.categories() == {"US": 2.0, "DE": 1.0, "FR": 1.0, "3": 1.0, "true": 1.0}
    assert round(column.distinct.get_estimate()) == 5
    ints = ColumnProfile("k", "categorical").update(np.array([1, 1, 2]))
    floats = ColumnProfile("k", "categorical").update(np.array([1.0, np.nan, 2.0, 1.0]))
    assert ints.categories() == floats.categories() == {"1": 2.0, "2": 1.0}
    assert floats.missing == 1 and floats.count == 4


def test_long_categories_are_truncated() -> None:
    column = ColumnProfile("c", "categorical").update(["x" * 1000])
    assert list(column.categories()) == ["x" * 128]


def test_profile_from_array_rows_mapping_and_spec() -> None:
    array = np.arange(12, dtype=float).reshape(4, 3)
    profile = Profile.from_data(array, model="m")
    assert list(profile.columns) == ["f0", "f1", "f2"] and profile.rows == 4
    rows = [{"amount": 5.0, "country": "US", "user": {"age": 30}}, {"amount": 500.0, "country": "FR"},
            {"amount": -1, "country": None, "user": {"age": "old"}}]
    by_spec = Profile.from_data([[r["amount"], 0.5] for r in rows], model="fraud", spec=SPEC)
    assert by_spec.columns["amount"].above_max == 1 and by_spec.columns["amount"].below_min == 1
    assert by_spec.columns["country"].missing == 3  # positional rows have no key "country"
    keyed = Profile.from_data(rows, model="fraud", spec=SPEC)
    assert keyed.columns["country"].not_allowed == 1 and keyed.columns["country"].missing == 1
    assert keyed.columns["age"].valid == 1 and keyed.columns["age"].missing == 1 and keyed.columns["age"].invalid == 1
    assert keyed.columns["amount"].count == 3 and keyed.columns["amount"].valid == 3
    predictions = Profile.from_data(np.array([[0.1, 0.9], [0.8, 0.2]]), model="fraud", signal="prediction", spec=SPEC)
    assert list(predictions.columns) == ["score"] and predictions.columns["score"].sketch.get_max_value() == 0.9
    mapping = Profile.from_data({"emb": np.ones((5, 3)), "label": ["a"] * 5}, model="m")
    assert list(mapping.columns) == ["emb.0", "emb.1", "emb.2", "label"]
    assert mapping.columns["label"].kind == "categorical"


def test_pandas_dataframe() -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"amount": [1.0, None, 3.0], "country": ["US", "DE", None],
                              "n": pandas.array([1, None, 3], dtype="Int64")})
    profile = Profile.from_data(frame, model="fraud")
    assert profile.columns["amount"].missing == 1 and profile.columns["country"].kind == "categorical"
    assert profile.columns["n"].missing == 1 and profile.columns["n"].valid == 2


def test_hostile_rows_are_counted_not_raised() -> None:
    rows = [[1.0, 2.0], [3.0], "not a row", None, [1.0, "x", 3.0], {"a": 1}, [math.nan, math.inf], [[1, 2], 3]]
    profile = Profile("m")
    for row in rows:
        profile.update_row(row)
    profile.update(rows)
    columns = profile.columns
    assert profile.rows == 2 * len(rows)
    f0, f1 = columns["f0"], columns["f1"]
    assert f0.count == f1.count == 2 * len(rows)
    assert f1.missing > 0 and f1.invalid > 0 and f0.non_finite == 0 and f1.non_finite == 2
    assert sum(c.valid + c.missing + c.invalid + c.non_finite for c in (f0,)) == f0.count


def test_update_row_buffers_and_equals_batch() -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(size=(1000, 5))
    one_by_one = Profile("m")
    for row in data.tolist():
        one_by_one.update_row(row)
    batch = Profile.from_data(data, model="m")
    for name in batch.columns:
        a, b = one_by_one.columns[name], batch.columns[name]
        assert a.count == b.count == 1000
        assert a.sketch.get_min_value() == b.sketch.get_min_value()
    assert one_by_one.rows == 1000


def test_automatic_columns_are_bounded() -> None:
    profile = Profile.from_data(np.zeros((3, 100)), model="m", max_columns=8)
    assert list(profile.columns) == [f"f{i}" for i in range(8)]
    rows = [{f"k{i}": i for i in range(50)}]
    assert len(Profile.from_data(rows, model="m", max_columns=10).columns) == 10


def test_merge_kind_mismatch_and_model_mismatch_raise() -> None:
    with pytest.raises(ProfileError):
        ColumnProfile("x").merge(ColumnProfile("x", "categorical"))
    with pytest.raises(ProfileError):
        Profile("a").merge(Profile("b"))


def test_merge_widens_interval_and_keeps_inputs() -> None:
    a = Profile.from_data(np.ones((10, 2)), model="m")
    a.start, a.end = 100.0, 160.0
    b = Profile.from_data(np.zeros((5, 2)), model="m")
    b.start, b.end = 160.0, 220.0
    total = Profile.merged([a, b])
    assert total.rows == 15 and (total.start, total.end) == (100.0, 220.0)
    assert a.rows == 10 and a.columns["f0"].count == 10  # inputs untouched


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(), st.integers(-10**6, 10**6),
                                   st.text(max_size=3)), min_size=0, max_size=60), min_size=1, max_size=6))
def test_merge_of_parts_equals_profile_of_whole(parts: list[list[object]]) -> None:
    whole = ColumnProfile("x")
    for part in parts:
        whole.update(part)
    pieces = [ColumnProfile("x").update(part) for part in parts]
    left = pieces[0].copy()
    for piece in pieces[1:]:
        left.merge(piece)
    right = pieces[-1].copy()
    for piece in reversed(pieces[:-1]):
        right.merge(piece)
    for merged in (left, right):
        for name in ("count", "missing", "non_finite", "invalid"):
            assert getattr(merged, name) == getattr(whole, name)
        assert merged.sketch.n == whole.sketch.n
        if whole.valid:
            assert merged.sketch.get_min_value() == whole.sketch.get_min_value()
            assert merged.sketch.get_max_value() == whole.sketch.get_max_value()


def test_merged_sketch_is_within_its_error_of_the_union() -> None:
    """The rank error KLL states is a 99th percentile: over 60 merges, nearly all stay within it."""
    rng = np.random.default_rng(7)
    within = 0
    for trial in range(60):
        chunks = [rng.lognormal(0, 1, size=rng.integers(1, 20000)) for _ in range(1 + trial % 5)]
        union = np.sort(np.concatenate(chunks))
        merged = ColumnProfile("x")
        for chunk in chunks:
            merged.merge(ColumnProfile("x").update(chunk))
        assert merged.count == merged.sketch.n == union.size
        cdf = np.searchsorted(union, union, side="right") / union.size
        sketched = np.array(merged.sketch.get_cdf(union.tolist()))[:-1] if union.size < 5000 else None
        error = ks(merged, ColumnProfile("x", k=65535).update(union), min_samples=1).value
        within += error <= merged.sketch.normalized_rank_error(False)
        if sketched is not None:
            assert np.max(np.abs(sketched - cdf)) <= 2 * merged.sketch.normalized_rank_error(False)
    assert within >= 54


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "d", None, "é", ""]), max_size=200),
       st.lists(st.sampled_from(["a", "x", None]), max_size=200))
def test_categorical_merge_is_exact_for_small_cardinality(first: list[str | None], second: list[str | None]) -> None:
    merged = ColumnProfile("c", "categorical").update(first).merge(ColumnProfile("c", "categorical").update(second))
    whole = ColumnProfile("c", "categorical").update(first + second)
    assert merged.categories() == whole.categories()
    assert (merged.count, merged.missing) == (whole.count, whole.missing)
    assert round(merged.distinct.get_estimate()) == round(whole.distinct.get_estimate())
