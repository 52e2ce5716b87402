"""Packaging guards: every subpackage is listed and ends up in the wheel; framework imports stay optional."""

from __future__ import annotations

import importlib.util
import os
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


def test_typecheck_tree_lays_out_the_package_as_it_installs(tmp_path: Path) -> None:
    """scripts/package_tree.py (what `make typecheck` runs mypy on) holds every package and module, once."""
    spec = importlib.util.spec_from_file_location("package_tree", ROOT / "scripts" / "package_tree.py")
    assert spec is not None and spec.loader is not None
    package_tree = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(package_tree)
    package_tree.lay(tmp_path, package_tree.package_dirs())
    for package in CONFIG["packages"]:
        assert tmp_path.joinpath(*package.split("."), "__init__.py").is_file(), package
    laid = sorted(Path(folder, name).resolve() for folder, _, names in os.walk(tmp_path, followlinks=True)
                  for name in names if name.endswith(".py"))
    sources = sorted(path.resolve() for folder in CONFIG["package-dir"].values()
                     for path in (ROOT / folder).rglob("*.py") if "__pycache__" not in path.parts)
    assert laid == sources


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
