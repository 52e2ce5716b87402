"""Fixtures of the instrumentation tests: a recording OTLP receiver and a runner for instrumented processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servewatch.instrumentation import errors, runtime
from support import load_module

Receiver = load_module("servewatch_test_receiver", Path(__file__).with_name("receiver.py")).Receiver


@pytest.fixture
def receiver() -> Iterator[Any]:
    with Receiver() as running:
        yield running


@pytest.fixture
def run_python(tmp_path: Path):
    """Run ``code`` in a fresh interpreter with ``env`` added; returns the CompletedProcess (checked)."""

    def run(code: str, env: dict[str, str] | None = None, timeout: float = 60.0,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        script = tmp_path / f"script_{len(list(tmp_path.glob('script_*.py')))}.py"
        script.write_text(textwrap.dedent(code))
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith(("OTEL_", "SERVEWATCH_"))}
        environment.update(env or {})
        result = subprocess.run([sys.executable, str(script)], env=environment, capture_output=True, text=True,
                                timeout=timeout, cwd=tmp_path)
        if check and result.returncode != 0:
            raise AssertionError(f"exit {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    return run


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("OTEL_", "SERVEWATCH_")):
            monkeypatch.delenv(key)


@pytest.fixture
def fresh_runtime() -> Iterator[None]:
    """Error counts reset, and after the test its runtime flushed and forgotten, so the next test starts bare.
    Request it after ``monkeypatch``: the final flush runs under the test's patches."""
    errors.reset()
    yield
    active = runtime.active()
    if active is not None:
        active.flush(5.0, final=True)
    runtime.forget()
    runtime._disabled = False
    errors.reset()


@pytest.fixture
def spool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_runtime: None) -> Iterator[Path]:
    """A runtime in this process writing profiles to a spool directory (no network); torn down afterwards."""
    directory = tmp_path / "spool"
    monkeypatch.setenv("SERVEWATCH_SPOOL_DIR", str(directory))
    monkeypatch.setenv("SERVEWATCH_PROFILE_INTERVAL", "3600")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    yield directory
