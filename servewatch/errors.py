"""The exceptions servewatch raises on bad input.

::

    ServewatchError          base class; every error below is one
     ├── SpecError           a monitoring spec that cannot be used (file, path inside it, what is wrong)
     └── ProfileError        profile bytes or data that cannot be decoded (truncated, corrupt, oversized, ...)

Both carry a human-readable reason in ``str(error)``; callers that serve untrusted input (the detector's
receiver) turn them into HTTP answers, never into crashes.
"""

from __future__ import annotations

__all__ = ["ProfileError", "ServewatchError", "SpecError"]


class ServewatchError(Exception):
    """Base class of every error servewatch raises on purpose."""


class SpecError(ServewatchError):
    """A spec that cannot be used.

    ``problems`` lists each problem as ``"<file>: <path>: <what is wrong>"``; ``str()`` joins them one per line.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ProfileError(ServewatchError):
    """Profile bytes (or a profile) that cannot be decoded or used; the message says why."""
