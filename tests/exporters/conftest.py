"""Fixtures of the exporter tests: the recording OTLP receiver of tests/instrumentation, and a clean environment."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_path = Path(__file__).resolve().parents[1] / "instrumentation" / "receiver.py"
_spec = importlib.util.spec_from_file_location("servewatch_exporters_test_receiver", _path)
_module = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
sys.modules[_spec.name] = _module  # type: ignore[union-attr]
_spec.loader.exec_module(_module)  # type: ignore[union-attr]


@pytest.fixture
def receiver() -> Iterator[Any]:
    with _module.Receiver() as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith(("OTEL_", "SERVEWATCH_")):
            monkeypatch.delenv(key)
