"""The bounded pending queue: order, drop-oldest with counts, nothing lost that was not dropped."""

from __future__ import annotations

import threading

import pytest
from servewatch.exporters.outbox import Outbox


def test_delivers_in_order_in_batches() -> None:
    outbox: Outbox[int] = Outbox(capacity=10)
    outbox.put(range(7))
    sent: list[list[int]] = []
    assert outbox.deliver(lambda items: sent.append(items) or True, batch=3) == 7
    assert sent == [[0, 1, 2], [3, 4, 5], [6]] and len(outbox) == 0


def test_a_failed_send_keeps_the_items_for_later() -> None:
    outbox: Outbox[int] = Outbox(capacity=10)
    outbox.put([1, 2, 3])
    assert outbox.deliver(lambda items: False) == 0 and len(outbox) == 3

    def explode(items: list[int]) -> bool:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        outbox.deliver(explode)
    assert len(outbox) == 3
    received: list[int] = []
    outbox.deliver(lambda items: received.extend(items) or True)
    assert received == [1, 2, 3]


def test_past_capacity_the_oldest_are_dropped_and_counted() -> None:
    drops: list[int] = []
    outbox: Outbox[int] = Outbox(capacity=3, on_drop=drops.append)
    assert outbox.put(range(5)) == 2
    assert outbox.put([5]) == 1
    assert outbox.dropped == 3 and drops == [2, 1]
    received: list[int] = []
    outbox.deliver(lambda items: received.extend(items) or True)
    assert received == [3, 4, 5]
    with pytest.raises(ValueError):
        Outbox(capacity=0)


def test_items_put_while_a_slow_send_runs_are_neither_lost_nor_sent_twice() -> None:
    outbox: Outbox[int] = Outbox(capacity=4)
    outbox.put([0, 1])
    started, release = threading.Event(), threading.Event()
    received: list[int] = []

    def slow(items: list[int]) -> bool:
        started.set()
        release.wait(5)
        received.extend(items)
        return True

    worker = threading.Thread(target=lambda: outbox.deliver(slow, batch=2))
    worker.start()
    started.wait(5)
    outbox.put([2, 3, 4])          # over capacity while 0 and 1 are in flight: 0 leaves the queue (counted)
    release.set()
    worker.join(5)
    outbox.deliver(lambda items: received.extend(items) or True)
    assert received == [0, 1, 2, 3, 4] and outbox.dropped == 1 and len(outbox) == 0
