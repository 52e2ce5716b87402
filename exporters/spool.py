"""The file spool: closed profiles written to a directory instead of sent over the network.

Usage::

    from servewatch.exporters.spool import SpoolProfileExporter, read_spool

    spool = SpoolProfileExporter("/var/spool/servewatch", resource)   # SERVEWATCH_SPOOL_DIR does this for you
    spool.export([inputs, predictions])
    for path, profile in read_spool("/var/spool/servewatch"):          # oldest first
        ...
    parse_spool_name(path.name)      # SpoolName(end_ms, producer, model, signal, sequence), or None

One file per profile, ``<end ms>-<producer>-<model>-<signal>-<sequence>.pb``, holding exactly the bytes a
network exporter would POST to ``/v1/logs`` (a serialized OTLP ``ExportLogsServiceRequest`` with this process's
resource), so ``Profile.from_bytes(path.read_bytes())`` reads it and ``curl --data-binary @file`` replays it.
Names are unique and reversible: in the producer and model names every character but ``A-Za-z0-9._=+`` is
percent-encoded (its UTF-8 bytes; ``-``, the separator, is ``%2D``), so ``a/b``, ``a_b`` and ``a:b`` get
names of their own and :func:`parse_spool_name` gives the names back. Names that would be longer than
:data:`MAX_NAME_LENGTH` bytes keep a readable prefix of each name and end in ``~<digest>`` (a hash of the
producer, model, signal, sequence and interval): still unique, and the file itself says the rest.
A profile the wire refuses is left out (``export`` raises its ProfileError once the others are written).
A file appears whole or not at all: it is written under a hidden temporary name in the same directory, flushed
and renamed; a directory that was removed is made again. A write that fails (disk full, permissions) leaves
the profile pending for the next export;
past ``capacity`` pending profiles the oldest are dropped and counted, as with the network exporters.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

from opentelemetry.sdk.resources import Resource

from servewatch.profile import Profile
from servewatch.wire import encode_profiles

from .profiles import DEFAULT_CAPACITY, ProfileExporter
from .resource import scalar_attributes

__all__ = ["MAX_NAME_LENGTH", "SpoolName", "SpoolProfileExporter", "parse_spool_name", "read_spool", "spool_name"]

MAX_NAME_LENGTH = 200
"""Bytes of a spool file name at most (file systems allow 255; the temporary name adds a few)."""
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._=+")
_NAME = re.compile(r"(\d{13,})-([^-]*)-([^-]+)-([a-z]+)-(\d{8,})\.pb")
_PARTIAL_ESCAPE = re.compile(r"%[0-9A-F]?$")


class SpoolName(NamedTuple):
    """What a spool file's name says: ``end_ms`` (the interval's end, milliseconds), producer, model, signal,
    sequence."""

    end_ms: int
    producer: str
    model: str
    signal: str
    sequence: int


class SpoolProfileExporter(ProfileExporter):
    """Writes each profile to ``directory`` (created if needed) as one ``.pb`` file."""

    def __init__(self, directory: str | os.PathLike[str], resource: Resource, *, capacity: int = DEFAULT_CAPACITY,
                 on_drop: Callable[[int], None] | None = None) -> None:
        super().__init__(capacity=capacity, batch=1, on_drop=on_drop)
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._resource = scalar_attributes(resource)

    def _queue(self, profiles: Sequence[Profile]) -> None:
        self._outbox.put(self._encoded(profiles, lambda profile: (spool_name(profile),
                                                                  encode_profiles([profile], self._resource))))

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
    """The file name of ``profile`` in a spool: sortable by time, unique, reversible (:func:`parse_spool_name`)
    while under :data:`MAX_NAME_LENGTH` bytes."""
    end = profile.end if profile.end is not None else profile.start
    stamp, producer, model = f"{int(end * 1000):013d}", _quote(profile.producer or ""), _quote(profile.model)
    tail = f"{profile.signal}-{profile.sequence:08d}"
    name = f"{stamp}-{producer}-{model}-{tail}.pb"
    if len(name) <= MAX_NAME_LENGTH:
        return name
    identity = "\0".join((profile.producer or "", profile.model, profile.signal, str(profile.sequence),
                          repr(float(profile.start)), repr(float(end))))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:24]
    room = (MAX_NAME_LENGTH - len(f"{stamp}---{tail}~{digest}.pb")) // 2
    producer, model = (_PARTIAL_ESCAPE.sub("", part[:room]) for part in (producer, model))
    return f"{stamp}-{producer}-{model}-{tail}~{digest}.pb"


def parse_spool_name(name: str) -> SpoolName | None:
    """What a name from :func:`spool_name` says; None for a name cut short (``~<digest>``) or not a spool file's."""
    found = _NAME.fullmatch(name)
    if found is None:
        return None
    stamp, producer, model, signal, sequence = found.groups()
    try:
        return SpoolName(int(stamp), unquote(producer, errors="strict"), unquote(model, errors="strict"), signal,
                         int(sequence))
    except UnicodeDecodeError:  # not a name spool_name made
        return None


def _quote(text: str) -> str:
    return "".join(char if char in _SAFE else "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
                   for char in text)


def read_spool(directory: str | os.PathLike[str]) -> Iterator[tuple[Path, Profile]]:
    """``(path, profile)`` for every finished file in ``directory``, oldest first (raises ProfileError on a bad
    file, naming it)."""
    from servewatch.errors import ProfileError

    for path in sorted(Path(directory).glob("[0-9]*.pb")):
        try:
            yield path, Profile.from_bytes(path.read_bytes())
        except ProfileError as error:
            raise ProfileError(f"{path}: {error}", error.reason) from None
