"""Each statistic on cases with known answers, and on columns too small to say anything."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, wasserstein_distance

from servewatch import ColumnProfile
from servewatch.detectors import (chi2, cramers_v, d1, hellinger, js, ks, linf, new_category_ratio, psi,
                                  wasserstein)

rng = np.random.default_rng(5)


def numeric(values) -> ColumnProfile:
    return ColumnProfile("x").update(np.asarray(values, dtype=float))


def categorical(values) -> ColumnProfile:
    return ColumnProfile("c", "categorical").update(list(values))


def test_identical_columns_are_at_zero() -> None:
    column = numeric(rng.normal(size=5000))
    for stat in (ks, d1, psi, js, hellinger, wasserstein):
        assert stat(column, column).value == pytest.approx(0.0, abs=1e-12)


def test_disjoint_columns_are_at_the_maximum() -> None:
    low, high = numeric(rng.uniform(0, 1, 2000)), numeric(rng.uniform(5, 6, 2000))
    assert ks(low, high).value == 1.0
    assert d1(low, high).value == pytest.approx(2.0)
    assert js(low, high).value == pytest.approx(1.0)
    assert hellinger(low, high).value == pytest.approx(1.0)
    assert psi(low, high).value > 5


def test_exact_mode_matches_raw_formulas() -> None:
    a, b = rng.normal(0, 1, 150), rng.normal(0.5, 1.2, 180)  # both below k: the sketches are exact
    A, B = numeric(a), numeric(b)
    assert ks(A, B).bound == 0.0
    assert wasserstein(A, B).value == pytest.approx(wasserstein_distance(a, b) / a.std(), rel=1e-9)
    edges = np.append(np.quantile(np.sort(a), np.arange(1, 10) / 10, method="inverted_cdf"), a.max())
    p = np.diff(np.concatenate(([0, 0], np.searchsorted(np.sort(a), edges, "right") / a.size, [1])))
    q = np.diff(np.concatenate(([0, np.mean(b < a.min())], np.searchsorted(np.sort(b), edges, "right") / b.size, [1])))
    assert d1(A, B).value == pytest.approx(np.abs(p - q).sum())
    assert js(A, B).value == pytest.approx(jensenshannon(p, q, base=2))
    floor_p, floor_q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
    assert psi(A, B).value == pytest.approx(np.sum((floor_q - floor_p) * np.log(floor_q / floor_p)))


def test_shift_grows_every_statistic() -> None:
    base = rng.normal(size=20000)
    reference = numeric(base)
    values = {name: [] for name in ("ks", "d1", "psi", "js", "hellinger", "wasserstein")}
    for shift in (0.0, 0.25, 0.5, 1.0):
        current = numeric(rng.normal(shift, 1, 20000))
        for stat in (ks, d1, psi, js, hellinger, wasserstein):
            values[stat.__name__].append(stat(reference, current).value)
    for name, series in values.items():
        assert series == sorted(series), (name, series)
    assert values["ks"][-1] == pytest.approx(0.383, abs=0.03)  # Phi(0.5) - Phi(-0.5)
    assert values["wasserstein"][-1] == pytest.approx(1.0, abs=0.05)


def test_categorical_statistics() -> None:
    ref_values = ["US"] * 600 + ["DE"] * 300 + ["FR"] * 100
    cur_values = ["US"] * 400 + ["DE"] * 300 + ["FR"] * 100 + ["BR"] * 200
    A, B = categorical(ref_values), categorical(cur_values)
    assert linf(A, B).value == pytest.approx(0.2)
    assert d1(A, B).value == pytest.approx(0.4)
    assert new_category_ratio(A, B).value == pytest.approx(0.2) and new_category_ratio(A, B).reason is None
    table = np.array([[600, 300, 100, 0], [400, 300, 100, 200]])
    expected = chi2_contingency(table, correction=False)[0]
    assert chi2(A, B).value == pytest.approx(expected)
    assert cramers_v(A, B).value == pytest.approx(np.sqrt(expected / 2000))
    assert linf(A, A).value == 0.0 and psi(A, A).value == pytest.approx(0.0)


def test_high_cardinality_categories_stay_bounded_and_say_so() -> None:
    many = categorical([f"user-{i}" for i in rng.integers(0, 50000, 20000)])
    other = categorical([f"user-{i}" for i in rng.integers(0, 50000, 20000)])
    ratio = new_category_ratio(many, other)
    assert ratio.reason and "upper bound" in ratio.reason
    assert 0.0 <= linf(many, other).value <= 1.0


def test_too_few_values_give_a_reason_not_a_number() -> None:
    big, small = numeric(rng.normal(size=1000)), numeric([1.0, 2.0, np.nan])
    for stat in (ks, d1, psi, wasserstein):
        result = stat(big, small)
        assert result.value is None and result.reason == "too few values in current (2 < 100)"
    assert ks(big, small, min_samples=2).value is not None
    assert ks(small, big).reason.startswith("too few values in reference")


def test_wrong_kinds() -> None:
    with pytest.raises(TypeError, match="needs numeric"):
        ks(categorical("ab" * 100), categorical("ab" * 100))
    with pytest.raises(TypeError, match="needs categorical"):
        linf(numeric(range(200)), numeric(range(200)))
    mixed = d1(numeric(range(200)), categorical("ab" * 100))
    assert mixed.value is None and "reference is numeric, current is categorical" in mixed.reason


def test_constant_reference_has_no_wasserstein() -> None:
    result = wasserstein(numeric([3.0] * 500), numeric(rng.normal(size=500)))
    assert result.value is None and "constant" in result.reason
    assert ks(numeric([3.0] * 500), numeric([3.0] * 500)).value == 0.0
