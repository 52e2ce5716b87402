"""Group commit: requests hand their profiles to one writer thread, which stores many requests per transaction.

Usage::

    committer = Committer(store, clock=time.time).start()
    outcomes = committer.submit(profiles)     # blocks until committed; one outcome per profile
    committer.stop()                          # stores what is queued, then ends

Every request thread waits until the transaction holding its profiles is committed, so an answer of 200
means the profiles are stored; concurrent requests share one commit, which keeps the cost per commit (the
fsync, with ``--fsync``) flat under load. When the queue is full, the store fails, or the committer is stopping,
:class:`Unavailable` is raised and the receiver answers 503 with ``Retry-After``: OTLP exporters retry, and a
repeat that was in fact stored is recognized as a duplicate.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence

from ...profile import Profile
from .store import Store

__all__ = ["Committer", "Unavailable"]

_log = logging.getLogger("servewatch.detect")


class Unavailable(Exception):
    """The store cannot take profiles right now (retry later)."""


class _Ticket:
    __slots__ = ("profiles", "done", "outcomes", "error")

    def __init__(self, profiles: Sequence[Profile]) -> None:
        self.profiles = profiles
        self.done = threading.Event()
        self.outcomes: list[str] = []
        self.error: str | None = None


class Committer:
    """The single writer in front of a :class:`Store`; see the module docstring."""

    def __init__(self, store: Store, *, clock: Callable[[], float], max_pending: int = 1024,
                 max_batch: int = 512, timeout: float = 30.0) -> None:
        self.store = store
        self.clock = clock
        self.max_batch = max_batch
        self.timeout = timeout
        self._queue: queue.Queue[_Ticket | None] = queue.Queue(maxsize=max_pending)
        self._accepting = False
        self._thread: threading.Thread | None = None
        self.commits = 0

    def start(self) -> Committer:
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name="servewatch-committer", daemon=True)
        self._thread.start()
        return self

    def submit(self, profiles: Sequence[Profile]) -> list[str]:
        """Store ``profiles``; returns one outcome each (see :meth:`Store.write`)."""
        if not profiles:
            return []
        if not self._accepting:
            raise Unavailable("the detector is shutting down")
        ticket = _Ticket(profiles)
        try:
            self._queue.put(ticket, timeout=1.0)
        except queue.Full:
            raise Unavailable("too many requests waiting for the store") from None
        if not ticket.done.wait(self.timeout):
            raise Unavailable("the store did not commit in time")
        if ticket.error is not None:
            raise Unavailable(ticket.error)
        return ticket.outcomes

    def stop(self, timeout: float = 30.0) -> None:
        """Store everything queued, then end the writer thread."""
        if self._thread is None:
            return
        self._accepting = False
        self._queue.put(None)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while True:
            ticket = self._queue.get()
            if ticket is None:
                return
            batch = [ticket]
            count = len(ticket.profiles)
            stop = False
            while count < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
                count += len(more.profiles)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Ticket]) -> None:
        profiles = [profile for ticket in batch for profile in ticket.profiles]
        try:
            outcomes = self.store.write(profiles, self.clock())
            self.commits += 1
        except (sqlite3.Error, OSError) as error:
            _log.error("cannot store %d profiles: %s", len(profiles), error)
            for ticket in batch:
                ticket.error = f"the store cannot commit: {error}"
                ticket.done.set()
            return
        except Exception as error:  # a bug must fail the requests, never kill the writer
            _log.exception("storing %d profiles failed", len(profiles))
            for ticket in batch:
                ticket.error = f"internal error while storing: {error}"
                ticket.done.set()
            return
        start = 0
        for ticket in batch:
            ticket.outcomes = outcomes[start:start + len(ticket.profiles)]
            start += len(ticket.profiles)
            ticket.done.set()
