"""Group commit: concurrent requests share transactions, and a request is answered only once committed.

Usage::

    committer = Committer(store, clock=time.time).start()
    outcomes = committer.submit(profiles)     # blocks until committed; one outcome per profile
    committer.stop()                          # refuses new work, lets what is queued commit

Each request queues its profiles. If no commit is running, the request's own thread becomes the leader: it
takes everything queued (its profiles and those of requests that arrived meanwhile, up to ``max_batch``),
stores them in one transaction, and wakes the others; otherwise it waits, and when the running commit ends
one of the waiting threads leads the next. An answer of 200 therefore means the profiles are stored; under
load many requests share a commit (and its fsync, with ``--fsync``), and an unloaded detector pays no thread
hand-over at all. When the queue is full, the store fails, or the committer is stopping, :class:`Unavailable`
is raised and the receiver answers 503 with ``Retry-After``: OTLP exporters retry, and a repeat that was in
fact stored is recognized as a duplicate.

One request's data cannot fail the others' (group commit must not spread a failure): when a shared
transaction fails on something other than the store itself (:func:`~.store.store_failure`: disk full, I/O),
it is rolled back and each request is committed on its own, and a request that still fails, each of its
profiles on its own. A profile that cannot be stored even alone gets the outcome ``"store_error"`` (a
rejection, counted per model in the store's ``failures`` under the stage ``store`` and logged once), the
rest of its request is stored: nothing is answered 503 that a retry could not fix.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from ...profile import Profile
from .store import Store, store_failure

__all__ = ["Committer", "Unavailable"]

_log = logging.getLogger("servewatch.detect")


class Unavailable(Exception):
    """The store cannot take profiles right now (retry later)."""


class _Alone(Exception):
    """A shared transaction failed on its data: commit its requests one by one."""


class _Ticket:
    __slots__ = ("profiles", "finished", "outcomes", "error")

    def __init__(self, profiles: Sequence[Profile]) -> None:
        self.profiles = profiles
        self.finished = False
        self.outcomes: list[str] = []
        self.error: str | None = None


class Committer:
    """The writer in front of a :class:`Store`; see the module docstring."""

    def __init__(self, store: Store, *, clock: Callable[[], float], max_pending: int = 1024,
                 max_batch: int = 512, timeout: float = 30.0) -> None:
        self.store = store
        self.clock = clock
        self.max_pending = max_pending
        self.max_batch = max_batch
        self.timeout = timeout
        self._turn = threading.Condition(threading.Lock())
        self._queue: list[_Ticket] = []
        self._leading = False
        self._accepting = False
        self.commits = 0
        self.failure: str | None = None
        """Why the last commit failed (the store's error), None since one succeeded: the detector's readiness."""

    def start(self) -> Committer:
        self._accepting = True
        return self

    def submit(self, profiles: Sequence[Profile]) -> list[str]:
        """Store ``profiles``; returns one outcome each (see :meth:`Store.write`)."""
        if not profiles:
            return []
        ticket = _Ticket(profiles)
        deadline = time.monotonic() + self.timeout
        with self._turn:
            if not self._accepting:
                raise Unavailable("the detector is shutting down")
            if len(self._queue) >= self.max_pending:
                raise Unavailable("too many requests waiting for the store")
            self._queue.append(ticket)
            while not ticket.finished:
                if not self._leading:
                    self._lead()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if ticket in self._queue:
                        self._queue.remove(ticket)
                    raise Unavailable("the store did not commit in time")
                self._turn.wait(remaining)
        if ticket.error is not None:
            raise Unavailable(ticket.error)
        return ticket.outcomes

    def stop(self, timeout: float = 30.0) -> None:
        """Refuse new work; wait (up to ``timeout``) until what is queued is committed."""
        with self._turn:
            self._accepting = False
            self._turn.wait_for(lambda: not self._queue and not self._leading, timeout)

    def _lead(self) -> None:
        """Commit the queued tickets as one batch (called and returning with the lock held)."""
        batch: list[_Ticket] = []
        count = 0
        while self._queue and (not batch or count + len(self._queue[0].profiles) <= self.max_batch):
            ticket = self._queue.pop(0)
            batch.append(ticket)
            count += len(ticket.profiles)
        self._leading = True
        self._turn.release()
        try:
            self._commit(batch)
        finally:
            self._turn.acquire()
            self._leading = False
            self._turn.notify_all()

    def _commit(self, batch: list[_Ticket]) -> None:
        profiles = [profile for ticket in batch for profile in ticket.profiles]
        try:
            try:
                outcomes: list[str] | None = self._write(profiles, alone=len(batch) == 1)
            except _Alone:
                outcomes = None
            if outcomes is None:  # one request's data failed the group: each request alone, then each profile
                for ticket in batch:
                    ticket.outcomes = self._write(ticket.profiles, alone=True)
                    ticket.finished = True
                return
        except Exception as error:  # the store itself (or a bug): never wedge the committer
            waiting = [ticket for ticket in batch if not ticket.finished]
            if store_failure(error):
                _log.error("cannot store %d profiles: %s", len(profiles), error)
                self.failure = f"the store cannot commit: {error}"
                self._fail(waiting, self.failure)
            else:
                _log.exception("storing %d profiles failed", len(profiles))
                self._fail(waiting, f"internal error while storing: {error}")
            return
        start = 0
        for ticket in batch:
            ticket.outcomes = outcomes[start:start + len(ticket.profiles)]
            ticket.finished = True
            start += len(ticket.profiles)

    def _write(self, profiles: Sequence[Profile], *, alone: bool) -> list[str]:
        """``store.write`` in one transaction. When the data fails it: raise :class:`_Alone` unless ``alone``
        (the caller retries its requests apart), else write each profile apart, ``"store_error"`` for those
        that fail even so. A failure of the store itself propagates."""
        try:
            outcomes = self.store.write(profiles, self.clock())
            self.commits += 1
            self.failure = None  # the store commits again (what /readyz waits for)
            return outcomes
        except Exception as error:
            if store_failure(error):
                raise
            failure = error
        if not alone:
            raise _Alone() from failure
        if len(profiles) > 1:  # outside the handler: a profile's own failure is logged without the request's
            return [outcome for profile in profiles for outcome in self._write([profile], alone=True)]
        self.store.failures.record("store", profiles[0].model, profiles[0].signal, failure)
        return ["store_error"]

    @staticmethod
    def _fail(batch: list[_Ticket], reason: str) -> None:
        for ticket in batch:
            ticket.error = reason
            ticket.finished = True
