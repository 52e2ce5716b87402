"""The base class of the framework instrumentors (``opentelemetry-instrument`` entry points).

Usage::

    from servewatch.instrumentation import ServewatchInstrumentor, observe

    class TorchServeInstrumentor(ServewatchInstrumentor):
        framework = "torchserve"
        instruments = ("torchserve >= 0.12",)

        def _patch(self, **kwargs):
            self.wrap("ts.service", "Service.predict", _predict)   # applied when ts.service is imported
            # or name the wrapper, so that its module (and all it imports) loads only with ts.service:
            # self.wrap("ts.service", "Service.predict", "my_package.hooks:predict")

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
  process that never imports the serving code is never patched; ``uninstrument()`` restores every original. A
  wrapper given as ``"package.module:function"`` is imported at that moment too, not when instrumenting.

Patching creates no provider: the runtime starts on the first inference a hook records.

Entry points must never fail: ``opentelemetry-instrument`` aborts *all* auto-instrumentation of a process
(other vendors' instrumentors included) when loading or instrumenting one raises anything but an
``ImportError``. So this module imports nothing beyond ``BaseInstrumentor`` (which the loader has imported
already) and the standard library at module level; wrapt and the OpenTelemetry helpers load inside guarded
calls. A subclass's module should do the same, and keep :meth:`_patch` to registering hooks: the modules with
the hooks' code, and everything they import, are best imported when the framework's module is.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Collection
from types import ModuleType
from typing import Any, ClassVar

# That module opens with a file-wide ignore comment, so mypy sees none of its names.
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

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
        try:
            if Settings.from_environ()[0].disabled:
                return
            self._patch(**kwargs)
        except Exception as error:
            errors.report(f"{self.framework}.instrument", error)

    def uninstrument(self, **kwargs: Any) -> None:
        """Undo every patch; a failure (a subclass's own ``_uninstrument`` included) is counted, never raised."""
        try:
            super().uninstrument(**kwargs)
        except Exception as error:
            self._is_instrumented_by_opentelemetry = False
            errors.report(f"{self.framework}.instrument", error)

    def _uninstrument(self, **kwargs: Any) -> None:
        self._active = False
        patched, self._patched = getattr(self, "_patched", []), []
        for owner, attribute in reversed(patched):
            try:
                from opentelemetry.instrumentation.utils import unwrap

                unwrap(owner, attribute)
            except Exception as error:
                errors.report(f"{self.framework}.instrument", error)

    @abstractmethod
    def _patch(self, **kwargs: Any) -> None:
        """Register the patches (:meth:`wrap`); ``kwargs`` are those given to ``instrument()``."""

    def wrap(self, module: str, name: str, wrapper: Wrapper | str) -> None:
        """Wrap ``name`` (``"function"`` or ``"Class.method"``) of ``module`` with ``wrapper`` once ``module`` is
        imported; a failure to patch is counted, never raised. ``wrapper`` may be given as
        ``"package.module:function"``, imported only then."""

        def apply(imported: ModuleType) -> None:
            if not getattr(self, "_active", False):
                return
            try:
                import wrapt

                function = _resolve(wrapper) if isinstance(wrapper, str) else wrapper
                owner, attribute, _original = wrapt.resolve_path(imported, name)
                wrapt.wrap_function_wrapper(imported, name, function)
                self._patched.append((owner, attribute))
            except Exception as error:
                errors.report(f"{self.framework}.instrument", error)

        try:
            import wrapt

            wrapt.register_post_import_hook(apply, module)
        except Exception as error:
            errors.report(f"{self.framework}.instrument", error)


def _resolve(path: str) -> Wrapper:
    """The function named by ``"package.module:function"``."""
    import importlib

    module, _, function = path.partition(":")
    return getattr(importlib.import_module(module), function)
