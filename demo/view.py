"""The demo's terminal view: redrawn in place on a terminal, plain lines otherwise (no dependency).

Usage::

    view = make_view(sys.stdout, live=True)        # LiveView on a TTY, LineView elsewhere, EventView if not live
    view.event("instantaneous: precipitation arrives in inches")
    view.update(status)                           # once a second: progress, the table, pages
    view.close()

``LiveView`` redraws one block (progress, per column the KS ± its sketch bound or L∞, D1, PSI and the
severity, what would page now, the pages Alertmanager delivered, the latest events) by moving the cursor back
up over the previous one. ``LineView`` prints events as they happen and a one-line status every few
seconds, for logs and CI. ``EventView`` (``--no-live``) prints only events.
"""

from __future__ import annotations

import shutil
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TextIO

from .phases import At, Schedule
from .summary import Page, describe, grouped
from .timeline import Reading

__all__ = ["EventView", "LineView", "LiveView", "Status", "View", "make_view"]

_COLOUR = {"critical": "\x1b[1;31m", "warning": "\x1b[33m", "ok": "\x1b[32m"}
_RESET = "\x1b[0m"


@dataclass
class Status:
    """What the view shows; built by the demo once a second."""

    plan: Schedule
    model: str
    interval: float
    elapsed: float
    requests: int
    rows: int
    at: At | None
    readings: dict[str, Reading] = field(default_factory=dict)
    pages: list[Page] = field(default_factory=list)
    """Pages delivered so far (critical alerts on the pager webhook)."""
    alerting: bool = False


class View:
    """Prints events only (the base of the other views)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def event(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def update(self, status: Status) -> None:
        pass

    def close(self) -> None:
        pass


class EventView(View):
    """``--no-live``: phase changes, pages and results only."""


class LineView(View):
    """A status line every ``every`` seconds between the events."""

    def __init__(self, stream: TextIO, every: float = 2.0) -> None:
        super().__init__(stream)
        self.every = every
        self._next = 0.0

    def update(self, status: Status) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.every
        critical = [f"{r.column} {r.worst}={r.worst_value:.3f}" for r in status.readings.values() if r.critical]
        warning = [r.column for r in status.readings.values() if r.severity == "warning"]
        self.event(f"[{status.elapsed:5.1f}s] {_where(status)}  {status.requests} requests  "
                   f"critical: {', '.join(critical) or '-'}  warning: {', '.join(warning) or '-'}")


class LiveView(View):
    """The block redrawn in place; see the module docstring."""

    def __init__(self, stream: TextIO, events: int = 6) -> None:
        super().__init__(stream)
        self.events: deque[str] = deque(maxlen=events)
        self._lines = 0
        self._status: Status | None = None

    def event(self, text: str) -> None:
        if self._status is None:  # before the block (set-up) and after it: plain lines
            super().event(text)
            return
        self.events.append(text)
        self.update(self._status)

    def update(self, status: Status) -> None:
        self._status = status
        size = shutil.get_terminal_size((120, 40))
        width = max(60, size.columns - 1)
        lines = [_clip(line, width) for line in frame(status, colour=True)]
        room = size.lines - 1 - len(lines) - 2  # a block taller than the terminal cannot be redrawn in place
        if room > 0:
            lines += ["", "events:", *(_clip("  " + text, width) for text in list(self.events)[-room:])]
        lines = lines[:max(size.lines - 1, 1)]
        up = f"\x1b[{self._lines}F\x1b[J" if self._lines else ""
        self.stream.write(up + "\n".join(lines) + "\n")
        self.stream.flush()
        self._lines = len(lines)

    def close(self) -> None:
        self._status = None


def make_view(stream: TextIO, *, live: bool) -> View:
    """The view for ``stream``: live redraws on a terminal, status lines elsewhere, events only if not ``live``."""
    if not live:
        return EventView(stream)
    return LiveView(stream) if stream.isatty() else LineView(stream)


def frame(status: Status, *, colour: bool = False) -> list[str]:
    """The lines of the live block."""
    plan = status.plan
    lines = [f"servewatch demo - model {status.model}, window {plan.window:g}s, evaluated every "
             f"{status.interval:g}s   {status.elapsed:5.1f} s of {plan.seconds:.0f} s   "
             f"{status.requests:,} requests ({status.rows:,} rows)"]
    at = status.at
    if at is not None:
        phase = at.phase
        if at.drifting:
            done = int(20 * (at.progress or 0.0))
            lines.append(f"phase {at.index + 1}/{len(plan.phases)} {phase.name}: {phase.title}")
            lines.append(f"  [{'#' * done}{'.' * (20 - done)}] {at.elapsed:4.1f} of {phase.seconds:g} s; "
                         f"expected to flag: {', '.join(phase.expected) or 'nothing'}")
        else:
            lines.append(f"phase {at.index + 1}/{len(plan.phases)} {phase.name}: recovering (baseline traffic) "
                         f"{at.elapsed - phase.seconds:4.1f} of {phase.recovery:g} s")
            lines.append("  the window slides past the drift; its flags clear")
    else:
        lines += ["starting...", ""]
    lines += ["", *_table(status.readings, colour)]
    paging = [f"{'ServewatchInputDrift' if r.signal == 'input' else 'ServewatchPredictionDrift'} "
              f"{status.model}/{r.column} ({r.worst} {r.worst_value:.3f})"
              for r in status.readings.values() if r.critical]
    lines += ["", "would page now (critical): " + ("; ".join(paging) or "nothing")]
    if status.alerting:
        lines.append("pages delivered (Prometheus -> Alertmanager -> webhook):")
        shown = grouped(status.pages)[-5:]
        for page, statistics in shown:
            lines.append("  " + describe(page, statistics))
        if not shown:
            lines.append("  none yet")
    return lines


def _table(readings: dict[str, Reading], colour: bool) -> list[str]:
    header = f"{'signal':10s} {'column':14s} {'n':>7s}  {'KS ± bound':>14s} {'L∞':>6s} {'D1':>6s} {'PSI':>7s}  severity"
    rows = [header, "-" * len(header)]
    for r in readings.values():
        ks = f"{r.ks:.3f} ± {r.bound or 0:.3f}" if r.ks is not None else ""
        severity = r.severity.upper() if r.critical else r.severity
        if colour:
            severity = f"{_COLOUR.get(r.severity, '')}{severity}{_RESET}"
        rows.append(f"{r.signal:10s} {r.column:14s} {r.samples:7d}  {ks:>14s} {_number(r.linf):>6s} "
                    f"{_number(r.d1):>6s} {_number(r.psi):>7s}  {severity}")
    if not readings:
        rows.append("(waiting for the first evaluation: a window needs its minimum of values)")
    return rows


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _where(status: Status) -> str:
    at = status.at
    if at is None:
        return "starting"
    if at.drifting:
        return f"{at.phase.name} {at.elapsed:4.1f}/{at.phase.seconds:g}s"
    return f"{at.phase.name} recovering"


def _clip(line: str, width: int) -> str:
    """Cut a line to the terminal width (a wrapped line would break the redraw), ignoring colour codes."""
    visible, out, i = 0, [], 0
    while i < len(line):
        if line[i] == "\x1b":
            end = line.find("m", i)
            out.append(line[i:end + 1])
            i = end + 1
            continue
        if visible >= width:
            break
        out.append(line[i])
        visible += 1
        i += 1
    return "".join(out) + (_RESET if "\x1b" in line else "")
