"""Lay the installed package's tree as symlinks, so tools that read source (mypy) see all of ``servewatch``.

    python scripts/package_tree.py build/typecheck

The source is split over several folders (``instrumentation/`` installs as ``servewatch.instrumentation``,
``examples/data`` as ``servewatch.demo.data``, ...); the one home of that mapping is
``[tool.setuptools.package-dir]`` in pyproject.toml, and this script reads it from there. Under the given folder
it makes a real directory for each mapped package, holding a symlink to every entry of that package's source
folder except the names a mapped subpackage takes. The folder is emptied first; nothing in the checkout changes.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def package_dirs(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, Path]:
    """``{dotted package: source folder}`` as pyproject.toml's package-dir maps them."""
    with pyproject.open("rb") as file:
        mapping = tomllib.load(file)["tool"]["setuptools"]["package-dir"]
    return {package: (pyproject.parent / folder).resolve() for package, folder in mapping.items()}


def lay(out: Path, packages: dict[str, Path]) -> None:
    """Empty ``out`` and lay one directory per package in it, its entries linked to the source."""
    if out.exists():
        shutil.rmtree(out)
    for package in sorted(packages, key=lambda name: name.count(".")):
        target = out.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        taken = {name.rsplit(".", 1)[1] for name in packages if name.rpartition(".")[0] == package}
        for entry in sorted(packages[package].iterdir()):
            if entry.name in taken or entry.name == "__pycache__":
                continue
            (target / entry.name).symlink_to(entry)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: package_tree.py OUT", file=sys.stderr)
        return 2
    lay(Path(argv[0]).resolve(), package_dirs())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
