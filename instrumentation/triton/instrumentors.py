"""The two ``opentelemetry-instrument`` entry points of the Triton instrumentation.

Usage::

    from servewatch.instrumentation.triton import PyTritonInstrumentor, TritonClientInstrumentor

    PyTritonInstrumentor().instrument()        # before the app binds its models; uninstrument() undoes it
    TritonClientInstrumentor().instrument()    # before the first infer call

Under ``opentelemetry-instrument`` both are loaded through the entry points ``servewatch_pytriton`` and
``servewatch_tritonclient`` (``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` names them to turn one off). Each only
registers import hooks: a patch is applied when its module is imported, so a process that never imports
PyTriton or tritonclient is never touched.
"""

from __future__ import annotations

from typing import Any

from servewatch.instrumentation.instrumentor import ServewatchInstrumentor

from .package import _instruments_pytriton, _instruments_tritonclient

__all__ = ["PyTritonInstrumentor", "TritonClientInstrumentor"]


class PyTritonInstrumentor(ServewatchInstrumentor):
    """Observes every model a PyTriton process binds (:mod:`~servewatch.instrumentation.triton.pytriton`)."""

    framework = "pytriton"
    instruments = _instruments_pytriton

    def _patch(self, **kwargs: Any) -> None:
        from .pytriton import handler_init, server_init, set_active

        set_active(True)
        self.wrap("pytriton.proxy.inference", "InferenceHandler.__init__", handler_init)
        self.wrap("pytriton.triton", "Triton._initialize_server", server_init)

    def _uninstrument(self, **kwargs: Any) -> None:
        super()._uninstrument(**kwargs)
        from .pytriton import set_active

        set_active(False)


class TritonClientInstrumentor(ServewatchInstrumentor):
    """Observes tritonclient inference calls (:mod:`~servewatch.instrumentation.triton.client`)."""

    framework = "tritonclient"
    instruments = _instruments_tritonclient

    def _patch(self, **kwargs: Any) -> None:
        from .client import PATCHES

        for module, name, wrapper in PATCHES:
            self.wrap(module, name, wrapper)
