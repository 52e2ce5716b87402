"""The base class of the framework instrumentors (``opentelemetry-instrument`` entry points).

Usage::

    from servewatch.instrumentation import ServewatchInstrumentor, observe

    class TorchServeInstrumentor(ServewatchInstrumentor):
        framework = "torchserve"
        instruments = ("torchserve >= 0.12",)

        def _patch(self, **kwargs):
            self.wrap("ts.service", "Service.predict", _predict)   # applied when ts.service is imported

    def _predict(wrapped, instance, args, kwargs):                 # wrapt signature
        return observe(wrapped, args, kwargs, framework="torchserve", model=lambda: instance.context.model_name,
                       inputs=lambda: args[0])

    TorchServeInstrumentor().instrument()      # what opentelemetry-instrument does; .uninstrument() undoes it

What the base class does for a subclass:

- ``instrumentation_dependencies()`` returns :attr:`instruments` (under ``opentelemetry-instrument`` the
  ``instruments-any`` extra of the distribution gates loading, see notes/hooks.md 1.1);
- ``instrument()`` calls :meth:`_patch` unless ``SERVEWATCH_DISABLED`` is true; an exception in it is counted
  (``<framework>.instrument``) and logged, never raised into the host's start-up;
- :meth:`wrap` patches ``module.name`` with a `wrapt <https://wrapt.readthedocs.io>`_ wrapper when the module
  is imported (at once if it already is), so instrumenting imports no framework module and a launcher or helper
  process that never imports the serving code is never patched; ``uninstrument()`` restores every original.

Patching creates no provider: the runtime starts on the first inference a hook records.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Collection
from types import ModuleType
from typing import Any, ClassVar

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap

from .guard import errors
from .settings import Settings

__all__ = ["ServewatchInstrumentor"]

Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
"""``wrapper(wrapped, instance, args, kwargs)``, as wrapt calls it."""


class ServewatchInstrumentor(BaseInstrumentor):
    """Base of the servewatch framework instrumentors: implement :meth:`_patch` with :meth:`wrap` calls."""

    framework: ClassVar[str] = "python"
    """The ``ml.framework`` this instrumentor reports."""
    instruments: ClassVar[Collection[str]] = ()
    """Requirement strings of the framework packages it instruments."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.instruments

    def _instrument(self, **kwargs: Any) -> None:
        self._patched: list[tuple[Any, str]] = []
        self._active = True
        if Settings.from_environ()[0].disabled:
            return
        try:
            self._patch(**kwargs)
        except Exception as error:
            errors.report(f"{self.framework}.instrument", error)

    def _uninstrument(self, **kwargs: Any) -> None:
        self._active = False
        for owner, attribute in reversed(getattr(self, "_patched", [])):
            try:
                unwrap(owner, attribute)
            except Exception as error:
                errors.report(f"{self.framework}.instrument", error)
        self._patched = []

    @abstractmethod
    def _patch(self, **kwargs: Any) -> None:
        """Register the patches (:meth:`wrap`); ``kwargs`` are those given to ``instrument()``."""

    def wrap(self, module: str, name: str, wrapper: Wrapper) -> None:
        """Wrap ``name`` (``"function"`` or ``"Class.method"``) of ``module`` with ``wrapper`` once ``module`` is
        imported; a failure to patch is counted, never raised."""

        def apply(imported: ModuleType) -> None:
            if not getattr(self, "_active", False):
                return
            try:
                owner, attribute, _original = wrapt.resolve_path(imported, name)
                wrapt.wrap_function_wrapper(imported, name, wrapper)
                self._patched.append((owner, attribute))
            except Exception as error:
                errors.report(f"{self.framework}.instrument", error)

        wrapt.register_post_import_hook(apply, module)
