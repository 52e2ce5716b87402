"""Buckets in memory: a bucket's merged profile, an index of a series' buckets, and a merge that never fails.

Usage::

    from servewatch.detectors.service.buckets import BucketIndex, merge_into

    index = BucketIndex(rows)                  # (tier, start, version) rows of one series
    index.select(layout.cover(lo, hi, now))    # [(tier, start, version), ...] of a window, oldest first
    merge_into(window, bucket)                 # Profile.merge, leaving out columns that changed kind
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ...profile import Profile
from .tiers import Span

__all__ = ["Bucket", "BucketIndex", "Changes", "merge_into"]

_log = logging.getLogger("servewatch.detect")


@dataclass
class Bucket:
    """A bucket's merged profile and bookkeeping (``version`` changes with every write)."""

    profile: Profile
    version: int
    rolled: bool
    id: int | None = None


class Changes:
    """The buckets one store transaction read (``buckets``) and changed (``touched``), by
    (model, signal, tier, start), and the columns it left out per model (``dropped``)."""

    __slots__ = ("buckets", "dropped", "touched")

    def __init__(self) -> None:
        self.buckets: dict[tuple[str, str, int, float], Bucket] = {}
        self.touched: set[tuple[str, str, int, float]] = set()
        self.dropped: Counter[str] = Counter()

    def changed(self) -> list[tuple[tuple[str, str, int, float], Bucket]]:
        return [(key, self.buckets[key]) for key in self.touched]


def merge_into(target: Profile, source: Profile) -> Profile:
    """``target.merge(source)``, leaving out the columns whose kind differs between the two (a column that
    changed from numeric to categorical, or back, keeps the kind it had first); never raises for that."""
    mine = target.columns
    conflicts = [name for name, column in source.columns.items() if name in mine and mine[name].kind != column.kind]
    if conflicts:
        _log.warning("%s/%s: column(s) %s changed kind; the later values are left out of merged buckets",
                     target.model, target.signal, ", ".join(sorted(conflicts)))
        source = source.copy()
        for name in conflicts:
            del source.columns[name]
    return target.merge(source)


class BucketIndex:
    """The buckets of one series: per tier, starts (sorted) and versions; see :meth:`Store.index`."""

    __slots__ = ("_starts", "_versions")

    def __init__(self, rows: Iterable[tuple[int, float, int]]) -> None:
        tiers: dict[int, list[tuple[float, int]]] = {}
        for tier, start, version in rows:
            tiers.setdefault(tier, []).append((start, version))
        self._starts: dict[int, list[float]] = {}
        self._versions: dict[int, list[int]] = {}
        for tier, items in tiers.items():
            items.sort()
            self._starts[tier] = [start for start, _ in items]
            self._versions[tier] = [version for _, version in items]

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __len__(self) -> int:
        return sum(len(starts) for starts in self._starts.values())

    def starts(self, tier: int) -> list[float]:
        """The starts of the tier's buckets, in order."""
        return list(self._starts.get(tier, ()))

    def select(self, spans: Sequence[Span]) -> list[tuple[int, float, int]]:
        """(tier, start, version) of the buckets that ``spans`` cover, oldest first."""
        chosen: list[tuple[int, float, int]] = []
        for span in spans:
            starts = self._starts.get(span.tier)
            if not starts:
                continue
            versions = self._versions[span.tier]
            for i in range(bisect_left(starts, span.first), bisect_left(starts, span.stop)):
                chosen.append((span.tier, starts[i], versions[i]))
        chosen.sort(key=lambda item: (item[1], -item[0]))
        return chosen
