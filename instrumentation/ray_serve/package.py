"""The Ray versions this instrumentation supports (its hook points are private Ray Serve APIs).

Usage::

    from servewatch.instrumentation.ray_serve.package import _instruments, supported

    supported("2.60.0")        # True
    supported("2.61.0")        # False: the instrumentor logs one message and leaves Serve untouched

Keep :data:`_instruments` equal to the ``ray`` extra and the ``instruments-any`` entry in ``pyproject.toml``.
"""

from __future__ import annotations

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

__all__ = ["RAY_RANGE", "_instruments", "supported"]

RAY_RANGE = ">=2.60,<2.61"
"""Ray releases whose private Serve APIs (``Replica``, ``UserCallableWrapper``, ``_BatchQueue``) were
verified."""

_instruments = (f"ray[serve] {RAY_RANGE}",)


def supported(version: str) -> bool:
    """True when Ray ``version`` is in :data:`RAY_RANGE` (pre-releases of it included)."""
    try:
        return SpecifierSet(RAY_RANGE, prereleases=True).contains(Version(version))
    except InvalidVersion:
        return False
