"""Windows against references (warmup, file, range, offset), results reused when nothing changed, the gauges."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from servewatch.detectors.service import Store
from servewatch.detectors.service.evaluator import Evaluator, format_table
from servewatch.detectors.service.gauges import Activity, result_families
from servewatch.detectors.service.prometheus import Exposition, Snapshot

from servewatch.profile import Profile
from servewatch.spec import Spec, parse_spec
from servewatch.wire import encode_profiles

T0 = 1_700_002_800.0


def _feed(store: Store, profile: Callable[..., Profile], model: str, seconds: range, *, shift: float = 0.0,
          rows: int = 200, spec: Spec | None = None) -> None:
    rules = spec.model(model) if spec is not None else None
    for second in seconds:
        store.write([profile(model, end=T0 + second, rows=rows, shift=shift, seed=second, sequence=second, spec=rules),
                     profile(model, "prediction", end=T0 + second, rows=rows, seed=second, sequence=second)],
                    now=T0 + second + 0.2)


def _spec(models: list[dict[str, object]]) -> Spec:
    base = {"features": [{"name": "amount"}, {"name": "age"}, {"name": "country", "type": "categorical"}],
            "predictions": [{"name": "score"}], "windows": ["5s", "30s"], "min_samples": 50}
    return parse_spec({"models": [{**base, **model} for model in models]})


def test_warmup_reference_then_drift_on_the_shifted_feature_only(store_factory: Callable[..., Store],
                                                                 profile: Callable[..., Profile]) -> None:
    store = store_factory(bucket=1.0, retention=3600.0)
    spec = _spec([{"name": "fraud", "reference": {"warmup": "10s"}}])
    evaluator = Evaluator(spec, store)
    _feed(store, profile, "fraud", range(1, 6))
    early = evaluator.evaluate(T0 + 6)
    waiting = early[("fraud", "input", "5s")]
    assert waiting.report is None and "ready in" in (waiting.reason or "")
    assert waiting.samples == {"amount": 800, "age": 800, "country": 800}  # the buckets overlapping (T0+1, T0+6]
    _feed(store, profile, "fraud", range(6, 13))
    _feed(store, profile, "fraud", range(13, 41), shift=1.0)
    results = evaluator.evaluate(T0 + 41)
    report = results[("fraud", "input", "5s")].report
    assert report is not None
    assert report.columns["amount"].statistics["ks"].value > 0.3
    assert report.columns["age"].statistics["ks"].value < 0.1
    assert report.columns["amount"].severity == "critical" and report.columns["age"].severity == "ok"
    assert results[("fraud", "prediction", "30s")].report.severity == "ok"  # type: ignore[union-attr]
    assert "fraud" in format_table(results.values()) and "amount" in format_table(results.values())
    store.close()
    reopened = store_factory(bucket=1.0, retention=3600.0)
    assert reopened.reference("fraud", "input", "warmup:10.0") is not None  # kept across restarts


def test_unchanged_windows_are_not_compared_again(store_factory: Callable[..., Store],
                                                  profile: Callable[..., Profile]) -> None:
    store = store_factory(bucket=1.0, retention=3600.0)
    evaluator = Evaluator(_spec([{"name": "fraud", "reference": {"warmup": "3s"}}]), store)
    _feed(store, profile, "fraud", range(1, 20))
    first = evaluator.evaluate(T0 + 30)
    compared = evaluator.compared
    again = evaluator.evaluate(T0 + 30)
    assert evaluator.compared == compared and again == first
    _feed(store, profile, "fraud", range(30, 31))
    evaluator.evaluate(T0 + 30.5)
    assert evaluator.compared == compared + 4  # two signals x two windows saw the new bucket


def test_file_range_and_offset_references(store_factory: Callable[..., Store], profile: Callable[..., Profile],
                                          tmp_path: Path) -> None:
    reference_file = tmp_path / "fraud.pb"
    reference_file.write_bytes(encode_profiles([profile(end=T0, rows=2000, seed=99),
                                                profile(signal="prediction", end=T0, rows=2000, seed=98)]))
    store = store_factory(bucket=1.0, retention=3600.0)
    spec = _spec([{"name": "from_file", "reference": {"file": str(reference_file)}},
                  {"name": "pinned", "reference": {"range": {"start": T0, "end": T0 + 10}}},
                  {"name": "seasonal", "reference": {"offset": "20s"}, "windows": ["5s"]}])
    evaluator = Evaluator(spec, store)
    for model in ("from_file", "pinned", "seasonal"):
        _feed(store, profile, model, range(1, 21))
        _feed(store, profile, model, range(21, 41), shift=2.0)
    results = evaluator.evaluate(T0 + 41)
    for model in ("from_file", "pinned", "seasonal"):
        result = results[(model, "input", "5s")]
        assert result.report is not None, (model, result.reason)
        assert result.report.columns["amount"].statistics["ks"].value > 0.5, model
    assert results[("from_file", "input", "5s")].reference == f"file {reference_file}"
    early = evaluator.evaluate(T0 + 20)   # the window 20s back, (T0-5, T0], is before any data
    assert early[("seasonal", "input", "5s")].report is None
    reference_file.write_bytes(b"not a profile")
    broken = evaluator.evaluate(T0 + 42)[("from_file", "input", "5s")]
    assert broken.report is None and "cannot be used" in (broken.reason or "")


def test_gauges_carry_the_contract_names_and_no_drift_below_min_samples(store_factory: Callable[..., Store],
                                                                         profile: Callable[..., Profile],
                                                                         tmp_path: Path) -> None:
    reference_file = tmp_path / "ref.pb"
    reference_file.write_bytes(encode_profiles([profile("tiny", end=T0, rows=1000),
                                                profile("big", end=T0, rows=1000)]))
    spec = _spec([{"name": "tiny", "reference": {"file": str(reference_file)}, "min_samples": 100},
                  {"name": "big", "reference": {"file": str(reference_file)},
                   "features": [{"name": "amount", "rules": {"min": 0}}, {"name": "country", "type": "categorical",
                                                                          "rules": {"allowed": ["US", "DE"]}}],
                   "volume": {"min": 100, "per": "1s"}}])
    store = store_factory(bucket=1.0, retention=3600.0)
    _feed(store, profile, "tiny", range(1, 4), rows=10)
    _feed(store, profile, "big", range(1, 4), rows=300, spec=spec)
    results = Evaluator(spec, store).evaluate(T0 + 4)
    exposition = Exposition()
    exposition.register(Snapshot(result_families(results.values())))
    activity = Activity()
    activity.profiles(accepted=3, model="big", at=T0)
    exposition.register(activity)
    body, content_type = exposition.render()
    assert content_type.startswith("text/plain")
    families = {family.name: family for family in text_string_to_metric_families(body.decode())}
    for name in ("servewatch_window_samples", "servewatch_drift_ks", "servewatch_drift_ks_bound",
                 "servewatch_drift_d1", "servewatch_drift_psi", "servewatch_drift_js", "servewatch_drift_hellinger",
                 "servewatch_drift_wasserstein", "servewatch_drift_linf", "servewatch_drift_chi2",
                 "servewatch_drift_cramers_v", "servewatch_drift_severity", "servewatch_quality_missing_ratio",
                 "servewatch_quality_invalid_ratio", "servewatch_quality_out_of_range_ratio",
                 "servewatch_quality_not_allowed_ratio", "servewatch_quality_new_category_ratio",
                 "servewatch_quality_rule_violated", "servewatch_detector_profiles_received",
                 "servewatch_detector_profiles_rejected", "servewatch_detector_last_profile_timestamp_seconds",
                 "servewatch_detector_evaluation_duration_seconds"):
        assert name in families, name

    def samples(name: str, **labels: str) -> list[float]:
        return [s.value for s in families[name].samples
                if all(s.labels.get(key) == value for key, value in labels.items())]

    assert samples("servewatch_window_samples", model="tiny", feature="amount", window="5s") == [30.0]
    assert samples("servewatch_drift_ks", model="tiny") == []           # 30 values < min_samples 100
    assert len(samples("servewatch_drift_ks", model="big", window="5s")) == 1
    assert samples("servewatch_quality_rule_violated", model="big", feature="amount", rule="range",
                   window="5s") == [1.0]
    assert samples("servewatch_quality_rule_violated", model="big", feature="country", rule="allowed",
                   window="5s") == [1.0]
    assert samples("servewatch_quality_rule_violated", model="big", feature="", rule="volume", window="30s") == [1.0]
    assert samples("servewatch_quality_rule_violated", model="big", feature="", rule="volume", window="5s") == [0.0]
    assert samples("servewatch_detector_profiles_received") == [3.0]   # the family; its sample is _total
    assert b"_created" not in body
    openmetrics, kind = exposition.render("application/openmetrics-text; version=1.0.0")
    assert kind.startswith("application/openmetrics-text") and openmetrics.endswith(b"# EOF\n")
