"""The servewatch command on the bundled real dataset: reference, compare (table, JSON, --fail-on), bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parents[2] / "examples" / "data" / "seattle-weather.csv"
SPEC = """
models:
  - name: weather
    features:
      - {name: precipitation, rules: {min: 0, max: 200}}
      - {name: temp_max}
      - {name: temp_min}
      - {name: wind, rules: {max_missing_ratio: 0.01}}
    predictions:
      - {name: weather, type: categorical, rules: {allowed: [drizzle, rain, sun, snow, fog]}}
"""


def servewatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "servewatch.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    (root / "spec.yaml").write_text(SPEC)
    with open(DATA, newline="") as handle:
        rows = list(csv.DictReader(handle))
    header = list(rows[0])
    rng = np.random.default_rng(0)
    order = rng.permutation(len(rows))
    train = [rows[i] for i in order[: len(rows) // 2]]  # two random halves of the same four years: no drift
    later = [rows[i] for i in order[len(rows) // 2:]]
    drifted = []
    for row in later:
        row = dict(row)
        row["precipitation"] = f"{float(row['precipitation']) / 25.4:.3f}"  # a unit change upstream: mm -> inches
        if rng.random() < 0.2:
            row["wind"] = ""
        drifted.append(row)
    for name, part in (("train.csv", train), ("same.csv", later), ("drifted.csv", drifted)):
        with open(root / name, "w", newline="") as handle:
            writer = csv.DictWriter(handle, header)
            writer.writeheader()
            writer.writerows(part)
    return root


def test_reference_then_compare(workdir: Path) -> None:
    spec, ref = str(workdir / "spec.yaml"), str(workdir / "ref.pb")
    run = servewatch("reference", "--spec", spec, "--model", "weather", str(workdir / "train.csv"), "-o", ref)
    assert run.returncode == 0, run.stderr
    assert "weather/input: 730 rows, 4 columns" in run.stdout and "weather/prediction: 730 rows" in run.stdout

    same = servewatch("compare", ref, str(workdir / "same.csv"), "--spec", spec, "--format", "json")
    assert same.returncode == 0, same.stderr
    report = json.loads(same.stdout)
    assert report["model"] == "weather" and set(report["columns"]) == {"precipitation", "temp_max", "temp_min",
                                                                          "wind", "weather"}
    assert report["severity"] == "ok", report

    drifted = servewatch("compare", ref, str(workdir / "drifted.csv"), "--spec", spec, "--format", "json",
                         "--fail-on", "critical")
    assert drifted.returncode == 1
    columns = json.loads(drifted.stdout)["columns"]
    assert columns["precipitation"]["severity"] == "critical" and columns["precipitation"]["ks"]["value"] > 0.3
    assert columns["wind"]["rules"]["missing"]["violated"]
    assert columns["temp_max"]["severity"] == "ok" and columns["weather"]["severity"] == "ok"

    table = servewatch("compare", ref, str(workdir / "drifted.csv"), "--spec", spec)
    assert table.returncode == 0 and "weather / input" in table.stdout and "precipitation" in table.stdout


def test_compare_two_data_files_without_spec(workdir: Path) -> None:
    run = servewatch("compare", str(workdir / "train.csv"), str(workdir / "drifted.csv"), "--fail-on", "warning")
    assert run.returncode == 1 and "precipitation" in run.stdout


def test_bad_input_exits_2_with_one_line(workdir: Path) -> None:
    corrupt = workdir / "corrupt.pb"
    corrupt.write_bytes(b"\x0a\xff\xff garbage")
    for args in (("compare", str(corrupt), str(workdir / "same.csv")),
                 ("compare", str(workdir / "missing.pb"), str(workdir / "same.csv")),
                 ("reference", "--model", "m", str(workdir / "missing.csv"), "-o", str(workdir / "x.pb"))):
        run = servewatch(*args)
        assert run.returncode == 2, (args, run.stdout, run.stderr)
        assert len(run.stderr.strip().splitlines()) == 1 and run.stderr.startswith("servewatch ")
    assert servewatch().returncode == 2
    assert servewatch("compare", "--help").returncode == 0


def test_report_html_and_png(workdir: Path) -> None:
    pytest.importorskip("matplotlib")
    spec, ref = str(workdir / "spec.yaml"), str(workdir / "ref-report.pb")
    assert servewatch("reference", "--spec", spec, "--model", "weather", str(workdir / "train.csv"), "-o", ref).returncode == 0
    output = workdir / "report.html"
    run = servewatch("report", ref, str(workdir / "drifted.csv"), "--spec", spec, "-o", str(output), "--png")
    assert run.returncode == 0, run.stderr
    assert "input/precipitation" in run.stdout and "input/temp_max" not in run.stdout
    page = output.read_text()
    assert page.count("data:image/png;base64,") == len(run.stdout.split(": ", 2)[2].split(", "))
    assert "precipitation" in page and "critical" in page
    png = output.with_suffix(".png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    quiet = servewatch("report", ref, str(workdir / "same.csv"), "--spec", spec, "-o", str(workdir / "q.html"), "--png")
    assert quiet.returncode == 0 and "0 picture(s)" in quiet.stdout and "No column drifted" in (workdir / "q.html").read_text()
