"""Merged profiles of sliding windows, kept up to date without re-merging every bucket each evaluation.

Usage (inside the evaluator)::

    windows = Windows(store)
    loader = Loader(store, "fraud", "input")                 # one per series and evaluation
    index = store.index("fraud", "input", since)
    found = windows.profile(("fraud", "input", "1h"), loader, index, now - 3600, now, now)
    found.signature                                          # which bucket versions it holds
    found.profile                                            # merged on first use; None: no bucket

A window's buckets (see :meth:`Layout.cover <servewatch.detectors.service.tiers.Layout.cover>`) split into
*sealed* ones, which no longer change, and the few recent *open* ones. The sealed ones come in runs, one per
tier and side of the window (e.g. for 1h: minutes at the old end, ten-minute buckets, minutes at the new
end), and the merge of each run is kept: unchanged, it is reused; when buckets only joined it, they are
merged in; when one left (the window slid past it) or changed (late data), that run alone is merged again.
So sliding a window by a minute re-merges the few minute buckets at its old end, not the whole window. The
runs' merge is kept too; each evaluation copies it and merges in the open buckets, merged once per series
(all windows of a series end with the same open buckets). ``signature`` names exactly which bucket
versions a window holds, so the evaluator can skip a comparison whose inputs did not change.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from ...profile import Profile
from .buckets import BucketIndex, merge_into
from .store import Store

__all__ = ["Loader", "MergedWindow", "Windows"]

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


class MergedWindow:
    """One window of one series as the detector holds it (the spec's window is :class:`servewatch.spec.Window`):
    the bucket versions it holds (``signature``), and its merged ``profile`` (None: no bucket), merged only when
    first asked for: an evaluation that finds the signature unchanged never merges it."""

    __slots__ = ("signature", "_build", "_profile")

    def __init__(self, signature: tuple[tuple[Key, ...], tuple[Key, ...]],
                 build: Callable[[], Profile | None]) -> None:
        self.signature = signature
        self._build: Callable[[], Profile | None] | None = build
        self._profile: Profile | None = None

    @property
    def empty(self) -> bool:
        """True when no bucket lies in the window."""
        return not (self.signature[0] or self.signature[1])

    @property
    def profile(self) -> Profile | None:
        if self._build is not None:
            self._profile, self._build = self._build(), None
        return self._profile


class _Part:
    """The merge of some buckets, and which (tier, start, version) they were."""

    __slots__ = ("keys", "profile")

    def __init__(self) -> None:
        self.keys: tuple[Key, ...] = ()
        self.profile: Profile | None = None

    def update(self, keys: tuple[Key, ...], loader: Loader) -> bool:
        """Bring the merge to ``keys``: nothing to do, merge the new buckets in, or merge them all again.
        True when it had to start over."""
        if keys == self.keys:
            return False
        known = set(self.keys)
        rebuilt = self.profile is None or not known.issubset(keys)
        if rebuilt:
            self.profile, known = None, set()
        for key in keys:
            if key not in known:
                profile = loader(key)
                if profile is not None:
                    self.profile = profile.copy() if self.profile is None else merge_into(self.profile, profile)
        self.keys = keys
        return rebuilt and bool(known or keys)


class _Entry:
    __slots__ = ("parts", "keys", "sealed", "used")

    def __init__(self) -> None:
        self.parts: dict[tuple[int, int], _Part] = {}
        self.keys: tuple[tuple[tuple[int, int], tuple[Key, ...]], ...] = ()
        self.sealed: Profile | None = None
        self.used = True


class Windows:
    """The cached sealed part of every window (and offset reference) the evaluator asks for."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.layout = store.layout
        self._entries: dict[Hashable, _Entry] = {}
        self.rebuilds = 0
        """How many times a run of a window's sealed buckets was merged again from scratch (for benchmarks)."""

    def profile(self, name: Hashable, loader: Loader, index: BucketIndex, lo: float,
                hi: float, now: float) -> MergedWindow:
        """The merged window ``(lo, hi]`` of ``loader``'s series at ``now``; ``name`` keys its cache entry."""
        runs: list[tuple[tuple[int, int], tuple[Key, ...]]] = []
        open_: list[Key] = []
        seen: dict[int, int] = {}
        for span in self.layout.cover(lo, hi, now):
            keys = index.select([span])
            sealed = tuple(key for key in keys if self.layout.sealed(key[1], key[0], now))
            open_.extend(key for key in keys if not self.layout.sealed(key[1], key[0], now))
            if sealed:
                ordinal = seen[span.tier] = seen.get(span.tier, -1) + 1
                runs.append(((span.tier, ordinal), sealed))
        entry = self._entries.get(name)
        if entry is None:
            entry = self._entries[name] = _Entry()
        entry.used = True
        sealed_keys = tuple(key for _, keys in runs for key in keys)
        return MergedWindow((sealed_keys, tuple(open_)),
                            lambda: self._merge(entry, tuple(runs), tuple(open_), loader))

    def _merge(self, entry: _Entry, runs: tuple[tuple[tuple[int, int], tuple[Key, ...]], ...],
               open_: tuple[Key, ...], loader: Loader) -> Profile | None:
        if runs != entry.keys:
            parts = {}
            for part_name, keys in runs:
                part = entry.parts.get(part_name) or _Part()
                self.rebuilds += part.update(keys, loader)
                parts[part_name] = part
            entry.parts, entry.keys = parts, runs
            profiles = [part.profile for part in parts.values() if part.profile is not None]
            entry.sealed = profiles[0] if len(profiles) == 1 else None
            if len(profiles) > 1:
                entry.sealed = profiles[0].copy()
                for profile in profiles[1:]:
                    merge_into(entry.sealed, profile)
        window = entry.sealed
        recent = loader.merged(open_) if open_ else None
        if recent is not None:
            window = merge_into(window.copy(), recent) if window is not None else recent.copy()
        return window

    def sweep(self) -> None:
        """Forget windows not asked for since the last sweep (models that went away, changed specs)."""
        for name in [name for name, entry in self._entries.items() if not entry.used]:
            del self._entries[name]
        for entry in self._entries.values():
            entry.used = False
