"""The TorchServe versions this instrumentation supports (the ``torchserve`` extra pins the same)."""

from __future__ import annotations

__all__ = ["_instruments"]

_instruments = ("torchserve == 0.12.0",)
