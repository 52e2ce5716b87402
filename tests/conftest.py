"""Puts ``tests/`` on ``sys.path`` so that test modules import the helpers they share: ``from support import ...``
(:mod:`support`; tests are not a package, ``--import-mode=importlib``)."""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
