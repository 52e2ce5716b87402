"""compare, rules and the streaming Detector on profiles built from data with known drift."""

from __future__ import annotations

import json

import numpy as np
import pytest

from servewatch import Profile, ProfileError
from servewatch.detectors import Detector, check_volume, compare, quality_ratios
from servewatch.spec import Volume, parse_spec

SPEC = parse_spec({"models": [{"name": "fraud", "min_samples": 50, "features": [
    {"name": "amount", "rules": {"min": 0, "max": 1000, "max_missing_ratio": 0.05}},
    {"name": "age", "thresholds": {"ks": {"warning": 0.5, "critical": 0.9}, "d1": {"warning": 1.5},
                                   "psi": {"warning": 5.0}}},
    {"name": "country", "type": "categorical", "rules": {"allowed": ["US", "DE", "FR"], "max_new_category_ratio": 0.1}},
    {"name": "flag"},
]}]}).model("fraud")


def rows(n: int, seed: int, *, amount_shift: float = 0.0, age_shift: float = 0.0, brazil: float = 0.0,
         missing: float = 0.0, flag: float | None = None) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(4 + amount_shift, 0.5, n)
    amount[rng.random(n) < missing] = np.nan
    country = rng.choice(["US", "DE", "FR"], n).astype(object)
    country[rng.random(n) < brazil] = "BR"
    return {"amount": amount, "age": rng.normal(40 + age_shift, 10, n), "country": list(country),
            "flag": np.full(n, flag) if flag is not None else rng.integers(0, 2, n).astype(float)}


def profile(**kwargs) -> Profile:
    return Profile.from_data(rows(**kwargs), model="fraud", spec=SPEC)


def test_no_drift_is_ok() -> None:
    report = compare(profile(n=5000, seed=1), profile(n=5000, seed=2), SPEC)
    assert report.severity == "ok" and report.drifted == []
    assert set(report.columns["amount"].statistics) == {"ks", "d1", "psi", "js", "hellinger", "wasserstein"}
    assert set(report.columns["country"].statistics) == {"linf", "d1", "psi", "js", "hellinger", "chi2", "cramers_v"}


def test_drift_severities_follow_the_spec_thresholds() -> None:
    report = compare(profile(n=5000, seed=1), profile(n=5000, seed=2, amount_shift=0.5, age_shift=5), SPEC)
    amount, age = report.columns["amount"], report.columns["age"]
    assert amount.severity == "critical" and amount.statistics["ks"].value > 0.2
    assert 0.1 < age.statistics["ks"].value < 0.5 and age.severity == "ok"  # its own thresholds: 0.5 / 0.9
    assert report.columns["country"].severity == "ok" and report.severity == "critical"
    assert report.drifted == ["amount"] and report.drift_detected and report.warning_detected


def test_quality_rules() -> None:
    current = profile(n=4000, seed=3, brazil=0.3, missing=0.2, flag=1.0)
    current.update({"amount": [-5.0, 5000.0, "oops"], "age": [1, 2, 3], "country": ["US"] * 3, "flag": [1, 1, 1]})
    report = compare(profile(n=4000, seed=1), current, SPEC)
    amount, country, flag = (report.columns[name] for name in ("amount", "country", "flag"))
    assert amount.rules["missing"].violated and amount.rules["missing"].value == pytest.approx(0.2, abs=0.03)
    assert amount.rules["range"].violated and amount.rules["range"].value == pytest.approx(2 / 3202, rel=0.2)
    assert amount.rules["invalid"].violated and amount.quality["invalid_ratio"] == pytest.approx(1 / 4003)
    assert country.rules["allowed"].violated and country.rules["new_category"].violated
    assert country.quality["new_category_ratio"] == pytest.approx(0.3, abs=0.03)
    assert flag.rules["constant"].violated and flag.severity != "ok"
    assert not report.columns["age"].rules["constant"].violated
    baseline = compare(profile(n=4000, seed=1), profile(n=4000, seed=2), SPEC)
    assert not any(rule.violated for column in baseline.columns.values() for rule in column.rules.values())


def test_constant_reference_does_not_flag_constant_current() -> None:
    report = compare(profile(n=500, seed=1, flag=0.0), profile(n=500, seed=2, flag=0.0), SPEC)
    assert not report.columns["flag"].rules["constant"].violated


def test_window_too_small_exports_samples_not_drift() -> None:
    report = compare(profile(n=5000, seed=1), profile(n=20, seed=2, amount_shift=0.5), SPEC)
    amount = report.columns["amount"]
    assert amount.samples == 20 and amount.statistics["ks"].value is None and amount.severity == "unknown"


