"""The PyTriton and tritonclient versions this instrumentation supports (the ``triton`` extra pins the same)."""

from __future__ import annotations

__all__ = ["_instruments", "_instruments_pytriton", "_instruments_tritonclient"]

_instruments_pytriton = ("nvidia-pytriton >= 0.7, < 0.8",)
_instruments_tritonclient = ("tritonclient >= 2.51",)
_instruments = _instruments_pytriton + _instruments_tritonclient
