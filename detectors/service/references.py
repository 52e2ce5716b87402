"""What each window is compared against: the spec's reference, resolved for one (model, signal).

Usage (inside the evaluator)::

    references = References(store, windows)
    found = references.get(series, model_spec, window, loader, index, now)
    found.profile          # None until the reference exists; found.reason then says why
    found.description      # "file refs/fraud.pb", "first 1h of traffic", ...

The four kinds (``reference:`` in the spec):

- ``file``: a profile file written by ``servewatch reference`` (the OTLP wire form, decoded strictly). The
  profiles of the window's signal are merged; a file holding several models is matched by model name, a file
  holding one model serves whatever name the spec gives it. The file is read again when it changes on disk.
- ``range``: a pinned time range of the detector's own history, merged once the range is sealed and then
  kept in the store, so it outlives the retention.
- ``offset``: the same window one ``offset`` back (e.g. ``7d`` for weekly seasonality), moving with it, at
  the resolution kept for that age.
- ``warmup`` (the default when the spec names no reference): the first ``warmup`` (default 1h) of traffic
  the detector saw for that model and signal, counted from the bucket of the first profile it accepted. It
  is merged once that period is sealed and kept in the store: a restart, and the retention, keep it.

A reference is complete or absent, never partial. Offset, range and warm-up references stand for a stretch of
the detector's own history, and exist only once that stretch is wholly held: it starts at or after the first
bucket of the series (``Series.first_seen``: the detector holds nothing from before), its newest bucket is
sealed (``grace`` after its end: no late data is expected), and it is still within the retention. An offset
reference becomes ready once the series is ``window + offset`` old; a range that starts before the series'
first bucket, or that fell out of the retention before it was kept, never becomes one (the reason says so).
A warm-up starts at the first bucket, so it is complete once sealed.

Until a reference exists the window is not evaluated; only its sample counts are exported. ``Found.pending``
tells a reference that will exist on its own in time (not complete yet) from one that needs a person (a file
that cannot be read, a range the detector does not hold).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Hashable
from dataclasses import dataclass

from ...duration import format_duration
from ...errors import ProfileError
from ...profile import Profile
from ...spec import ModelSpec, Reference
from ...spec import Window
from ...wire import decode_profiles
from .buckets import BucketIndex, merge_into
from .store import Series, Store
from .windows import Loader, MergedWindow, Windows

__all__ = ["Found", "References"]

_log = logging.getLogger("servewatch.detect")


@dataclass(frozen=True)
class Found:
    """A resolved reference: ``profile`` (None while it does not exist, with ``reason``; ``pending`` when it
    will exist once time passes), a ``description`` for people, and a ``token`` that changes whenever the
    profile does."""

    source: Profile | MergedWindow | None
    description: str
    reason: str | None = None
    token: Hashable = None
    pending: bool = False

    @property
    def profile(self) -> Profile | None:
        """The reference profile (an offset reference's window is merged on first use)."""
        return self.source.profile if isinstance(self.source, MergedWindow) else self.source


class References:
    """Resolves and caches references; see the module docstring."""

    def __init__(self, store: Store, windows: Windows) -> None:
        self.store = store
        self.windows = windows
        self._files: dict[str, tuple[tuple[float, int], dict[tuple[str | None, str], Profile] | str]] = {}
        self._saved: dict[tuple[str, str, str], Profile] = {}

    def get(self, series: Series, spec: ModelSpec, window: Window, loader: Loader,
            index: BucketIndex, now: float) -> Found:
        reference = spec.reference
        if reference.kind == "file":
            return self._file(reference.path or "", series)
        if reference.kind == "offset":
            return self._offset(reference, series, window, loader, index, now)
        if reference.kind == "range":
            start, end = float(reference.start or 0.0), float(reference.end or 0.0)
            return self._pinned(series, f"range:{start!r}:{end!r}", start, end, now,
                                f"pinned range {_iso(start)} .. {_iso(end)}")
        start = series.first_seen
        return self._pinned(series, f"warmup:{reference.warmup!r}", start, start + reference.warmup, now,
                            f"first {format_duration(reference.warmup)} of traffic")

    # -- file ---------------------------------------------------------------------------------------------------

    def _file(self, path: str, series: Series) -> Found:
        description = f"file {path}"
        try:
            status = os.stat(path)
            stamp = (status.st_mtime, status.st_size)
        except OSError as error:
            return Found(None, description, f"cannot read reference file {path}: {error.strerror or error}")
        cached = self._files.get(path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, _read_file(path))
            self._files[path] = cached
            if isinstance(cached[1], str):
                _log.error("%s", cached[1])
        profiles = cached[1]
        if isinstance(profiles, str):
            return Found(None, description, profiles)
        profile = profiles.get((series.model, series.signal)) or profiles.get((None, series.signal))
        if profile is None:
            return Found(None, description, f"reference file {path} holds no {series.signal} profile")
        return Found(profile, description, token=(path, stamp))

    # -- offset ---------------------------------------------------------------------------------------------

    def _offset(self, reference: Reference, series: Series, window: Window, loader: Loader,
                index: BucketIndex, now: float) -> Found:
        offset = float(reference.offset or 0.0)
        description = f"same {window.name} window {format_duration(offset)} earlier"
        hi = now - offset
        lo = hi - window.seconds
        layout = self.store.layout
        if not layout.sealed(layout.bucket_start(hi), 0, now):
            return Found(None, description, f"the offset ({format_duration(offset)}) is shorter than the "
                                            f"detector's grace ({format_duration(layout.grace + layout.bucket)}): "
                                            "the past window is never sealed")
        ready = series.first_seen + offset + window.seconds  # the series is then as old as the past window
        if now < ready:
            return Found(None, description, f"reference not complete yet: the window {format_duration(offset)} "
                                            f"back is not wholly held; ready in {_wait(ready - now)}",
                         pending=True)
        if lo < layout.cutoff(len(layout.tiers) - 1, now):
            return Found(None, description, f"the window {format_duration(offset)} back is older than the "
                                            f"retention ({format_duration(layout.retention)})")
        found = self.windows.profile((series.model, series.signal, window.name, "offset"), loader, index, lo, hi,
                                     now)
        if found.empty:
            return Found(None, description, f"no data from {format_duration(offset)} ago", pending=True)
        return Found(found, description, token=found.signature)

    # -- range and warmup -----------------------------------------------------------------------------------

    def _pinned(self, series: Series, key: str, start: float, end: float, now: float, description: str) -> Found:
        name = (series.model, series.signal, key)
        profile = self._saved.get(name)
        if profile is None:
            profile = self.store.reference(series.model, series.signal, key)
            if profile is None:
                layout = self.store.layout
                if start < series.first_seen:
                    return Found(None, description, f"the reference period starts at {_iso(start)}, before the "
                                                    f"detector's first data of {series.model}/{series.signal} "
                                                    f"({_iso(series.first_seen)}): it would be partial")
                ready = end + layout.grace
                if now < ready:
                    return Found(None, description, f"reference not complete yet: ready in {_wait(ready - now)}",
                                 pending=True)
                if start < layout.cutoff(len(layout.tiers) - 1, now):
                    return Found(None, description, f"the reference period starts at {_iso(start)}, older than "
                                                    f"the retention ({format_duration(layout.retention)})")
                profile = self.store.merged(series.model, series.signal, start, end, now)
                if profile is None:
                    return Found(None, description, "the detector holds no data for the reference period")
                self.store.save_reference(profile, key, now)
            self._saved[name] = profile
        return Found(profile, description, token=key)


def _read_file(path: str) -> dict[tuple[str | None, str], Profile] | str:
    """(model, signal) -> merged profile, and (None, signal) when the file holds one model only; or the
    error text."""
    try:
        with open(path, "rb") as handle:
            profiles = decode_profiles(handle.read())
    except (OSError, ProfileError) as error:
        return f"reference file {path} cannot be used: {error}"
    merged: dict[tuple[str | None, str], Profile] = {}
    for profile in profiles:
        key = (profile.model, profile.signal)
        merged[key] = merge_into(merged[key], profile) if key in merged else profile
    if len({model for model, _ in merged}) == 1:
        merged.update({(None, signal): profile for (_, signal), profile in list(merged.items())})
    return merged


def _wait(seconds: float) -> str:
    return format_duration(max(round(seconds), 1))


def _iso(t: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
