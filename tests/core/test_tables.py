"""Tables users hold, profiled as they come: pandas 3 (read-only, Arrow-backed, nullable, categorical, datetime
columns), pyarrow Tables and RecordBatches, Arrow streams; the same data gives the same profile in every form."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from servewatch import Profile, SpecError, load_spec
from servewatch.spec import parse_spec
from servewatch.tables import column_kind, table_columns

pd = pytest.importorskip("pandas")

ROWS = 3000


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    amount = rng.gamma(2.0, 30.0, ROWS)
    amount[::100] = np.nan
    count = pd.array(rng.integers(0, 9, ROWS), dtype="Int64")
    count[::50] = pd.NA
    country = rng.choice(["US", "DE", "FR"], ROWS).astype(object)
    country[::25] = None
    return pd.DataFrame({"amount": amount, "count": count, "country": country,
                         "flag": pd.array(rng.random(ROWS) < 0.3, dtype="boolean"),
                         "when": pd.date_range("2026-01-01", periods=ROWS, freq="min")})


def summary(profile: Profile) -> dict[str, tuple[int, int, int, object]]:
    """Counts, and what of each sketch is exact."""
    out = {}
    for name, column in profile.columns.items():
        values = (column.sketch.n, column.sketch.get_min_value(), column.sketch.get_max_value()) \
            if column.is_numeric else sorted(column.categories().items())  # exact, unlike a KLL quantile
        out[name] = (column.count, column.missing, column.invalid, values)
    return out


def test_a_pandas_3_float_only_frame_read_from_csv(tmp_path) -> None:
    """The README's example: pd.read_csv hands out read-only float arrays (pandas 3 copy-on-write)."""
    path = tmp_path / "train.csv"
    pd.DataFrame({"a": np.linspace(0, 1, 500), "b": np.arange(500.0)}).to_csv(path, index=False)
    data = pd.read_csv(path)
    assert not data["a"].to_numpy().flags.writeable or pd.__version__.startswith("2")
    profile = Profile.from_data(data, model="m")
    assert profile.rows == 500 and profile.columns["a"].valid == 500
    assert profile.columns["b"].sketch.get_quantile(1.0) == 499.0


def test_numpy_nullable_categorical_datetime_and_arrow_backed_columns() -> None:
    data = frame()
    columns = table_columns(data)
    assert columns["amount"].dtype == np.float64 and np.isnan(columns["amount"]).sum() == ROWS // 100
    assert columns["count"].dtype == np.float64 and np.isnan(columns["count"]).sum() == ROWS // 50
    assert columns["country"].dtype == object and sum(v is None for v in columns["country"]) == ROWS // 25
    assert column_kind(columns["when"]) == "timestamp" and column_kind(columns["flag"]) == "numeric"

    categorical = data.assign(country=data["country"].astype("category"))
    arrow = data.convert_dtypes(dtype_backend="pyarrow") if _has("pyarrow") else data
    spec = parse_spec({"models": [{"name": "m", "features": [
        {"name": "amount"}, {"name": "count"}, {"name": "country", "type": "categorical"}, {"name": "flag"}]}]})
    expected = summary(Profile.from_data(data, model="m", spec=spec.model("m")))
    assert expected["amount"][:3] == (ROWS, ROWS // 100, 0) and expected["count"][:3] == (ROWS, ROWS // 50, 0)
    assert expected["country"][1] == ROWS // 25 and expected["flag"][2] == 0
    for other in (categorical, arrow):
        assert summary(Profile.from_data(other, model="m", spec=spec.model("m"))) == expected


def test_pyarrow_tables_record_batches_and_arrow_streams_profile_like_pandas() -> None:
    pa = pytest.importorskip("pyarrow")
    data = frame().drop(columns="when")
    expected = summary(Profile.from_data(data, model="m"))
    table = pa.Table.from_pandas(data, preserve_index=False)
    dictionary = table.set_column(2, "country", table.column("country").dictionary_encode())
    for form in (table, table.to_batches(max_chunksize=ROWS)[0], dictionary, _Stream(table)):
        assert summary(Profile.from_data(form, model="m")) == expected


def test_polars_frames_when_installed() -> None:
    polars = pytest.importorskip("polars")
    pytest.importorskip("pyarrow")
    data = frame().drop(columns=["when", "count", "flag"])
    expected = summary(Profile.from_data(data, model="m"))
    assert summary(Profile.from_data(polars.from_pandas(data), model="m")) == expected


def test_datetimes_and_durations_from_arrow() -> None:
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"at": pa.array([0, 60_000_000, None], pa.timestamp("us", tz="UTC")),
                      "day": pa.array([0, 1, None], pa.date32()),
                      "took": pa.array([1_000, None, 2_500], pa.duration("ms"))})
    columns = table_columns(table)
    assert column_kind(columns["at"]) == "timestamp" and column_kind(columns["day"]) == "timestamp"
    assert np.isnat(columns["at"][2]) and columns["at"][1] == np.datetime64("1970-01-01T00:01")
    np.testing.assert_array_equal(columns["took"], [1.0, np.nan, 2.5])


