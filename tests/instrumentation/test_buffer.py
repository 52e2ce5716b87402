"""Gathering batches before sketching: same profile as profiling everything at once, copies, bounds, totals."""

from __future__ import annotations

import numpy as np
import pytest
from servewatch.instrumentation.buffer import BLOCK_VALUES, MAX_CLASSES, SignalBuffer

from servewatch.profile import Profile
from servewatch.spec import parse_spec


def buffer(signal: str = "input", spec: object = None) -> SignalBuffer:
    return SignalBuffer("m", signal, spec=spec, max_columns=64, start=100.0)


def test_gathered_small_batches_profile_like_one_batch() -> None:
    rng = np.random.default_rng(3)
    data = rng.normal(size=(1000, 5))
    gathered = buffer()
    for start in range(0, 1000, 7):                        # uneven batches across many block fills
        chunk = data[start:start + 7]
        gathered.add(gathered.extractor.extract(chunk))
    profile = gathered.close(200.0)
    direct = Profile.from_data(data)
    assert profile.rows == 1000 and list(profile.columns) == list(direct.columns)
    for name, column in profile.columns.items():
        assert column.count == 1000 and column.sketch.n == 1000
        assert column.sketch.get_quantile(0.5) == pytest.approx(direct.columns[name].sketch.get_quantile(0.5), abs=0.1)
        assert column.sketch.get_min_value() == direct.columns[name].sketch.get_min_value()


def test_arrays_are_copied_so_callers_may_reuse_their_buffers() -> None:
    gathered = buffer()
    reused = np.zeros((1, 2))
    for value in range(10):
        reused[:] = value
        gathered.add(gathered.extractor.extract(reused))
    reused[:] = -1.0
    column = gathered.close(200.0).columns["f0"]
    assert column.sketch.get_min_value() == 0.0 and column.sketch.get_max_value() == 9.0


def test_big_batches_go_straight_in_and_kinds_switch_cleanly() -> None:
    gathered = buffer()
    big = BLOCK_VALUES // 2 + 1                                          # rows of 2 columns: more than a block
    gathered.add(gathered.extractor.extract(np.ones((big, 2))))
    assert gathered.profile.rows == big                                  # not held back
    gathered.add(gathered.extractor.extract(np.ones((3, 2))))
    gathered.add(gathered.extractor.extract([{"f0": 2.0, "f1": 2.0}]))   # another kind: the block is profiled first
    gathered.add(gathered.extractor.extract(np.ones((2, 3))))            # another width
    profile = gathered.close(200.0)
    assert profile.rows == big + 3 + 1 + 2
    assert profile.columns["f0"].count == profile.rows and profile.columns["f2"].count == 2


def test_close_starts_a_new_interval_and_totals_keep_counting() -> None:
    gathered = buffer()
    gathered.add(gathered.extractor.extract(np.array([[1.0, np.nan], [np.inf, 2.0]])))
    first = gathered.close(150.0)
    assert (first.start, first.end) == (100.0, 150.0)
    assert gathered.profile.start == 150.0 and gathered.profile.rows == 0
    assert gathered.close(160.0) is None                                 # nothing seen: nothing to send
    gathered.add(gathered.extractor.extract(np.array([[3.0, None]], dtype=object)))
    counts = gathered.counts()
    assert counts["f0"] == [3, 0, 1]            # values, missing, invalid (+inf counts as invalid)
    assert counts["f1"] == [3, 2, 0]            # NaN and None are missing


def test_prediction_classes_are_bounded_with_other() -> None:
    gathered = buffer("prediction")
    labels = np.array([str(i) for i in range(MAX_CLASSES + 5)] * 2)
    gathered.add(gathered.extractor.extract(labels))
    classes = gathered.classes()
    assert len(classes) == MAX_CLASSES + 1 and classes["other"] == 10
    gathered.close(200.0)
    gathered.add(gathered.extractor.extract(np.array(["0", "new"])))
    after = gathered.classes()
    assert after["0"] == 3 and after["other"] == 11                     # a class never moves to or from other


def test_spec_columns_with_rules() -> None:
    spec = parse_spec({"models": [{"name": "m", "features": [
        {"name": "amount", "source": {"index": 0}, "rules": {"min": 0, "max": 10}},
        {"name": "country", "type": "categorical", "source": {"index": 1}}]}]}).model("m")
    gathered = buffer(spec=spec)
    gathered.add(gathered.extractor.extract(np.array([[5.0, 1.0], [50.0, 2.0]])))
    profile = gathered.close(200.0)
    assert list(profile.columns) == ["amount", "country"]
    assert profile.columns["amount"].above_max == 1 and not profile.columns["country"].is_numeric


def test_named_tensors_are_gathered_in_the_block_and_profile_like_one_batch() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(1000, 3)).astype(np.float32), rng.normal(size=(1000, 1))
    gathered = buffer()
    for start in range(0, 1000, 7):                                      # many block fills, rows of 1 included
        stop = start + (1 if start % 2 else 7)
        gathered.add(gathered.extractor.extract({"x": x[start:stop], "y": y[start:stop]}))
    rows = sum(1 if start % 2 else len(x[start:start + 7]) for start in range(0, 1000, 7))
    gathered.add(gathered.extractor.extract({"x": x, "y": y}))           # a big one goes straight in
    profile = gathered.close(200.0)
    assert profile.rows == rows + 1000 and list(profile.columns) == ["x.0", "x.1", "x.2", "y.0"]
    assert profile.columns["x.2"].count == rows + 1000
    direct = Profile.from_data({"x": x, "y": y})
    for name, column in profile.columns.items():
        assert column.sketch.get_min_value() == pytest.approx(direct.columns[name].sketch.get_min_value())
        assert column.sketch.get_quantile(0.5) == pytest.approx(direct.columns[name].sketch.get_quantile(0.5), abs=0.1)


def test_named_tensors_follow_the_spec_and_switch_cleanly() -> None:
    spec = parse_spec({"models": [{"name": "m", "features": [
        {"name": "amount", "source": {"key": "INPUT", "index": 1}, "rules": {"max": 10}},
        {"name": "age", "source": {"key": "AGE"}}]}]}).model("m")
    gathered = buffer(spec=spec)
    first = {"INPUT": np.array([[0.0, 5.0], [0.0, 50.0]]), "AGE": np.array([[30.0], [40.0]])}
    gathered.add(gathered.extractor.extract(first))
    gathered.add(gathered.extractor.extract({"INPUT": np.array([[0.0, 7.0]])}))   # another signature: flushed first
    reused = np.zeros((1, 2))
    for value in (1.0, 2.0):                                              # the block holds copies
        reused[:] = value
        gathered.add(gathered.extractor.extract({"INPUT": reused}))
    reused[:] = 99.0
    profile = gathered.close(200.0)
    assert profile.rows == 5 and list(profile.columns) == ["amount", "age"]
    amount = profile.columns["amount"]
    assert amount.count == 5 and amount.above_max == 1 and amount.sketch.get_max_value() == 50.0
    assert profile.columns["age"].missing == 3
