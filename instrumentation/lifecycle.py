"""What the runtime of a serving process does when the process forks or ends.

Usage (the runtime installs the hooks once, when it starts in a process; nothing else calls this)::

    from servewatch.instrumentation import lifecycle

    lifecycle.install()

- **Fork** (``os.register_at_fork``): the parent waits, at most
  :data:`~servewatch.instrumentation.runtime.FORK_TIMEOUT`, until its background thread is between two cycles
  (a module being imported at fork time stays locked forever in the child); the child drops the runtime and
  starts its own on its first inference, under a new ``service.instance.id``.
- **Exit**: when the main thread ends (``threading``'s exit hook, before ``concurrent.futures`` and the
  ``threading`` module shut down: the OpenTelemetry SDK cannot even be imported after that) the last interval
  is flushed; at ``atexit`` once more, finally (what threads still serving after the main thread recorded),
  and the exporters are shut down. Both together wait at most
  :data:`~servewatch.instrumentation.runtime.EXIT_TIMEOUT` seconds, counted from the first.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from typing import TYPE_CHECKING

from . import runtime
from .guard import errors

if TYPE_CHECKING:
    from .runtime import Runtime

__all__ = ["install"]

_installed = False
_forking: Runtime | None = None
_exit_deadline: float | None = None


def install() -> None:
    """Register the fork and exit hooks of this process (once)."""
    global _installed
    if _installed:
        return
    _installed = True
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
    active = runtime._runtime
    return active if active is not None and active.pid == os.getpid() else None


def _before_fork() -> None:
    global _forking
    active = _ours()
    if active is not None and active._cycle.acquire(timeout=runtime.FORK_TIMEOUT):
        _forking = active


def _after_fork_in_parent() -> None:
    global _forking
    if _forking is not None:
        _forking._cycle.release()
        _forking = None


def _after_fork_in_child() -> None:
    global _forking, _exit_deadline
    _forking, _exit_deadline = None, None
    runtime._runtime = None
    runtime._lock = threading.Lock()
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
        _exit_deadline = now + runtime.EXIT_TIMEOUT
    return max(0.0, _exit_deadline - now)
