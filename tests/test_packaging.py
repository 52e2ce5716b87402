"""Packaging guards: every subpackage is listed and ends up in the wheel; framework imports stay optional."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def expected_packages() -> set[str]:
    found = set()
    for dotted, folder in CONFIG["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((dotted, *relative)))
    return found


def test_every_subpackage_is_listed() -> None:
    assert expected_packages() == set(CONFIG["packages"])


@pytest.mark.slow
def test_wheel_holds_every_subpackage(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, timeout=300)
    wheel = next(tmp_path.glob("servewatch-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for package in expected_packages():
        assert f"{package.replace('.', '/')}/__init__.py" in names, package
    assert not [name for name in names if name.split("/")[0] not in ("servewatch",) and ".dist-info" not in name]
    assert any(name.endswith("entry_points.txt") for name in names)


def test_import_servewatch_pulls_in_no_framework() -> None:
    code = ("import sys, servewatch, servewatch.detectors, servewatch.spec, servewatch.wire;"
            "heavy = [m for m in ('torch', 'ray', 'tritonclient', 'pytriton', 'pynvml', 'ts') if m in sys.modules];"
            "print(heavy)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"
