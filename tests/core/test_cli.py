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


BAD_FILES: dict[str, bytes] = {
    "corrupt.pb": b"\x0a\xff\xff garbage",
    "latin1.yaml": "models:\n  - name: caf\xe9\n".encode("latin-1"),
    "latin1.csv": "city,temp\nK\xf6ln,3.5\n".encode("latin-1"),
    "empty.yaml": b"",
    "noname.yaml": b'models: [{name: ""}]\n',
    "missing-reference.yaml": b"models:\n  - name: m\n    reference: missing.pb\n",
    "two.yaml": b"models: [{name: a}, {name: b}]\n",
    "ab.yaml": b"models:\n  - name: m\n    features: [{name: a}, {name: b}]\n",
    "keyed.yaml": b"models:\n  - name: m\n    features: [{name: a, source: {key: a}}]\n",
    "header-only.csv": b"a,b\n",
    "other-columns.csv": b"x;y\n1;2\n3;4\n",
    "blank.csv": b"a,b\n,\n,\n,\n",
    "text.csv": b"a,b\nlow,1\nhigh,2\n",
    "numbers.csv": b"a,b\n1,2\n3,4\n",
    "not-parquet.parquet": b"PAR1 this is not a parquet file",
}


def _object_npy(path: Path) -> None:
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    for name, data in BAD_FILES.items():
        (root / name).write_bytes(data)
    _object_npy(root / "objects.npy")
    np.save(root / "plain.npy", np.random.default_rng(0).random((100, 2)))
    return root


# (arguments, exit status, what the one line on stderr says); {d} is the folder of BAD_FILES, {w} of `workdir`
BAD_INPUT = [
    (("validate", "/bin/ls"), 1, "1 problem"),
    (("validate", "{d}/latin1.yaml"), 1, "1 problem"),
    (("validate", "{d}/empty.yaml"), 1, "1 problem"),
    (("validate", "{d}/noname.yaml"), 1, "1 problem"),
    (("validate", "{d}/missing-reference.yaml"), 1, "1 problem"),
    (("compare", "{d}/latin1.csv", "{w}/same.csv"), 2, "latin1.csv: line 2: not UTF-8 text (byte 0xf6)"),
    (("compare", "{d}/corrupt.pb", "{w}/same.csv"), 2, "corrupt.pb: not a profile file"),
    (("compare", "{d}/missing.pb", "{w}/same.csv"), 2, "missing.pb: No such file or directory"),
    (("compare", "{w}/train.csv", "{d}/header-only.csv"), 2, "header-only.csv: no data rows (only a header)"),
    (("compare", "{w}/train.csv", "{w}/same.csv", "--spec", "{w}/spec.yaml", "--model", "nosuch"), 2,
     "spec.yaml: lists no model 'nosuch' (it lists: weather)"),
    (("compare", "{w}/train.csv", "{w}/same.csv", "--spec", "{d}/two.yaml"), 2, "say which with --model"),
    (("reference", "--model", "m", "{d}/missing.csv", "-o", "{d}/x.pb"), 2, "missing.csv: No such file"),
    (("reference", "--model", "m", "{d}/objects.npy", "-o", "{d}/x.pb"), 2, "objects.npy: an array of Python objects"),
    (("reference", "--model", "m", "{d}/header-only.csv", "-o", "{d}/x.pb"), 2, "no data rows (only a header)"),
    (("reference", "--spec", "{d}/ab.yaml", "--model", "nosuch", "{d}/numbers.csv", "-o", "{d}/x.pb"), 2,
     "lists no model 'nosuch'"),
    (("reference", "--spec", "{d}/ab.yaml", "--model", "m", "{d}/other-columns.csv", "-o", "{d}/x.pb"), 2,
     "other-columns.csv: no column 'a' (a feature of the spec; 1 more missing); the file has: x, y"),
    (("reference", "--spec", "{d}/keyed.yaml", "--model", "m", "{d}/plain.npy", "-o", "{d}/x.pb"), 2,
     "plain.npy: a .npy array has no column names, but feature 'a' is found by source key/path"),
    (("reference", "--spec", "{d}/ab.yaml", "--model", "m", "{d}/blank.csv", "-o", "{d}/x.pb"), 2,
     "blank.csv: every column is empty in all 3 rows"),
    (("reference", "--spec", "{d}/ab.yaml", "--model", "m", "{d}/text.csv", "-o", "{d}/x.pb"), 2,
     "text.csv: column 'a' should hold numbers, but none of its 2 value(s) is one"),
    (("reference", "--model", "m", "{d}/numbers.csv"), 2, "the following arguments are required: -o/--output"),
    (("report", "{w}/train.csv", "{w}/same.csv", "-o", "{d}/r.png"), 2, "-o {d}/r.png: the report is an HTML page"),
    (("dashboards", "--spec", "{d}/ab.yaml", "-o", "{d}/dash", "--grafana-url", "not-a-url"), 2,
     "argument --grafana-url: 'not-a-url' is not an http(s) URL"),
    (("alerts", "--spec", "{d}/ab.yaml", "-o", "{d}/rules.yml", "--pager-url", "pager"), 2,
     "argument --pager-url: 'pager' is not an http(s) URL"),
    (("triton-bridge", "--url", "notaurl"), 2, "argument --url: 'notaurl' is not an http(s) URL"),
    (("compare", "--format", "xml", "a", "b"), 2, "argument --format: invalid choice: 'xml'"),
]
PARQUET_INPUT = [
    (("compare", "{w}/train.csv", "{d}/not-parquet.parquet"), 2, "not-parquet.parquet: not a Parquet file"),
]


