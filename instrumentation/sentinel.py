"""``NOTHING``: "not given" where None is a legitimate value (inputs or outputs a hook did not capture).

Usage::

    from servewatch.instrumentation import NOTHING, record

    record("fraud", inputs, NOTHING if failed else outputs, duration=0.004)

Its own module, free of imports, so that the hooks of the framework instrumentors can name it without loading
the recorder (numpy, datasketches) in processes that never serve.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NOTHING"]

NOTHING: Any = type("Nothing", (), {"__repr__": lambda self: "NOTHING", "__slots__": ()})()
"""Stands for "not given" where None is a legitimate value."""
