"""A progress line on stderr for long reads.

Usage::

    from servewatch.progress import Progress

    with Progress("reading train.csv") as progress:
        for chunk in data.chunks(progress=progress):     # progress(fraction) after each chunk
            ...

On a terminal the line is redrawn in place once a read has taken a second; elsewhere (a log, a pipe) one line is
written every ``every`` seconds once the read has taken that long, so short reads print nothing at all.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

__all__ = ["Progress"]


class Progress:
    """Call it with the fraction done (0..1); ``close()`` (or leaving the ``with``) ends the line."""

    def __init__(self, label: str, *, stream: IO[str] | None = None, every: float = 10.0) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = 0.2 if self.tty else every
        self.start = time.monotonic()
        self._next = self.start + (1.0 if self.tty else every)
        self._drawn = False

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every
        line = f"{self.label}: {100 * fraction:3.0f}% ({now - self.start:.0f} s)"
        self.stream.write(f"\r{line}\033[K" if self.tty else line + "\n")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn and self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()