def test_volume_rule() -> None:
    volume = Volume(min=10, max=100, per=60)
    assert not check_volume(300, 300, volume).violated  # 60 per minute
    low = check_volume(10, 300, volume)
    assert low.violated and low.value == 2 and low.limit == 10
    assert check_volume(10_000, 60, volume).limit == 100
    assert check_volume(5, 60, Volume()) is None
    spec = parse_spec({"models": [{"name": "fraud", "volume": {"min": 100}}]}).model("fraud")
    report = compare(profile(n=500, seed=1), profile(n=50, seed=2), spec, window_seconds=60)
    assert report.rules["volume"].violated and report.severity == "warning"


def test_columns_only_in_one_profile() -> None:
    reference = Profile.from_data({"a": np.arange(500.0)}, model="m")
    current = Profile.from_data({"a": np.arange(500.0), "b": np.arange(500.0)}, model="m")
    report = compare(reference, current)
    assert report.columns["b"].statistics["ks"].reason == "no reference for this column"
    assert report.columns["a"].statistics["ks"].value == pytest.approx(0.0, abs=0.03)


def test_report_json_and_table() -> None:
    report = compare(profile(n=3000, seed=1), profile(n=3000, seed=2, amount_shift=1), SPEC)
    data = json.loads(json.dumps(report.to_dict()))
    amount = data["columns"]["amount"]
    assert set(amount["ks"]) == {"value", "bound", "noise"} and amount["severity"] == "critical"
    assert amount["ks"]["bound"] < amount["ks"]["noise"] < 0.2  # the null quantile plus the sketch bound
    assert amount["rules"]["range"] == {"value": pytest.approx(0.0, abs=0.01), "limit": 0.0,
                                        "violated": amount["rules"]["range"]["violated"]}
    table = report.table()
    assert table.splitlines()[0].split() == ["column", "signal", "n", "ks", "d1", "psi", "linf", "rules", "severity"]
    assert "critical" in table and "(noise 0." in table


def test_quality_ratios_of_an_empty_column() -> None:
    empty = Profile.from_data({"a": []}, model="m").columns["a"]
    assert quality_ratios(empty) == {"missing_ratio": None, "invalid_ratio": None, "out_of_range_ratio": None}


def test_streaming_detector_windows() -> None:
    reference = profile(n=5000, seed=1)
    detector = Detector(reference, SPEC, window=3)
    assert detector.report is None and not detector.drift_detected
    for seed in range(3):
        assert detector.update(profile(n=500, seed=10 + seed)) is detector
    assert detector.severity == "ok"
    for seed in range(3):
        detector.update(profile(n=500, seed=20 + seed, amount_shift=1))
    assert detector.drift_detected and detector.report.drifted == ["amount"]
    for seed in range(3):
        detector.update(profile(n=500, seed=30 + seed))
    assert not detector.warning_detected  # the shifted profiles left the 3-profile window
    cumulative = Detector(reference, SPEC)
    for seed in range(4):
        cumulative.update(profile(n=500, seed=40 + seed))
    assert cumulative.report.rows == 2000
    with pytest.raises(ProfileError):
        cumulative.update(Profile("other"))
    with pytest.raises(ValueError):
        Detector(reference, window=0)


def test_range_and_allowed_rules_without_producer_counts() -> None:
    """A producer that ran without the spec counted no range or allowed-value violations: the sketches tell."""
    no_spec_reference = Profile.from_data(rows(n=3000, seed=1), model="fraud")
    drifted = rows(n=3000, seed=2, brazil=0.25)
    drifted["amount"][:30] = 5000.0  # 1% above max 1000
    report = compare(no_spec_reference, Profile.from_data(drifted, model="fraud"), SPEC)
    amount, country = report.columns["amount"], report.columns["country"]
    assert amount.rules["range"].violated and amount.quality["out_of_range_ratio"] == pytest.approx(0.01, abs=0.006)
    assert country.rules["allowed"].violated and country.quality["not_allowed_ratio"] == pytest.approx(0.25, abs=0.03)
    clean = compare(no_spec_reference, Profile.from_data(rows(n=3000, seed=3), model="fraud"), SPEC)
    assert clean.columns["amount"].quality["out_of_range_ratio"] == 0.0
    assert not clean.columns["amount"].rules["range"].violated and not clean.columns["country"].rules["allowed"].violated


def test_html_report_shows_each_value_with_its_noise(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from servewatch.detectors.html_report import write_report

    reference, current = profile(n=3000, seed=1), profile(n=3000, seed=2, amount_shift=1)
    report = compare(reference, current, SPEC)
    pictured = write_report([report], {"input": reference}, {"input": current}, str(tmp_path / "r.html"))
    page = (tmp_path / "r.html").read_text()
    ks_value = report.columns["amount"].statistics["ks"]
    assert pictured == ["input/amount"] and f"ks {ks_value.value:.3f} (noise {ks_value.noise:.3f})" in page
