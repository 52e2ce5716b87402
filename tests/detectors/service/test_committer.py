"""Group commit: concurrent submitters share transactions, each gets its own outcomes, stopping refuses work."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable

import pytest
from servewatch.detectors.service import Store, Unavailable
from servewatch.detectors.service.committer import Committer

from servewatch.profile import Profile

T0 = 1_700_002_800.0


def test_concurrent_submitters_share_commits_and_get_their_own_outcomes(store_factory: Callable[..., Store]) -> None:
    store = store_factory(bucket=1.0, retention=3600.0)
    committer = Committer(store, clock=lambda: T0 + 10).start()
    results: dict[int, list[str]] = {}

    def submit(worker: int) -> None:
        for sequence in range(25):
            profile = Profile("m", "input", start=T0, end=T0 + 5, producer=f"w{worker}", sequence=sequence)
            profile.update({"x": [float(worker)]})
            repeat = Profile("m", "input", start=T0, end=T0 + 5, producer=f"w{worker}", sequence=sequence)
            results.setdefault(worker, []).extend(committer.submit([profile, repeat]))

    threads = [threading.Thread(target=submit, args=(worker,)) for worker in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(outcomes == ["accepted", "duplicate"] * 25 for outcomes in results.values())
    assert len(results) == 8
    merged = store.merged("m", "input", T0, T0 + 10, T0 + 10)
    assert merged is not None and merged.rows == 8 * 25
    committer.stop()
    with pytest.raises(Unavailable, match="shutting down"):
        committer.submit([Profile("m", "input", start=T0, end=T0 + 5)])


def test_a_failing_store_fails_the_batch_and_the_next_one_works(store_factory: Callable[..., Store],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store = store_factory(bucket=1.0, retention=3600.0)
    committer = Committer(store, clock=time.time).start()
    original = store.write
    monkeypatch.setattr(store, "write", lambda profiles, now: (_ for _ in ()).throw(sqlite3.OperationalError("full")))
    with pytest.raises(Unavailable, match="cannot commit: full"):
        committer.submit([Profile("m", "input", start=time.time() - 1, end=time.time())])
    monkeypatch.setattr(store, "write", original)
    assert committer.submit([Profile("m", "input", start=time.time() - 1, end=time.time())]) == ["accepted"]


def test_a_poisoned_request_fails_alone_in_a_group_commit(store_factory: Callable[..., Store]) -> None:
    """One request whose profile cannot be stored (its rows overflow the bucket's 64-bit count) shares
    transactions with innocent ones: they are all stored, and of the poisoned request only that profile is
    refused (``store_error``), never a 503 for anyone."""
    store = store_factory(bucket=1.0, retention=3600.0)
    committer = Committer(store, clock=lambda: T0 + 10).start()
    gate = threading.Barrier(9)
    results: dict[str, list[str]] = {}
    errors: list[Exception] = []

    def submit(name: str, profiles: list[Profile]) -> None:
        gate.wait()
        try:
            results[name] = committer.submit(profiles)
        except Unavailable as error:
            errors.append(error)

    def innocent(worker: int, sequence: int) -> Profile:
        return Profile("m", "input", start=T0, end=T0 + 5, producer=f"w{worker}", sequence=sequence).update(
            {"x": [1.0, 2.0]})

    poison = Profile("m", "input", start=T0, end=T0 + 5, producer="hostile", sequence=1).update({"x": [1.0]})
    poison.rows = 2**63 - 1
    assert committer.submit([innocent(99, 0)]) == ["accepted"]   # the bucket holds rows: the poison overflows it
    threads = [threading.Thread(target=submit, args=(f"w{worker}", [innocent(worker, s) for s in range(20)]))
               for worker in range(8)]
    threads.append(threading.Thread(target=submit, args=("hostile", [innocent(100, 0), poison, innocent(100, 1)])))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results.pop("hostile") == ["accepted", "store_error", "accepted"]
    assert results == {f"w{worker}": ["accepted"] * 20 for worker in range(8)}
    merged = store.merged("m", "input", T0, T0 + 10, T0 + 10)
    assert merged is not None and merged.rows == 2 * (1 + 8 * 20 + 2)
    assert store.failures.counts == {("m", "store"): 1}
    committer.stop()