def test_identifier_columns_keep_positions_for_positional_inputs(tmp_path) -> None:
    (tmp_path / "spec.yaml").write_text(
        "models:\n  - name: m\n    features:\n      - {name: order_id, type: identifier}\n"
        "      - {name: amount}\n      - {name: score}\n")
    spec = load_spec(tmp_path / "spec.yaml").model("m")
    assert [c.name for c in spec.features] == ["amount", "score"] and [c.name for c in spec.skipped] == ["order_id"]
    profile = Profile.from_data(np.array([[101, 5.0, 0.25], [102, 7.0, 0.5]]), model="m", spec=spec)
    assert profile.columns["amount"].sketch.get_max_value() == 7.0
    assert profile.columns["score"].sketch.get_max_value() == 0.5
    keyed = Profile.from_data([{"order_id": "a", "amount": 3.0, "score": 0.75}], model="m", spec=spec)
    assert keyed.columns["score"].sketch.get_max_value() == 0.75 and set(keyed.columns) == {"amount", "score"}
    with pytest.raises(SpecError, match=r"features\[0\]\.rules: type timestamp: never profiled"):
        parse_spec({"models": [{"name": "m", "features": [{"name": "at", "type": "timestamp", "rules": {"min": 0}}]}]})


class _Stream:
    """An object speaking only the Arrow PyCapsule stream protocol (as polars and duckdb frames do)."""

    def __init__(self, table: object) -> None:
        self.table = table

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        return self.table.__arrow_c_stream__(requested_schema)  # type: ignore[attr-defined]


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_the_readme_library_example_runs_as_written(tmp_path, monkeypatch) -> None:
    """The README's first Python block, on a CSV and a Parquet file pandas writes (pandas 3: read-only arrays)."""
    pytest.importorskip("pyarrow")
    import pathlib

    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## The detectors library"):]
    start = section.index("```python\n") + len("```python\n")
    code = section[start:section.index("\n```", start)]
    rng = np.random.default_rng(3)
    (tmp_path / "servewatch.yaml").write_text(
        "models:\n  - name: fraud\n    features: [{name: amount}, {name: country, type: categorical}]\n")
    pd.DataFrame({"amount": rng.gamma(2, 30, 4000), "country": rng.choice(["US", "DE"], 4000)}).to_csv(
        tmp_path / "train.csv", index=False)
    pd.DataFrame({"amount": rng.gamma(2, 45, 4000), "country": rng.choice(["US", "DE"], 4000)}).to_parquet(
        tmp_path / "today.parquet")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 (our own README)
    assert scope["report"].severity == "critical"  # type: ignore[attr-defined]
    assert scope["reference"].columns["amount"].valid == 4000  # type: ignore[attr-defined]
