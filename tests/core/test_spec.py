"""The spec: defaults everywhere, every problem reported with file and path."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from servewatch import Profile, SpecError, load_spec
from servewatch.spec import DEFAULT_THRESHOLDS, Spec, Threshold, Window, parse_spec

DESIGN_EXAMPLE = """
models:
  - name: fraud                 # the framework's model / deployment name
    features:
      - {name: amount,  type: numeric,     source: {index: 0}, rules: {min: 0, max: 1e5, max_missing_ratio: 0.01}}
      - {name: country, type: categorical, source: {key: country}, rules: {allowed: [US, DE, FR]}}
    predictions:
      - {name: score, type: numeric, source: {index: 1}}
    reference: refs/fraud.pb      # a profile built from training data (servewatch reference ...)
    windows: [5m, 1h, 1d]
    thresholds: {ks: {warning: 0.1, critical: 0.2}, d1: {warning: 0.2, critical: 0.4}}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "servewatch.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_design_example_loads_with_defaults(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, DESIGN_EXAMPLE))
    fraud = spec.model("fraud")
    amount, country = fraud.features
    assert (amount.name, amount.type, amount.source.index) == ("amount", "numeric", 0)
    assert amount.rules.max == 1e5 and amount.rules.min == 0 and amount.rules.max_missing_ratio == 0.01
    assert country.source.key == "country" and country.rules.allowed == frozenset({"US", "DE", "FR"})
    assert fraud.predictions[0].name == "score"
    assert fraud.reference.kind == "file" and fraud.reference.path == str(tmp_path / "refs" / "fraud.pb")
    assert fraud.windows == (Window("5m", 300), Window("1h", 3600), Window("1d", 86400))
    assert fraud.thresholds["ks"] == Threshold(0.1, 0.2)
    assert fraud.thresholds["psi"] == DEFAULT_THRESHOLDS["psi"]  # defaults kept beside the overrides
    assert fraud.min_samples == 100 and fraud.k == 200


def test_empty_spec_and_unknown_model_get_defaults() -> None:
    spec = Spec()
    other = spec.model("anything")
    assert other.name == "anything" and other.features == () and other.reference.kind == "warmup"
    assert other.reference.warmup == 3600 and not spec.has_model("anything")
    assert parse_spec(None).models == ()


def test_defaults_block_and_column_threshold_override(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, """
        detector: {bucket: 1s, interval: 2s, retention: 2h}
        defaults: {windows: [10s, 1m], min_samples: 20, thresholds: {ks: {warning: 0.05}}}
        models:
          - name: a
            features: [{name: x, thresholds: {ks: {warning: 0.3, critical: 0.5}}}, {name: y}]
            reference: {offset: 7d}
          - name: b
            reference: {range: {start: "2026-01-01T00:00:00Z", end: 1767229200}}
            volume: {min: 1, max: 1000, per: 1s}
        """))
    assert (spec.detector.bucket, spec.detector.interval, spec.detector.retention) == (1, 2, 7200)
    a, b = spec.model("a"), spec.model("b")
    assert [w.name for w in a.windows] == ["10s", "1m"] and a.min_samples == 20
    assert a.thresholds["ks"] == Threshold(0.05, None)
    assert a.thresholds_for(a.features[0])["ks"] == Threshold(0.3, 0.5)
    assert a.thresholds_for(a.features[1])["ks"] == Threshold(0.05, None)
    assert a.reference.kind == "offset" and a.reference.offset == 7 * 86400
    assert b.reference.kind == "range" and b.reference.start == 1767225600.0 and b.reference.end == 1767229200.0
    assert b.volume.per == 1 and b.volume.max == 1000
    assert spec.model("zzz").windows == a.windows  # unknown models inherit the defaults block


@pytest.mark.parametrize("text, expected", [
    ("models: [{name: m, features: [{name: a}, {name: b}, {name: c, rules: {max: lots}}]}]",
     "models[0].features[2].rules.max: expected a number, got 'lots'"),
    ("models: [{name: m, features: [{name: a, rules: {min: 5, max: 1}}]}]",
     "models[0].features[0].rules.max: max (1) is below min (5)"),
    ("models: [{name: m, features: [{name: a, type: text}]}]",
     "models[0].features[0].type: must be one of numeric, categorical, identifier, timestamp, got 'text'"),
    ("models: [{name: m, windows: [5 minutes]}]", "models[0].windows[0]: expected a duration"),
    ("models: [{name: m, tresholds: {}}]", "models[0].tresholds: unknown key"),
    ("models: [{name: m, thresholds: {ks: {warning: 0.3, critical: 0.1}}}]",
     "models[0].thresholds.ks.critical: critical (0.1) is below warning (0.3)"),
    ("models: [{name: m, thresholds: {pvalue: {warning: 0.05}}}]", "models[0].thresholds.pvalue: unknown key"),
    ("models: [{features: []}]", "models[0].name: missing"),
    ("models: [{name: m}, {name: m}]", "models[1].name: model 'm' is listed twice"),
    ("models: [{name: m, reference: {file: a.pb, offset: 1d}}]", "models[0].reference: give exactly one of"),
    ("models: [{name: m, features: [{name: c, type: categorical, rules: {allowed: []}}]}]",
     "models[0].features[0].rules.allowed: expected a non-empty list"),
    ("models: [{name: m, features: [{name: a, rules: {max_missing_ratio: 1.5}}]}]",
     "models[0].features[0].rules.max_missing_ratio: must be <= 1"),
    ("models: [{name: m, features: [{name: a, source: {index: -1}}]}]",
     "models[0].features[0].source.index: must be >= 0"),
    ("models: {name: m}", "models: expected a list of models"),
    ("- just\n- a list\n", "<top>: expected a mapping"),
    ("models: [{name: m, sketch: {k: 4}}]", "models[0].sketch.k: must be >= 8"),
])
def test_bad_spec_names_file_path_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert any(problem.startswith(f"{path}: ") and expected in problem for problem in caught.value.problems), \
        caught.value.problems


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "models: [{name: m, features: [{name: a, rules: {max: x}}, {type: bad}]}]")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert len(caught.value.problems) == 3


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"line \d+, column \d+: not valid YAML"):
        load_spec(write(tmp_path, "models:\n  - {name: [unclosed\n"))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")


def test_validate_command(tmp_path: Path) -> None:
    good = write(tmp_path, DESIGN_EXAMPLE)
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "fraud.pb").write_bytes(Profile.from_data([[1.0, 2.0]], model="fraud").to_bytes())
    run = subprocess.run([sys.executable, "-m", "servewatch.cli", "validate", str(good)], capture_output=True,
                         text=True)
    assert run.returncode == 0 and run.stdout.startswith("OK")
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [{name: m, features: [{name: a, rules: {max: x}}, {type: bad}]}]")
    run = subprocess.run([sys.executable, "-m", "servewatch.cli", "validate", str(bad)], capture_output=True,
                         text=True)
    assert run.returncode == 1
    assert f"{bad}: models[0].features[0].rules.max: expected a number" in run.stdout
    assert len(run.stdout.strip().splitlines()) == 3
