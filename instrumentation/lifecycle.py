"""What the runtime of a serving process does when the process forks or ends.

Usage (:mod:`~servewatch.instrumentation.runtime` installs the hooks once, when the runtime starts in a
process, handing over how to find and how to drop it; nothing else calls this)::

    from servewatch.instrumentation import lifecycle

    lifecycle.install(active, forget)      # () -> the process's Runtime or None; () -> None

- **Fork** (``os.register_at_fork``): the parent waits, at most :data:`FORK_TIMEOUT`, until its background
  thread is between two cycles (a module being imported at fork time stays locked forever in the child); the
  child drops the runtime and starts its own on its first inference, under a new ``service.instance.id``.
- **Exit**: when the main thread ends (``threading``'s exit hook, before ``concurrent.futures`` and the
  ``threading`` module shut down: the OpenTelemetry SDK cannot even be imported after that) the last interval
  is flushed; at ``atexit`` once more, finally (what threads still serving after the main thread recorded),
  and the exporters are shut down. Both together wait at most :data:`EXIT_TIMEOUT` seconds, counted from
  the first.

This module knows the runtime only through the two functions it is given (and the
:class:`~servewatch.instrumentation.process.Runtime` methods ``pause``, ``resume`` and ``flush``), so it
imports nothing of the runtime's.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .guard import errors

if TYPE_CHECKING:
    from .process import Runtime

__all__ = ["EXIT_TIMEOUT", "FORK_TIMEOUT", "install"]

EXIT_TIMEOUT = 5.0
"""Seconds the process waits at exit, in all, for the last profiles and metrics to leave (both exit hooks
together); also :func:`~servewatch.instrumentation.runtime.flush`'s default timeout."""
FORK_TIMEOUT = 2.0
"""Seconds ``os.fork`` waits at most for the background thread to finish an export in progress."""


def _none() -> None:
    return None


_installed = False
_active: Callable[[], Runtime | None] = _none  # both set by install()
_forget: Callable[[], None] = _none
_forking: Runtime | None = None
_exit_deadline: float | None = None


def install(active: Callable[[], Runtime | None], forget: Callable[[], None]) -> None:
    """Register the fork and exit hooks of this process (once): ``active()`` returns the runtime, if there is
    one, and ``forget()`` drops it in a forked child."""
    global _installed, _active, _forget
    if _installed:
        return
    _installed, _active, _forget = True, active, forget
    atexit.register(_at_exit)
    import concurrent.futures.thread  # noqa: F401 - registers its own hook first, so ours runs before it

    register = getattr(threading, "_register_atexit", None)
    if register is not None:
        register(_before_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                            after_in_child=_after_fork_in_child)


def _ours() -> Runtime | None:
    """The runtime, when it belongs to this process."""
    active = _active()
    return active if active is not None and active.pid == os.getpid() else None


def _before_fork() -> None:
    global _forking
    active = _ours()
    if active is not None and active.pause(FORK_TIMEOUT):
        _forking = active


def _after_fork_in_parent() -> None:
    global _forking
    if _forking is not None:
        _forking.resume()
        _forking = None


def _after_fork_in_child() -> None:
    global _forking, _exit_deadline
    _forking, _exit_deadline = None, None
    _forget()
    errors.reset()


def _before_exit() -> None:
    active = _ours()
    if active is not None:
        active.flush(_exit_budget(), exiting=True)


def _at_exit() -> None:
    active = _ours()
    if active is not None:
        active.flush(_exit_budget(), final=True)


def _exit_budget() -> float:
    """Seconds the exit hooks may still wait: EXIT_TIMEOUT for both together, from the first one on."""
    global _exit_deadline
    now = time.monotonic()
    if _exit_deadline is None:
        _exit_deadline = now + EXIT_TIMEOUT
    return max(0.0, _exit_deadline - now)
