"""Package attributes that load on first use (PEP 562), so importing a package imports none of its modules.

Usage, at the end of a package's ``__init__.py``::

    __getattr__, __dir__ = lazy_attributes(__name__, __all__, {"Profile": "profile", "load_spec": "spec"})

``servewatch.Profile`` then imports ``servewatch.profile`` the first time it is read. This matters because
``import servewatch.instrumentation.<framework>`` runs in every process started under
``opentelemetry-instrument`` (TorchServe's metric collector, Ray's helper processes), which must not pay for
numpy, datasketches or the OpenTelemetry SDK.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, exported: Sequence[str], homes: Mapping[str, str]
                    ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: each name in ``homes`` is read from the submodule it maps
    to (relative to ``package``) when first asked for."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{home}"), name)

    def __dir__() -> list[str]:
        module = importlib.import_module(package)
        return sorted(set(vars(module)) | set(exported))

    return __getattr__, __dir__
