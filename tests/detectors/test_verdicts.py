"""The decision rule that knows its sample sizes: noise levels, ratio-rule bounds and the unknown verdict."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta, ks_2samp

from servewatch import ColumnProfile, Profile
from servewatch.detectors import SEVERITIES, Detector, Statistic, check_rules, compare, ks, worst_severity
from servewatch.detectors.binned import FORMULAS
from servewatch.detectors.noise import binned_noise, ks_noise, outside_share
from servewatch.detectors.rules import lower_bound
from servewatch.spec import Rules, Threshold, parse_spec

REFERENCE = 100_000
SHARES = [.3, .2, .15, .1, .1, .08, .05, .02]


@pytest.fixture(scope="module")
def reference() -> Profile:
    rng = np.random.default_rng(1)
    return Profile.from_data({"x": rng.normal(size=REFERENCE),
                              "c": list(rng.choice(list("abcdefgh"), REFERENCE, p=SHARES))},
                             model="m")


def window(rng: np.random.Generator, n: int, shift: float = 0.0, new: float = 0.0) -> Profile:
    categories = rng.choice(list("abcdefgh"), n, p=SHARES).astype(object)
    categories[rng.random(n) < new] = "z"
    return Profile.from_data({"x": rng.normal(shift, 1.0, n), "c": list(categories)}, model="m")


def test_small_undrifted_windows_decide_nothing(reference: Profile) -> None:
    """120 undrifted windows of 100-300 values: the bare thresholds fire on many, the noise-aware rule on none."""
    rng = np.random.default_rng(2)
    spec = parse_spec({"models": [{"name": "m"}]}).model("m")
    raw_alarms = 0
    for n in (100, 120, 180, 300) * 30:
        report = compare(reference, window(rng, n), spec)
        assert report.severity == "ok" and report.drifted == [], report.table()
        for column in report.columns.values():
            raw_alarms += any(spec.thresholds[name].severity(stat.value) != "ok"
                              for name, stat in column.statistics.items() if name in spec.thresholds)
    assert raw_alarms > 60  # the effect-size thresholds alone page on these windows' sampling noise


def test_practical_drift_at_500_values_flags(reference: Profile) -> None:
    """Shifts whose exact KS is >= 0.13 on 500 values, and a new category at 5%, are flagged in one window."""
    rng = np.random.default_rng(3)
    raw = np.random.default_rng(1).normal(size=REFERENCE)
    flagged = practical = 0
    for _ in range(30):
        values = rng.normal(0.4, 1.0, 500)
        current = Profile.from_data({"x": values}, model="m")
        if ks_2samp(raw, values).statistic < 0.13:
            continue
        practical += 1
        report = compare(reference, current, statistics=("ks", "d1", "psi"))
        flagged += report.columns["x"].severity in ("warning", "critical")
    assert practical >= 25 and flagged == practical
    for _ in range(10):
        column = compare(reference, window(rng, 500, new=0.05)).columns["c"]
        assert column.severity in ("warning", "critical"), column.statistics


def test_ks_noise_covers_the_exact_null() -> None:
    """Undrifted exact-mode samples exceed the KS noise level at most at its false-alarm rate."""
    rng = np.random.default_rng(4)
    alpha, trials, exceeded = 0.01, 3000, 0
    level = ks_noise(150, 120, 0.0, alpha)
    for _ in range(trials):
        a, b = ColumnProfile("x").update(rng.random(150)), ColumnProfile("x").update(rng.random(120))
        stat = ks(a, b, alpha=alpha)
        assert stat.bound == 0.0 and stat.noise == pytest.approx(level)
        exceeded += stat.value > stat.noise
    assert exceeded <= 1.2 * alpha * trials
    assert ks_noise(100_000, 500, 0.0266, 1e-3 / 3) == pytest.approx(0.0935 + 0.0266, abs=0.001)


@pytest.mark.parametrize("n, m", [(1_000, 100), (1_000, 300), (100_000, 120), (100_000, 1_000)])
def test_binned_noise_covers_the_simulated_null(n: int, m: int) -> None:
    """Numeric bins (reference deciles + two outer bins): the window's bin counts are multinomial over the
    true masses of the reference's bins, which are Dirichlet spacings of its order statistics. Each binned
    statistic exceeds its noise level in at most its false-alarm rate of 20,000 undrifted draws."""
    rng = np.random.default_rng(5)
    alpha, draws = 0.01, 20_000
    ranks = np.ceil(n * np.arange(1, 10) / 10).astype(int)
    gaps = np.diff(np.concatenate(([0, 1], ranks, [n, n + 1])))
    p = np.concatenate(([0.0], np.diff(np.concatenate(([0], ranks, [n]))) / n, [0.0]))
    q = rng.multinomial(m, rng.dirichlet(gaps, size=draws)) / m
    levels = binned_noise(p, n, m, alpha=alpha)
    for name in ("d1", "psi", "js", "hellinger"):
        values = np.array([FORMULAS[name](p, row) for row in q])
        assert np.mean(values > levels[name]) <= 1.2 * alpha, name


def test_outside_share_and_lower_bound() -> None:
    assert outside_share(100_000, 500, 1e-4) == 1 / 500  # one value beyond a 100k reference's range is plausible
    assert outside_share(1_000, 100_000, 1e-4) > 0.005  # a 1k reference's range misses ~0.2%, up to ~1%
    assert lower_bound(3, 10, 0.05) == pytest.approx(beta.ppf(0.05, 3, 8))  # Clopper-Pearson


def test_ratio_rules_hold_a_lower_bound_to_the_limit() -> None:
    rules = Rules(max_missing_ratio=0.05)
    eight = ColumnProfile("x").update([1.0, 2.0, None, 4.0, 5.0, 6.0, 7.0, 8.0])
    result = check_rules(eight, rules)["missing"]
    assert result.value == 1 / 8 and not result.violated  # 1 in 8 is not a 12% missing ratio
    many = ColumnProfile("x").update(np.where(np.arange(1000) % 10 == 0, np.nan, 1.0))  # 10% missing
    result = check_rules(many, rules, alpha=1e-3)["missing"]
    assert result.violated and result.bound == pytest.approx(beta.ppf(1e-3, 100, 901)) and 0.05 < result.bound < 0.1
    assert result.to_dict()["bound"] == result.bound
    near = ColumnProfile("x").update(np.where(np.arange(500) % 16 == 0, np.nan, 1.0))  # 6.4%: within noise of 5%
    assert not check_rules(near, rules)["missing"].violated
    invalid = ColumnProfile("x").update([1.0, 2.0, "oops", 4.0])
    assert check_rules(invalid, Rules())["invalid"].violated  # a limit of 0 trips on one bad value: not noise
    assert lower_bound(0, 100) == 0.0


def test_unknown_severity() -> None:
    assert SEVERITIES == ("unknown", "ok", "warning", "critical")
    assert worst_severity(["critical", "unknown"]) == "critical"
    assert worst_severity(["ok", "unknown"]) == "ok"
    assert worst_severity(["unknown", "unknown"]) == "unknown"
    assert Statistic("ks", None).severity(Threshold(0.1, 0.2)) == "unknown"
    assert Statistic("ks", 0.15, noise=0.2).severity(Threshold(0.1, 0.2)) == "ok"
    assert Statistic("ks", 0.25, noise=0.2).severity(Threshold(0.1, 0.2)) == "critical"
    rng = np.random.default_rng(6)
    reference = Profile.from_data({"x": rng.normal(size=5000), "y": rng.normal(size=5000)}, model="m")
    spec = parse_spec({"models": [{"name": "m", "features": [{"name": "x"},
                                                              {"name": "y", "rules": {"max_missing_ratio": 0.01}}]}]})
    tiny = compare(reference, Profile.from_data({"x": rng.normal(size=20), "y": rng.normal(size=20)}, model="m"),
                   spec.model("m"))
    assert tiny.severity == "unknown" and tiny.drifted == [] and not tiny.warning_detected
    assert {column.severity for column in tiny.columns.values()} == {"unknown"}
    broken = compare(reference, Profile.from_data({"x": rng.normal(size=20), "y": [None] * 200}, model="m"),
                     spec.model("m"))
    assert broken.columns["y"].severity == "warning" and broken.severity == "warning"  # a rule decided
    no_reference = compare(Profile("m"), Profile.from_data({"x": rng.normal(size=500)}, model="m"))
    assert no_reference.columns["x"].severity == "unknown"
    detector = Detector(reference, spec.model("m"))
    assert detector.severity == "unknown" and not detector.warning_detected  # nothing seen yet
    assert detector.update(Profile.from_data({"x": rng.normal(size=20)}, model="m")).severity == "unknown"
    assert detector.update(Profile.from_data({"x": rng.normal(size=900)}, model="m")).severity == "ok"


def test_noise_is_shown_beside_the_value(reference: Profile) -> None:
    report = compare(reference, window(np.random.default_rng(7), 120))
    ks_cell = report.columns["x"].statistics["ks"]
    assert ks_cell.noise is not None and f"{ks_cell.value:.3f} (noise {ks_cell.noise:.3f})" in report.table()
    assert report.to_dict()["columns"]["x"]["ks"]["noise"] == ks_cell.noise


def test_categories_the_reference_never_saw_are_noise_where_it_saw_mostly_rare_ones() -> None:
    """Order ids (every value new) are not drift: the reference's singletons and untracked weight say that
    an undrifted window lands almost wholly outside the categories it saw (Good-Turing)."""
    rng = np.random.default_rng(8)
    reference = Profile.from_data({"id": [f"o{i}" for i in range(2000)]}, model="m")
    for n in (120, 1000):
        start = int(rng.integers(10_000, 1_000_000))
        column = compare(reference, Profile.from_data({"id": [f"o{start + i}" for i in range(n)]}, model="m"),
                         parse_spec({"models": [{"name": "m"}]}).model("m")).columns["id"]
        assert column.severity == "ok", column.statistics
        assert column.statistics["linf"].noise > column.statistics["linf"].value
