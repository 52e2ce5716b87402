"""How a categorical value is spelled in profiles, so that specs, profiles and detectors agree.

    >>> category(True), category(3.0), category("DE")
    ('true', '3', 'DE')
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CATEGORY_MAX_LENGTH", "category"]

CATEGORY_MAX_LENGTH = 128
"""Categories longer than this are truncated before they reach the sketches (bounded sketch size)."""


def category(value: Any) -> str:
    """The string a categorical value is counted as: ``True`` -> ``"true"``, ``3.0`` -> ``"3"``, else ``str``."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, (bool, np.bool_)):
        text = "true" if value else "false"
    elif isinstance(value, (float, np.floating)) and float(value).is_integer():
        text = str(int(value))
    else:
        text = str(value)
    return text[:CATEGORY_MAX_LENGTH]
