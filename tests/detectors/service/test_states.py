"""Verdict states: references complete or absent, windows without enough traffic unknown (not ok), and the
gauges that say so (``servewatch_window_state``, ``servewatch_verdict_unknown``, no severity while unknown)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from servewatch.detectors.service import Store
from servewatch.detectors.service.evaluator import Evaluator, WindowResult, format_table
from servewatch.detectors.service.gauges import result_families

from servewatch.profile import Profile
from servewatch.spec import Spec, parse_spec
from servewatch.wire import encode_profiles

T0 = 1_700_002_800.0


def _feed(store: Store, profile: Callable[..., Profile], model: str, seconds: range, *, shift: float = 0.0,
          rows: int = 200) -> None:
    for second in seconds:
        store.write([profile(model, end=T0 + second, rows=rows, shift=shift, seed=second, sequence=second)],
                    now=T0 + second + 0.2)


def _spec(**model: object) -> Spec:
    base = {"name": "fraud", "features": [{"name": "amount"}, {"name": "age"}], "windows": ["5s"],
            "min_samples": 50}
    return parse_spec({"models": [{**base, **model}]})


def _samples(results: dict[tuple[str, str, str], WindowResult], name: str, **labels: str) -> list[tuple[dict, float]]:
    return [(dict(sample.labels), sample.value) for family in result_families(results.values())
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())]


def _value(results: dict[tuple[str, str, str], WindowResult], name: str, **labels: str) -> list[float]:
    return [value for _, value in _samples(results, name, **labels)]


def test_an_offset_reference_waits_until_its_past_window_is_wholly_held(store_factory: Callable[..., Store],
                                                                        profile: Callable[..., Profile]) -> None:
    store = store_factory(bucket=1.0, retention=3600.0)
    evaluator = Evaluator(_spec(reference={"offset": "20s"}), store)
    _feed(store, profile, "fraud", range(1, 23))
    # at T0+22 the window 20 s back is (T0-3, T0+2]: the detector holds two of its five seconds
    early = evaluator.evaluate(T0 + 22)
    waiting = early[("fraud", "input", "5s")]
    assert waiting.report is None and "not complete" in (waiting.reason or ""), waiting.reason
    assert waiting.severity == "unknown" and waiting.unknown == {"amount": "reference_not_ready",
                                                                 "age": "reference_not_ready"}
    assert _value(early, "servewatch_detector_reference_ready") == [0.0]
    assert _value(early, "servewatch_drift_ks") == [] and _value(early, "servewatch_drift_severity") == []
    assert _value(early, "servewatch_verdict_unknown", feature="amount", reason="reference_not_ready") == [1.0]
    assert _value(early, "servewatch_window_state", state="unknown") == [1.0]
    assert "not complete" in format_table(early.values())
    assert waiting.to_dict()["state"] == "unknown" and "not complete" in waiting.to_dict()["reason"]
    _feed(store, profile, "fraud", range(23, 27))
    ready = evaluator.evaluate(T0 + 26)[("fraud", "input", "5s")]  # (T0+1, T0+6]: wholly held
    assert ready.report is not None and ready.severity == "ok" and not ready.unknown
    assert ready.report.columns["amount"].statistics["ks"].value < 0.1
    _feed(store, profile, "fraud", range(27, 41), shift=2.0)
    drifted = evaluator.evaluate(T0 + 41)
    assert drifted[("fraud", "input", "5s")].verdict("amount") == "critical"
    assert drifted[("fraud", "input", "5s")].verdict("age") == "ok"
    assert _value(drifted, "servewatch_drift_severity", feature="amount") == [2.0]
    assert _value(drifted, "servewatch_window_state", state="critical") == [1.0]
    assert _value(drifted, "servewatch_detector_reference_ready") == [1.0]
    # traffic stops: once the window 20 s back is empty too, no traffic is still the reason given
    silent = evaluator.evaluate(T0 + 70)[("fraud", "input", "5s")]
    assert silent.report is None and silent.unknown == {"amount": "no_traffic", "age": "no_traffic"}


def test_a_range_reference_older_than_the_first_data_is_never_partial(store_factory: Callable[..., Store],
                                                                     profile: Callable[..., Profile]) -> None:
    store = store_factory(bucket=1.0, retention=3600.0)
    spec = parse_spec({"models": [{"name": name, "features": [{"name": "amount"}, {"name": "age"}],
                                   "windows": ["5s"], "min_samples": 50,
                                   "reference": {"range": {"start": T0 + start, "end": T0 + 10}}}
                                  for name, start in (("early", -10.0), ("covered", 0.0))]})
    evaluator = Evaluator(spec, store)
    for model in ("early", "covered"):
        _feed(store, profile, model, range(1, 31))
    results = evaluator.evaluate(T0 + 31)
    early = results[("early", "input", "5s")]
    assert early.report is None and "before the detector's first data" in (early.reason or ""), early.reason
    assert early.unknown == {"amount": "reference_unavailable", "age": "reference_unavailable"}
    assert store.reference("early", "input", f"range:{T0 - 10.0!r}:{T0 + 10.0!r}") is None
    assert results[("covered", "input", "5s")].report is not None


def test_traffic_that_stops_is_unknown_not_ok(store_factory: Callable[..., Store],
                                              profile: Callable[..., Profile]) -> None:
    store = store_factory(bucket=1.0, retention=3600.0)
    spec = _spec(reference={"warmup": "5s"}, windows=["5s", "30s"],
                 features=[{"name": "amount", "rules": {"max_missing_ratio": 0.1}}, {"name": "age"}])
    evaluator = Evaluator(spec, store)
    _feed(store, profile, "fraud", range(1, 8))
    _feed(store, profile, "fraud", range(8, 21), shift=2.0)
    drifting = evaluator.evaluate(T0 + 21)
    assert _value(drifting, "servewatch_drift_severity", feature="amount", window="5s") == [2.0]
    # five seconds later the 5 s window holds nothing; the 30 s window still holds the drifted traffic
    stopped = evaluator.evaluate(T0 + 27)
    short, long = stopped[("fraud", "input", "5s")], stopped[("fraud", "input", "30s")]
    assert short.rows == 0 and short.severity == "unknown"
    assert short.unknown == {"amount": "no_traffic", "age": "no_traffic"}
    assert long.verdict("amount") == "critical" and not long.unknown
    assert _value(stopped, "servewatch_drift_severity", window="5s") == []
    assert _value(stopped, "servewatch_verdict_unknown", feature="amount", window="5s", reason="no_traffic") == [1.0]
    assert _value(stopped, "servewatch_window_rows", window="5s") == [0.0]
    assert _value(stopped, "servewatch_window_state", window="5s", state="unknown") == [1.0]
    assert _value(stopped, "servewatch_window_state", window="5s", state="ok") == [0.0]
    # a rule with nothing to measure is neither violated nor kept: no sample, where the 30 s window has one
    assert _value(stopped, "servewatch_quality_rule_violated", window="5s") == []
    assert _value(stopped, "servewatch_quality_rule_violated", window="30s", rule="missing") == [0.0]
    assert "unknown: 2 columns (no_traffic)" in format_table(stopped.values())
    # long after: every window is empty, and still reported as such (the gauges do not vanish)
    silent = evaluator.evaluate(T0 + 600)
    assert {key: result.severity for key, result in silent.items()} == {("fraud", "input", "5s"): "unknown",
                                                                       ("fraud", "input", "30s"): "unknown"}
    assert _value(silent, "servewatch_window_state", state="unknown") == [1.0, 1.0]
    assert json.loads(json.dumps(silent[("fraud", "input", "5s")].to_dict()))["unknown"]["amount"] == "no_traffic"
    # once the retention dropped its last bucket the series is gone, not silent: no results
    assert evaluator.evaluate(T0 + 3 * 3600) == {}


def test_a_thin_window_is_unknown_and_a_full_one_is_judged(store_factory: Callable[..., Store],
                                                            profile: Callable[..., Profile]) -> None:
    store = store_factory(bucket=1.0, retention=3600.0)
    evaluator = Evaluator(_spec(reference={"warmup": "5s"}), store)
    _feed(store, profile, "fraud", range(1, 12))
    _feed(store, profile, "fraud", range(12, 14), rows=10)  # 20 values in the 5 s window: fewer than 50
    results = evaluator.evaluate(T0 + 16.5)
    thin = results[("fraud", "input", "5s")]
    assert thin.report is not None and thin.unknown == {"amount": "too_few_values", "age": "too_few_values"}
    assert thin.severity == "unknown"
    assert _value(results, "servewatch_verdict_unknown", reason="too_few_values") == [1.0, 1.0]
    assert _value(results, "servewatch_drift_severity") == []


def test_a_reference_file_without_the_column_or_unreadable_is_unavailable(store_factory: Callable[..., Store],
                                                                          profile: Callable[..., Profile],
                                                                          tmp_path: Path) -> None:
    reference = tmp_path / "ref.pb"
    reference.write_bytes(encode_profiles([Profile.from_data({"amount": np.random.default_rng(1).normal(0, 1, 2000)},
                                                             model="fraud")]))
    store = store_factory(bucket=1.0, retention=3600.0)
    evaluator = Evaluator(_spec(reference={"file": str(reference)}), store)
    _feed(store, profile, "fraud", range(1, 6))
    result = evaluator.evaluate(T0 + 6)[("fraud", "input", "5s")]
    assert result.verdict("amount") == "ok" and result.unknown == {"age": "reference_unavailable"}
    reference.write_bytes(b"not a profile")
    broken = evaluator.evaluate(T0 + 6.5)[("fraud", "input", "5s")]
    assert broken.report is None and broken.unknown == {"amount": "reference_unavailable",
                                                        "age": "reference_unavailable"}
    assert "cannot be used" in (broken.reason or "")