@pytest.mark.parametrize(("args", "status", "says"), BAD_INPUT + PARQUET_INPUT,
                         ids=[" ".join(args[:2]).replace("{d}/", "").replace("{w}/", "") + f"-{i}"
                              for i, (args, _, _) in enumerate(BAD_INPUT + PARQUET_INPUT)])
def test_bad_input_is_one_line_on_stderr(workdir: Path, bad: Path, args: tuple[str, ...], status: int,
                                         says: str) -> None:
    if (args, status, says) in PARQUET_INPUT:
        pytest.importorskip("pyarrow")
    run = servewatch(*(arg.format(d=bad, w=workdir) for arg in args))
    assert run.returncode == status, (run.stdout, run.stderr)
    assert len(run.stderr.splitlines()) == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.startswith(f"servewatch {args[0]}: ") and says.format(d=bad, w=workdir) in run.stderr, \
        run.stderr


VALIDATE_PROBLEMS = [
    ("/bin/ls", "/bin/ls: not UTF-8 text (byte 0x"),
    ("latin1.yaml", "latin1.yaml: not UTF-8 text (byte 0xe9"),
    ("empty.yaml", "empty.yaml: the file is empty"),
    ("noname.yaml", "noname.yaml: models[0].name: empty; every model needs the name the server reports"),
    ("missing-reference.yaml", "missing-reference.yaml: models[0].reference: "),
]


@pytest.mark.parametrize(("spec", "problem"), VALIDATE_PROBLEMS, ids=[spec for spec, _ in VALIDATE_PROBLEMS])
def test_validate_lists_the_problem(bad: Path, spec: str, problem: str) -> None:
    run = servewatch("validate", spec if spec.startswith("/") else str(bad / spec))
    assert run.returncode == 1 and run.stdout.strip().splitlines() == [run.stdout.strip()], run.stdout
    assert problem in run.stdout and "listed twice" not in run.stdout


def test_validate_checks_that_the_reference_holds_the_model(tmp_path: Path) -> None:
    from servewatch import Profile

    (tmp_path / "ref.pb").write_bytes(Profile.from_data([[1.0]], model="other").to_bytes())
    (tmp_path / "spec.yaml").write_text("models:\n  - name: m\n    reference: ref.pb\n")
    run = servewatch("validate", str(tmp_path / "spec.yaml"))
    assert run.returncode == 1 and "holds no profile of model 'm' (it holds: other)" in run.stdout
    (tmp_path / "ref.pb").write_bytes(Profile.from_data([[1.0]], model="m").to_bytes())
    assert servewatch("validate", str(tmp_path / "spec.yaml")).returncode == 0


def test_a_closed_pipe_ends_quietly(workdir: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "servewatch.cli", "compare", str(workdir / "train.csv"),
                                str(workdir / "drifted.csv")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # type: ignore[union-attr]  # like `| head` that has read all it wanted
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 141 and stderr == b"", stderr


def test_unexpected_errors_are_one_line_too(workdir: Path, tmp_path: Path) -> None:
    directory = tmp_path / "a-directory.csv"
    directory.mkdir()
    run = servewatch("compare", str(directory), str(workdir / "same.csv"))
    assert run.returncode == 2 and len(run.stderr.splitlines()) == 1 and "Traceback" not in run.stderr


def test_version() -> None:
    import servewatch as package

    run = servewatch("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"servewatch {package.__version__}"
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
