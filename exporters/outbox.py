"""A bounded queue of items waiting for delivery: while the receiver is down the oldest are dropped and counted.

Usage::

    from servewatch.exporters.outbox import Outbox

    outbox = Outbox(capacity=256, on_drop=lambda n: print("dropped", n))
    outbox.put(records)                          # past capacity the oldest items go (on_drop hears how many)
    outbox.deliver(send, batch=16)               # send(list) -> bool, oldest first; stops at the first failure
    len(outbox), outbox.dropped                  # still pending; dropped so far

Delivery keeps order and never loses an item it did not drop: a batch leaves the outbox only after ``send``
returned True for it. ``put`` and ``deliver`` may run on different threads; ``send`` runs without the lock held,
so a slow receiver never blocks ``put``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Generic, TypeVar

__all__ = ["Outbox"]

T = TypeVar("T")


class Outbox(Generic[T]):
    """At most ``capacity`` pending items, oldest first."""

    def __init__(self, capacity: int = 256, *, on_drop: Callable[[int], None] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.dropped = 0
        self._on_drop = on_drop
        self._items: deque[tuple[int, T]] = deque()
        self._next_id = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, items: Iterable[T]) -> int:
        """Queue ``items``; returns how many of the oldest pending items were dropped to make room."""
        dropped = 0
        with self._lock:
            for item in items:
                self._items.append((self._next_id, item))
                self._next_id += 1
                if len(self._items) > self.capacity:
                    self._items.popleft()
                    dropped += 1
            self.dropped += dropped
        if dropped and self._on_drop is not None:
            self._on_drop(dropped)
        return dropped

    def deliver(self, send: Callable[[list[T]], bool], *, batch: int = 16) -> int:
        """Send pending items in batches of at most ``batch``, oldest first, until none is left or ``send``
        fails (returns False or raises: the exception propagates, the items stay). Returns how many left."""
        delivered = 0
        while True:
            with self._lock:
                chunk = list(islice(self._items, batch))
            if not chunk or not send([item for _, item in chunk]):
                return delivered
            last = chunk[-1][0]
            with self._lock:  # items dropped meanwhile by put() are gone already; remove what was sent
                while self._items and self._items[0][0] <= last:
                    self._items.popleft()
            delivered += len(chunk)
