"""compare() cost against a bare loop of sketch KS over the same sketches, and against scipy on raw data.

    python bench/compare.py

compare over 20 numeric features computing KS + D1 + PSI + rules, vs a bare loop that computes only the
sketch KS of each feature from the same sketches (sorted views built from scratch, as compare must):
target <= 1.5x. Then what the decision rule's noise levels cost: the same compare with the noise levels
not computed (today's rule before them, by stubbing ``pair_noise`` and ``ks_noise`` in this process),
interleaved with the real one: target <= 1.2x. Then the speed-up over scipy's exact ks_2samp on the raw
data the sketches summarise.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
from _timing import best
from scipy.stats import ks_2samp

from servewatch import Profile
from servewatch.detectors import compare, numeric, report
from servewatch.kll_layout import kll_items

FEATURES = 20
N = 200_000


def bare_ks(reference: Profile, current: Profile) -> list[float]:
    """The baseline: sketch KS of each feature and nothing else."""
    result = []
    for name, column in reference.columns.items():
        views = []
        for sketch in (column.sketch, current.columns[name].sketch):
            items, weights, _low, _high = kll_items(sketch.serialize())  # the cheapest read of a sketch
            order = np.argsort(items)
            views.append((items[order], np.cumsum(weights[order]) / sketch.n))
        points = np.union1d(views[0][0], views[1][0])
        cdfs = [np.concatenate(([0.0], cdf))[np.searchsorted(items, points, side="right")] for items, cdf in views]
        result.append(float(np.max(np.abs(cdfs[0] - cdfs[1]))))
    return result


def main() -> None:
    rng = np.random.default_rng(0)
    raw_ref = rng.normal(size=(N, FEATURES))
    raw_cur = rng.normal(0.05, 1.0, size=(N, FEATURES))
    reference = Profile.from_data(raw_ref, model="m")
    current = Profile.from_data(raw_cur, model="m")

    def ours() -> None:
        for profile in (reference, current):  # a fresh comparison every time: no cached sorted views
            for column in profile.columns.values():
                column.view = None
        compare(reference, current, statistics=("ks", "d1", "psi"))

    baseline = best(lambda: bare_ks(reference, current), repeat=15)
    mine = best(ours, repeat=15)
    print(f"compare, {FEATURES} features, KS+D1+PSI+rules: {mine * 1e3:.2f} ms vs bare sketch-KS loop "
          f"{baseline * 1e3:.2f} ms -> {mine / baseline:.2f}x  [{'ok' if mine / baseline <= 1.5 else 'OVER 1.5x'}]")
    with_noise, without = [], []
    zero = {name: 0.0 for name in ("d1", "psi", "js", "hellinger", "linf", "chi2", "cramers_v")}
    for _ in range(3):  # interleaved, so load on the machine falls on both alike
        with_noise.append(best(ours, repeat=10))
        with mock.patch.object(report, "pair_noise", lambda *_args: zero), \
                mock.patch.object(numeric, "ks_noise", lambda *_args: 0.0):
            without.append(best(ours, repeat=10))
    ratio = min(with_noise) / min(without)
    print(f"compare with noise levels: {min(with_noise) * 1e3:.2f} ms vs without (today's rule) "
          f"{min(without) * 1e3:.2f} ms -> {ratio:.2f}x  [{'ok' if ratio <= 1.2 else 'OVER 1.2x'}]")
    scipy_time = best(lambda: [ks_2samp(raw_ref[:, i], raw_cur[:, i]) for i in range(FEATURES)], repeat=3)
    print(f"scipy exact ks_2samp on the raw data ({N:,} x 2 values per feature): {scipy_time * 1e3:.1f} ms "
          f"-> compare is {scipy_time / mine:.0f}x faster (and needs no raw data)")


if __name__ == "__main__":
    main()
