"""Durations as people write them in specs and flags: ``30s``, ``5m``, ``1h``, ``1d``, ``7d``, ``250ms``.

    >>> parse_duration("5m")
    300.0
    >>> format_duration(3600)
    '1h'
"""

from __future__ import annotations

import math
import re

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")


def parse_duration(text: str | int | float) -> float:
    """Seconds in ``text`` (``"5m"`` -> 300.0); a bare number is seconds. Raises ``ValueError`` with a reason."""
    if isinstance(text, bool):
        raise ValueError(f"expected a duration such as 30s, 5m, 1h or 1d, got {text!r}")
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        match = _PATTERN.match(str(text))
        if match is None:
            raise ValueError(f"expected a duration such as 30s, 5m, 1h or 1d, got {text!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a duration must be positive, got {text!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of ``seconds`` (``3600`` -> ``"1h"``; ``90`` -> ``"90s"``)."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds // size)}{unit}"
    return f"{int(round(seconds * 1000))}ms"
