"""Data files read in chunks: a chunked read profiles like a whole read; CSV dialects; Parquet and Arrow IPC
end to end through `servewatch reference` and `servewatch compare`, identifiers and timestamps left out."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from servewatch import Profile, ProfileError
from servewatch.datafiles import DataFile, is_data_file
from servewatch.dataset import read_profiles
from servewatch.progress import Progress
from servewatch.spec import parse_spec

ROWS = 5000


def servewatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "servewatch.cli", *args], capture_output=True, text=True, timeout=120)


def table(shift: float = 0.0, start: int = 0, seed: int = 0) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    return {
        "order_id": [f"o-{start + i:06d}" for i in range(ROWS)],
        "row": list(range(start, start + ROWS)),
        "at": [f"2026-0{1 + start // ROWS}-01T{(i // 60) % 24:02d}:{i % 60:02d}:00" for i in range(ROWS)],
        "amount": (rng.gamma(2.0, 30.0, ROWS) * (1 + shift)).round(3).tolist(),
        "country": rng.choice(["US", "DE", "FR"], ROWS).tolist(),
    }


def write_csv(path: Path, columns: dict[str, list], delimiter: str = ",", bom: bool = False) -> Path:
    lines = [delimiter.join(columns)] + [delimiter.join(str(v) for v in row) for row in zip(*columns.values())]
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def summary(profile: Profile) -> dict[str, tuple]:
    """Counts, and what of each sketch is exact."""
    out = {}
    for name, column in profile.columns.items():
        values = (column.sketch.n, column.sketch.get_min_value(), column.sketch.get_max_value()) \
            if column.is_numeric and column.valid else round(column.distinct.get_estimate())  # HLL: any order
        out[name] = (column.kind, column.count, column.missing, column.invalid, values)
    return out


def test_suffixes() -> None:
    assert all(is_data_file(f"x{suffix}") for suffix in (".csv", ".TSV", ".parquet", ".feather", ".arrow", ".npy"))
    assert not is_data_file("ref.pb") and not is_data_file("csv")


def test_a_chunked_csv_read_profiles_like_one_chunk(tmp_path: Path) -> None:
    columns = table()
    columns["amount"][4000] = "n/a"  # text in a column the first chunk found numeric: kept as text, invalid
    columns["amount"][10] = ""       # missing
    path = write_csv(tmp_path / "t.csv", columns)
    data = DataFile(str(path))
    assert data.names == list(columns)
    profiles = []
    for rows in (ROWS * 2, 333):
        profile = Profile("m")
        chunks = list(data.chunks(rows=rows))
        assert len(chunks) == -(-ROWS // rows)
        for chunk in chunks:
            assert chunk.pop("at").dtype.kind == "M"  # ISO times: a timestamp (read_profiles leaves it out)
            profile.update(chunk)
        profiles.append(profile)
    whole, pieces = profiles
    assert summary(pieces) == summary(whole)
    amount = whole.columns["amount"]
    assert (amount.kind, amount.count, amount.missing, amount.invalid) == ("numeric", ROWS, 1, 1)


@pytest.mark.parametrize(("delimiter", "bom"), [(",", False), (";", False), ("\t", False), ("|", True)])
def test_csv_dialects(tmp_path: Path, delimiter: str, bom: bool) -> None:
    path = write_csv(tmp_path / "t.csv", {"a": [1.5, 2.5], "b": ["x", "y"]}, delimiter, bom)
    spec = parse_spec({"models": [{"name": "m", "features": [{"name": "a"}, {"name": "b", "type": "categorical"}]}]})
    reading = read_profiles(str(path), spec=spec.model("m"))
    columns = reading.profiles[0].columns
    assert columns["a"].valid == 2 and columns["b"].categories() == {"x": 1.0, "y": 1.0}


def test_identifiers_and_timestamps_are_left_out_and_named(tmp_path: Path) -> None:
    reading = read_profiles(str(write_csv(tmp_path / "t.csv", table())))
    assert set(reading.left_out) == {"order_id", "row", "at"}
    assert reading.left_out["at"].startswith("timestamp") and reading.left_out["order_id"].startswith("identifier")
    assert set(reading.profiles[0].columns) == {"amount", "country"}
    few = read_profiles(str(write_csv(tmp_path / "few.csv", {"name": ["a", "b", "c"], "x": [1, 2, 3]})))
    assert few.left_out == {}  # three distinct names are categories, not identifiers
    spec = parse_spec({"models": [{"name": "m", "features": [
        {"name": "order_id", "type": "identifier"}, {"name": "amount"}]}]}).model("m")
    marked = read_profiles(str(tmp_path / "t.csv"), spec=spec)
    assert marked.left_out == {"order_id": "identifier (the spec says so)"}
    assert set(marked.profiles[0].columns) == {"amount"}


def test_parquet_and_arrow_ipc_are_read_in_record_batches(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.feather as feather
    import pyarrow.parquet as parquet

    columns = table()
    arrow = pa.table(columns)
    parquet.write_table(arrow, tmp_path / "t.parquet", row_group_size=1000)
    feather.write_feather(arrow, tmp_path / "t.arrow", chunksize=1500)
    with pa.OSFile(str(tmp_path / "t.ipc"), "wb") as sink, pa.ipc.new_stream(sink, arrow.schema) as writer:
        writer.write_table(arrow, max_chunksize=700)
    expected = summary(Profile.from_data(arrow, model="m"))
    for name in ("t.parquet", "t.arrow", "t.ipc"):
        data = DataFile(str(tmp_path / name))
        assert data.names == list(columns)
        seen = []
        profile = Profile("m")
        for chunk in data.chunks(rows=600, progress=seen.append):
            assert len(chunk["amount"]) <= 600
            profile.update(chunk)
        assert summary(profile) == expected, name
        assert seen == sorted(seen) and seen[-1] == pytest.approx(1.0, abs=0.01) and seen[0] < 0.5, (name, seen)


def test_npy_files_are_memory_mapped_in_blocks(tmp_path: Path) -> None:
    values = np.random.default_rng(1).random((1000, 3))
    np.save(tmp_path / "plain.npy", values)
    data = DataFile(str(tmp_path / "plain.npy"))
    assert data.names is None and data.width == 3
    blocks = list(data.chunks(rows=300))
    assert [len(block) for block in blocks] == [300, 300, 300, 100] and all(b.flags.writeable for b in blocks)
    structured = np.zeros(10, dtype=[("a", "f8"), ("b", "i4")])
    structured["a"] = np.arange(10)
    np.save(tmp_path / "named.npy", structured)
    reading = read_profiles(str(tmp_path / "named.npy"))
    assert set(reading.profiles[0].columns) == {"a", "b"} and reading.profiles[0].columns["a"].valid == 10


def test_the_files_a_profile_cannot_come_from(tmp_path: Path) -> None:
    spec = parse_spec({"models": [{"name": "m", "features": [{"name": "a"}, {"name": "b"}]}]}).model("m")
    for text, reason in (("a,b\n", "no data rows (only a header)"), ("", "empty file, expected a header row"),
                         ("a,b\nx,1\ny,2\n", "column 'a' should hold numbers"), ("b\n1\n", "no column 'a'"),
                         ("a,b\n,\n,\n", "every column is empty in all 2 rows"), ("a,b\n,1\n,2\n", "")):
        path = tmp_path / "t.csv"
        path.write_text(text)
        if not reason:  # one column empty in every row is a quality problem, not a bad file
            assert read_profiles(str(path), spec=spec).profiles[0].columns["a"].missing == 2
            continue
        with pytest.raises(ProfileError, match=re.escape(reason)):
            read_profiles(str(path), spec=spec)


def test_progress_is_quiet_on_short_reads_and_a_line_every_so_often_in_logs() -> None:
    stream = io.StringIO()
    with Progress("reading t.csv", stream=stream) as progress:
        progress(0.5)
    assert stream.getvalue() == ""
    with Progress("reading t.csv", stream=stream, every=0.0) as progress:
        progress(0.5)
        progress(1.0)
    assert stream.getvalue().splitlines() == ["reading t.csv:  50% (0 s)", "reading t.csv: 100% (0 s)"]


@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
def test_reference_and_compare_end_to_end(tmp_path: Path, suffix: str) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.feather as feather
    import pyarrow.parquet as parquet

    def write(name: str, columns: dict[str, list]) -> str:
        path = tmp_path / f"{name}{suffix}"
        times = (np.datetime64("2026-01-01T00:00:00") + np.arange(ROWS) * np.timedelta64(60, "s"))
        arrow = pa.table({**columns, "at": pa.array(times.astype("datetime64[s]"))})
        (parquet.write_table if suffix == ".parquet" else feather.write_feather)(arrow, path)
        return str(path)

    train = write("train", table(seed=1))
    same = write("same", table(start=ROWS, seed=2))
    shifted = write("shifted", table(shift=0.5, start=ROWS, seed=3))
    reference = servewatch("reference", "--model", "shop", train, "-o", str(tmp_path / "ref.pb"))
    assert reference.returncode == 0, reference.stderr
    assert "shop/input: 5000 rows, 2 columns" in reference.stdout and "order_id: identifier" in reference.stdout
    ok = servewatch("compare", str(tmp_path / "ref.pb"), same, "--format", "json", "--fail-on", "warning")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    assert set(report["columns"]) == {"amount", "country"} and set(report["left_out"]) == {"order_id", "row", "at"}
    drifted = servewatch("compare", str(tmp_path / "ref.pb"), shifted, "--fail-on", "critical")
    assert drifted.returncode == 1, drifted.stdout + drifted.stderr
    assert "amount" in drifted.stdout and "critical" in drifted.stdout
    assert "left out of drift: at: timestamp" in drifted.stdout
    two_files = servewatch("compare", train, same, "--format", "json")
    assert two_files.returncode == 0 and json.loads(two_files.stdout)["severity"] == "ok", two_files.stdout


def test_a_numeric_column_with_a_few_bad_cells_stays_numeric_whatever_its_first_cell(tmp_path: Path) -> None:
    amounts = ["n/a"] + [f"{value:.2f}" for value in np.random.default_rng(2).random(199)]
    reading = read_profiles(str(write_csv(tmp_path / "t.csv", {"amount": amounts, "kind": ["x", "y"] * 100})))
    amount = reading.profiles[0].columns["amount"]
    assert (amount.kind, amount.valid, amount.invalid) == ("numeric", 199, 1)
    assert reading.profiles[0].columns["kind"].kind == "categorical"
