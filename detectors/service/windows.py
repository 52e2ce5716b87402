"""Merged profiles of sliding windows, kept up to date without re-merging every bucket each evaluation.

Usage (inside the evaluator)::

    windows = Windows(store)
    loader = Loader(store, "fraud", "input")                 # one per series and evaluation
    index = store.index("fraud", "input", since)
    found = windows.profile(("fraud", "input", "1h"), loader, index, now - 3600, now, now)
    found.profile, found.signature                           # None when the window holds no bucket

A window's buckets (see :meth:`Layout.cover <servewatch.detectors.service.tiers.Layout.cover>`) split into
*sealed* ones, which no longer change, and the few recent *open* ones. The merge of the sealed buckets is
kept per window: unchanged, it is reused; when buckets only joined it, they are merged in; when one left
(the window slid past it) or changed (late data), it is rebuilt. Each evaluation then copies it and merges
in the open buckets, merged once per series (all windows of a series end with the same open buckets).
``signature`` names exactly which bucket versions a window holds, so the evaluator can skip a comparison
whose inputs did not change.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from ...profile import Profile
from .store import BucketIndex, Store, merge_into

__all__ = ["Loader", "Window", "Windows"]

Key = tuple[int, float, int]
"""(tier, start, version) of one bucket."""


class Loader:
    """Reads a series' buckets for one evaluation, each (tier, start, version) at most once."""

    def __init__(self, store: Store, model: str, signal: str) -> None:
        self.store = store
        self.model = model
        self.signal = signal
        self._loaded: dict[Key, Profile | None] = {}
        self._merged: dict[tuple[Key, ...], Profile | None] = {}

    def merged(self, keys: tuple[Key, ...]) -> Profile | None:
        """The buckets ``keys`` merged (shared by every window holding exactly these open buckets)."""
        if keys not in self._merged:
            merged: Profile | None = None
            for profile in map(self, keys):
                if profile is not None:
                    merged = profile.copy() if merged is None else merge_into(merged, profile)
            self._merged[keys] = merged
        return self._merged[keys]

    def __call__(self, key: Key) -> Profile | None:
        if key not in self._loaded:
            # a newer version than the key's is fine: the next evaluation sees it in the index and rebuilds
            found = self.store.load(self.model, self.signal, key[0], key[1])
            self._loaded[key] = found[1] if found is not None else None
        return self._loaded[key]


@dataclass(frozen=True)
class Window:
    """A window's merged profile (None: no bucket) and the bucket versions it was built from."""

    profile: Profile | None
    signature: tuple[tuple[Key, ...], tuple[Key, ...]]


class _Entry:
    __slots__ = ("sealed", "keys", "used")

    def __init__(self) -> None:
        self.sealed: Profile | None = None
        self.keys: tuple[Key, ...] = ()
        self.used = True


class Windows:
    """The cached sealed part of every window (and offset reference) the evaluator asks for."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.layout = store.layout
        self._entries: dict[Hashable, _Entry] = {}
        self.rebuilds = 0
        """How many times a window's sealed part was merged again from its buckets (for benchmarks)."""

    def profile(self, name: Hashable, loader: Loader, index: BucketIndex, lo: float,
                hi: float, now: float) -> Window:
        """The merged window ``(lo, hi]`` of ``loader``'s series at ``now``; ``name`` keys its cache entry."""
        keys = index.select(self.layout.cover(lo, hi, now))
        sealed = tuple(key for key in keys if self.layout.sealed(key[1], key[0], now))
        open_ = tuple(key for key in keys if not self.layout.sealed(key[1], key[0], now))
        entry = self._entries.get(name)
        if entry is None:
            entry = self._entries[name] = _Entry()
        entry.used = True
        if sealed != entry.keys:
            known = set(entry.keys)
            if entry.sealed is not None and known.issubset(sealed):
                fresh = [key for key in sealed if key not in known]
            else:
                self.rebuilds += 1
                entry.sealed, fresh = None, list(sealed)
            for key in fresh:
                profile = loader(key)
                if profile is not None:
                    entry.sealed = profile.copy() if entry.sealed is None else merge_into(entry.sealed, profile)
            entry.keys = sealed
        window = entry.sealed
        recent = loader.merged(open_) if open_ else None
        if recent is not None:
            window = merge_into(window.copy(), recent) if window is not None else recent.copy()
        return Window(window, (sealed, open_))

    def sweep(self) -> None:
        """Forget windows not asked for since the last sweep (models that went away, changed specs)."""
        for name in [name for name, entry in self._entries.items() if not entry.used]:
            del self._entries[name]
        for entry in self._entries.values():
            entry.used = False
