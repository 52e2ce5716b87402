"""Fixtures of the alert-rule tests: the golden spec, specs at other time scales and with awkward names, and
the real promtool / amtool binaries (tests needing one skip, saying so, where it is not installed)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from servewatch.spec import Spec, load_spec

GOLDEN = Path(__file__).parent / "golden"

SPECS = Path(__file__).parent / "specs"
"""``fast.yaml`` (1s buckets, 10s windows: the demo's time scale) and ``awkward.yaml`` (names full of regex
and quoting metacharacters, single-tier thresholds); the dashboard tests use them too."""


@pytest.fixture(scope="session")
def golden_spec() -> Spec:
    return load_spec(GOLDEN / "servewatch.yaml")


@pytest.fixture(scope="session", params=["golden", "fast", "awkward", "empty"])
def any_spec(request: pytest.FixtureRequest) -> Spec:
    """Every spec the rules must handle: production scale, compressed scale, awkward names, no models."""
    if request.param == "empty":
        return Spec()
    return load_spec(
        GOLDEN / "servewatch.yaml" if request.param == "golden" else SPECS / f"{request.param}.yaml"
    )


def _tool(name: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian package prometheus / prometheus-alertmanager)")

    def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [path, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
        )

    return run


@pytest.fixture(scope="session")
def promtool() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``promtool(*args)`` runs the real promtool and returns the completed process."""
    return _tool("promtool")


@pytest.fixture(scope="session")
def amtool() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``amtool(*args)`` runs the real amtool and returns the completed process."""
    return _tool("amtool")
