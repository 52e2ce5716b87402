"""The same input and options give the same profile bytes and the same statistics: library, CLI, detector."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from servewatch import Profile
from servewatch.detectors import compare

SERVEWATCH = str(Path(sys.executable).with_name("servewatch"))


def _rows(seed: int, n: int, shift: float = 0.0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    return {"amount": rng.lognormal(3 + shift, 1, n), "age": rng.normal(40, 9, n).round(),
            "country": rng.choice(["US", "DE", "FR", "BR"], n, p=[0.4, 0.3, 0.2, 0.1]).tolist(),
            "item": [f"sku-{i}" for i in rng.zipf(1.3, n) % 5000]}  # more categories than the sketch tracks


def test_profiles_of_the_same_data_are_the_same_bytes() -> None:
    data = _rows(1, 60_000)
    assert Profile.from_data(data, model="m").to_bytes() == Profile.from_data(data, model="m").to_bytes()
    given = Profile.from_data(data, model="m", start=100.0, end=160.0)
    assert (given.start, given.end) == (100.0, 160.0)
    assert given.to_bytes() != Profile.from_data(data, model="m").to_bytes()
    rows = [dict(zip(data, values)) for values in zip(*data.values())][:5000]

    def streamed() -> bytes:
        profile = Profile("m", start=0.0, end=0.0)
        for row in rows:
            profile.update_row(row)
        return profile.to_bytes()

    assert streamed() == streamed()


def test_merges_in_the_same_order_give_the_same_bytes_and_statistics() -> None:
    parts = [Profile.from_data(_rows(seed, int(size)), model="m")
             for seed, size in enumerate(np.random.default_rng(2).integers(100, 3000, 30))]
    reference = Profile.from_data(_rows(99, 50_000), model="m")
    merged = [Profile.merged(parts), Profile.merged(parts)]
    assert merged[0] is not None and merged[1] is not None
    assert merged[0].to_bytes() == merged[1].to_bytes()
    reports = [compare(reference, window).to_dict() for window in merged]  # type: ignore[arg-type]
    assert reports[0] == reports[1]
    stored = [part.to_bytes() for part in parts]  # as the detector reads them back: decoded, then merged
    again = [Profile.merged([Profile.from_bytes(data) for data in stored]) for _ in range(2)]
    assert again[0] is not None and again[1] is not None and again[0].to_bytes() == again[1].to_bytes()
    for name in ("amount", "age"):  # a KLL sketch decoded is the sketch that was encoded: merges agree too
        assert again[0].columns[name].sketch.serialize() == merged[0].columns[name].sketch.serialize()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("reproducible")
    for name, seed, shift in (("reference.csv", 3, 0.0), ("current.csv", 4, 0.15)):
        data = _rows(seed, 30_000, shift)
        with open(root / name, "w") as handle:
            handle.write(",".join(data) + "\n")
            for values in zip(*data.values()):
                handle.write(",".join(str(value) for value in values) + "\n")
    return root


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([SERVEWATCH, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def test_cli_reference_twice_is_the_same_file_and_compare_twice_the_same_json(files: Path) -> None:
    for name in ("first.pb", "second.pb"):
        _run("reference", str(files / "reference.csv"), "--model", "m", "-o", str(files / name))
    assert (files / "first.pb").read_bytes() == (files / "second.pb").read_bytes()
    outputs = {_run("compare", str(files / "first.pb"), str(files / "current.csv"), "--format", "json").stdout
               for _ in range(3)}
    assert len(outputs) == 1 and '"psi"' in outputs.pop()
    tables = {_run("compare", str(files / "reference.csv"), str(files / "current.csv")).stdout for _ in range(2)}
    assert len(tables) == 1
