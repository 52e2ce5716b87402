"""Sketch statistics against exact computations on the raw data, over many random pairs of distributions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp

from servewatch import ColumnProfile
from servewatch.detectors import ks
from servewatch.detectors.binned import FORMULAS, shares
from servewatch.detectors.distribution import Distribution

KINDS = ("normal", "cauchy", "pareto", "discrete", "poisson", "mixture", "lognormal", "constant")
SIZES = (20, 100, 500, 3_000, 20_000, 100_000, 1_000_000)
SIZE_WEIGHTS = (0.14, 0.18, 0.18, 0.18, 0.16, 0.12, 0.04)


def draw(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    if kind == "normal":
        return rng.normal(rng.uniform(-1, 1), rng.uniform(0.5, 2), n)
    if kind == "cauchy":
        return rng.standard_cauchy(n) * rng.uniform(0.5, 2)
    if kind == "pareto":
        return rng.pareto(rng.uniform(1, 3), n)
    if kind == "discrete":
        return rng.integers(0, rng.integers(2, 20), n).astype(float)
    if kind == "poisson":
        return rng.poisson(rng.uniform(0.5, 10), n).astype(float)
    if kind == "mixture":
        mask = rng.random(n) < rng.uniform(0.1, 0.9)
        return np.where(mask, rng.normal(0, 1, n), rng.normal(rng.uniform(1, 5), 0.5, n))
    if kind == "lognormal":
        return rng.lognormal(0, rng.uniform(0.5, 2), n)
    return np.full(n, rng.integers(0, 3), dtype=float)


def pairs(count: int, seed: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        first = str(rng.choice(KINDS))
        second = first if rng.random() < 0.5 else str(rng.choice(KINDS))
        n1, n2 = (int(rng.choice(SIZES, p=SIZE_WEIGHTS)) for _ in range(2))
        yield draw(rng, first, n1), draw(rng, second, n2)


@pytest.mark.slow
def test_sketch_ks_is_within_its_bound_of_scipy_exact() -> None:
    """|sketch KS - exact ks_2samp| <= the returned bound in >= 99% of 1,200 pairs; bound <= 0.03 at k=200."""
    within = total = 0
    bounds = []
    for a, b in pairs(1200, seed=11):
        stat = ks(ColumnProfile("x").update(a), ColumnProfile("x").update(b), min_samples=1)
        exact = ks_2samp(a, b).statistic
        total += 1
        within += abs(stat.value - exact) <= stat.bound + 1e-12
        bounds.append(stat.bound)
    assert within / total >= 0.99, f"{total - within} of {total} pairs outside the bound"
    assert max(bounds) <= 0.03
    assert min(bounds) == 0.0  # two small sketches are exact, and say so


@pytest.mark.slow
def test_sketch_d1_and_psi_track_the_exact_binned_values() -> None:
    """Same bins (the reference sketch's deciles), raw data vs sketches, in >= 99% of 400 pairs: D1 within
    0.05; PSI within 0.02 + 20% where it is below 0.5 (where thresholds live), and on the same side of the
    default critical level (0.25) everywhere. Above 0.5, bins the reference barely fills make PSI swing with
    shares below the sketches' resolution (0.003 of the stream read as 0): large either way."""
    d1_ok = psi_ok = total = 0
    for a, b in pairs(400, seed=12):
        reference, current = ColumnProfile("x").update(a), ColumnProfile("x").update(b)
        view = Distribution.of(reference)
        inner = view.quantiles(np.arange(1, 10) / 10)
        edges = np.unique(np.concatenate((inner[inner < view.high], [view.high])))
        exact = [np.diff(np.concatenate(([0.0], np.searchsorted(np.sort(x), [view.low], side="left") / x.size,
                                         np.searchsorted(np.sort(x), edges, side="right") / x.size, [1.0])))
                 for x in (a, b)]
        sketched = shares(reference, current)
        total += 1
        d1_ok += abs(FORMULAS["d1"](*sketched) - FORMULAS["d1"](*exact)) <= 0.05
        exact_psi, sketched_psi = FORMULAS["psi"](*exact), FORMULAS["psi"](*sketched)
        same_side = (exact_psi >= 0.25) == (sketched_psi >= 0.25)
        psi_ok += same_side and (exact_psi >= 0.5 or abs(sketched_psi - exact_psi) <= 0.02 + 0.2 * exact_psi)
    assert d1_ok / total >= 0.99 and psi_ok / total >= 0.99, (d1_ok, psi_ok, total)
