"""The store's bucket encoding: exact round trips, and damage is caught before the sketches are touched."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from servewatch.detectors import ks
from servewatch.detectors.service.codec import StoreCorrupt, decode_bucket, encode_bucket

from servewatch.profile import Profile


def test_round_trip_keeps_counts_sketches_and_interval(profile: Callable[..., Profile]) -> None:
    original = profile(end=1_700_000_060.0, rows=500, seed=3)
    original.columns["amount"].update([None, float("inf"), "oops"])
    decoded = decode_bucket(encode_bucket(original))
    assert (decoded.model, decoded.signal, decoded.rows, decoded.start, decoded.end) == \
        (original.model, original.signal, original.rows, original.start, original.end)
    for name, column in original.columns.items():
        twin = decoded.columns[name]
        assert (twin.kind, twin.count, twin.missing, twin.non_finite, twin.invalid) == \
            (column.kind, column.count, column.missing, column.non_finite, column.invalid)
    assert ks(original.columns["amount"], decoded.columns["amount"], min_samples=1).value == 0.0
    assert decoded.columns["country"].categories() == original.columns["country"].categories()


def test_every_single_byte_change_is_detected(profile: Callable[..., Profile]) -> None:
    data = encode_bucket(profile(end=1_700_000_060.0, rows=50))
    rng = random.Random(1)
    for position in list(range(min(len(data), 400))) + rng.sample(range(len(data)), 200):
        damaged = bytearray(data)
        damaged[position] ^= 1 << rng.randrange(8)
        with pytest.raises(StoreCorrupt):
            decode_bucket(bytes(damaged))
    for cut in (0, 3, 8, 12, len(data) // 2, len(data) - 1):
        with pytest.raises(StoreCorrupt):
            decode_bucket(data[:cut])
