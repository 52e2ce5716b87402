"""The file spool: closed profiles written to a directory instead of sent over the network.

Usage::

    from servewatch.exporters.spool import SpoolProfileExporter, read_spool

    spool = SpoolProfileExporter("/var/spool/servewatch", resource)   # SERVEWATCH_SPOOL_DIR does this for you
    spool.export([inputs, predictions])
    for path, profile in read_spool("/var/spool/servewatch"):          # oldest first
        ...

One file per profile, ``<end ms>-<producer>-<model>-<signal>-<sequence>.pb``, holding exactly the bytes a
network exporter would POST to ``/v1/logs`` (a serialized OTLP ``ExportLogsServiceRequest`` with this process's
resource), so ``Profile.from_bytes(path.read_bytes())`` reads it and ``curl --data-binary @file`` replays it.
A file appears whole or not at all: it is written under a hidden temporary name in the same directory, flushed
and renamed; a directory that was removed is made again. A write that fails (disk full, permissions) leaves
the profile pending for the next export;
past ``capacity`` pending profiles the oldest are dropped and counted, as with the network exporters.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from opentelemetry.sdk.resources import Resource

from servewatch.profile import Profile
from servewatch.wire import encode_profiles

from .profiles import DEFAULT_CAPACITY, ProfileExporter
from .resource import scalar_attributes

__all__ = ["SpoolProfileExporter", "read_spool", "spool_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")


class SpoolProfileExporter(ProfileExporter):
    """Writes each profile to ``directory`` (created if needed) as one ``.pb`` file."""

    def __init__(self, directory: str | os.PathLike[str], resource: Resource, *, capacity: int = DEFAULT_CAPACITY,
                 on_drop: Callable[[int], None] | None = None) -> None:
        super().__init__(capacity=capacity, batch=1, on_drop=on_drop)
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._resource = scalar_attributes(resource)

    def _queue(self, profiles: Sequence[Profile]) -> None:
        self._outbox.put((spool_name(profile), encode_profiles([profile], self._resource)) for profile in profiles)

    def _send(self, items: list[tuple[str, bytes]]) -> bool:
        for name, data in items:
            temporary = self.directory / f".{name}.tmp"
            try:
                self.directory.mkdir(parents=True, exist_ok=True)   # a cleanup job may have removed it
                with open(temporary, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temporary, self.directory / name)
            except OSError:
                try:
                    temporary.unlink(missing_ok=True)
                except OSError:
                    pass
                return False
        return True


def spool_name(profile: Profile) -> str:
    """The file name of ``profile`` in a spool: sortable by time, unique per producer and sequence."""
    end = profile.end if profile.end is not None else profile.start
    model = _UNSAFE.sub("_", profile.model)[:100]
    producer = _UNSAFE.sub("_", profile.producer or "unknown")[:64]
    return f"{int(end * 1000):013d}-{producer}-{model}-{profile.signal}-{profile.sequence:08d}.pb"


def read_spool(directory: str | os.PathLike[str]) -> Iterator[tuple[Path, Profile]]:
    """``(path, profile)`` for every finished file in ``directory``, oldest first (raises ProfileError on a bad
    file, naming it)."""
    from servewatch.errors import ProfileError

    for path in sorted(Path(directory).glob("[0-9]*.pb")):
        try:
            yield path, Profile.from_bytes(path.read_bytes())
        except ProfileError as error:
            raise ProfileError(f"{path}: {error}") from None
