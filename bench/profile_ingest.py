"""Profile ingest cost against raw datasketches, measured side by side.

    python bench/profile_ingest.py

1. Vectorized: ColumnProfile.update(array) vs kll_doubles_sketch.update(array), ns per value (target <= 1.25x):
   clean floats, 1% NaN, and the arrays users hand over that the raw binding cannot take as they are (a
   read-only column from pandas 3 / pyarrow, a column of a 2-D array, int64): its baseline makes the
   contiguous writable float64 copy the binding needs first.
2. Per row: Profile.update_row(one row of 20 floats) vs 20 raw per-row kll.update(float) calls (target <= 3x).
3. Merge: folding 60 column profiles of 400 values (a window of minute buckets) vs kll_doubles_sketch.merge of
   the same sketches (no target: the detector evaluation benchmark holds the one that counts).
"""

from __future__ import annotations

import datasketches as ds
import numpy as np
from _timing import best, ratio_line

from servewatch import ColumnProfile, Profile

N = 1_000_000
FEATURES = 20
ROWS = 20_000


def vectorized() -> None:
    values = np.random.default_rng(0).normal(size=N)
    with_nan = values.copy()
    with_nan[::100] = np.nan
    raw = best(lambda: ds.kll_doubles_sketch(200).update(values), repeat=5) / N
    ours = best(lambda: ColumnProfile("x").update(values), repeat=5) / N
    print(ratio_line("vectorized update, clean floats", ours, raw, 1.25, "/value"))
    raw_nan = best(lambda: ds.kll_doubles_sketch(200).update(values[~np.isnan(with_nan)]), repeat=5) / N
    ours_nan = best(lambda: ColumnProfile("x").update(with_nan), repeat=5) / N
    print(ratio_line("vectorized update, 1% NaN (baseline filters with numpy)", ours_nan, raw_nan, 1.25, "/value"))
    read_only = values.copy()
    read_only.setflags(write=False)
    table = np.random.default_rng(2).normal(size=(N // 4, 4))
    integers = np.random.default_rng(3).integers(0, 1000, N)
    for label, given, size in (("a read-only column", read_only, N), ("a column of a 2-D array", table[:, 1], N // 4),
                               ("int64", integers, N)):
        raw_given = best(lambda given=given: ds.kll_doubles_sketch(200).update(
            np.array(given, dtype=np.float64, order="C")), repeat=5) / size
        ours_given = best(lambda given=given: ColumnProfile("x").update(given), repeat=5) / size
        print(ratio_line(f"vectorized update, {label} (baseline copies it first)", ours_given, raw_given, 1.25,
                         "/value"))


def per_row() -> None:
    rows = np.random.default_rng(1).normal(size=(ROWS, FEATURES)).tolist()

    def raw() -> None:
        sketches = [ds.kll_doubles_sketch(200) for _ in range(FEATURES)]
        for row in rows:
            for sketch, value in zip(sketches, row):
                sketch.update(value)

    def ours() -> None:
        profile = Profile("m")
        for row in rows:
            profile.update_row(row)
        profile.flush()

    def ours_dicts() -> None:
        profile = Profile("m")
        for row in dict_rows:
            profile.update_row(row)
        profile.flush()

    dict_rows = [{f"f{i}": value for i, value in enumerate(row)} for row in rows]
    baseline = best(raw, repeat=3) / ROWS
    print(ratio_line(f"per row, {FEATURES} floats as a list", best(ours, repeat=3) / ROWS, baseline, 3.0, "/row"))
    print(ratio_line(f"per row, {FEATURES} floats as a dict", best(ours_dicts, repeat=3) / ROWS, baseline, 3.0, "/row"))


def merges() -> None:
    rng = np.random.default_rng(4)
    buckets = [rng.normal(size=400) for _ in range(60)]
    columns = [ColumnProfile("x").update(bucket) for bucket in buckets]
    sketches = []
    for bucket in buckets:
        sketch = ds.kll_doubles_sketch(200)
        sketch.update(bucket)
        sketches.append(sketch)

    def ours() -> None:
        window = columns[0].copy()
        for column in columns[1:]:
            window.merge(column)

    def raw() -> None:
        window = ds.kll_doubles_sketch.deserialize(sketches[0].serialize())
        for sketch in sketches[1:]:
            window.merge(sketch)

    print(ratio_line("merge of 60 bucket columns of 400 values", best(ours, repeat=5) / 59, best(raw, repeat=5) / 59,
                     None, "/merge"))


if __name__ == "__main__":
    vectorized()
    per_row()
    merges()
