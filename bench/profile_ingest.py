"""Profile ingest cost against raw datasketches, measured side by side.

    python bench/profile_ingest.py

1. Vectorized: ColumnProfile.update(array) vs kll_doubles_sketch.update(array), ns per value (target <= 1.25x).
2. Per row: Profile.update_row(one row of 20 floats) vs 20 raw per-row kll.update(float) calls (target <= 3x).
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


if __name__ == "__main__":
    vectorized()
    per_row()
