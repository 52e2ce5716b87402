"""The verdict of a demo run: per phase, what had to be flagged, what was, how fast, and which pages came.

Usage::

    delivered = pages(webhook.received(), plan, replayer.started, hold=6.0)     # hold: the alerts' `for`
    results = outcomes(plan, replayer.started, timeline, delivered)
    print(format_summary(results))
    json.dump(summary_document(results, run_info), open("summary.json", "w"), indent=2)
    all(result.ok for result in results)        # the demo's exit status

A phase owns the evaluations from its start to the next phase's start (its drift and its recovery). It
passes when its expected columns were each critical at least once in that span, no other column was, the
detector evaluated it at all, and its last evaluation had nothing critical left (the flags cleared).
``summary.json`` holds the same, machine-readable, with the pages Alertmanager delivered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .phases import Schedule
from .stack import Notification
from .timeline import Timeline

__all__ = ["Outcome", "Page", "describe", "format_summary", "grouped", "outcomes", "pages", "summary_document"]


@dataclass(frozen=True)
class Page:
    """A firing alert Alertmanager delivered to the ``pager`` (critical) or ``tickets`` (warning) webhook,
    ``after`` seconds after the phase it belongs to began."""

    receiver: str
    alertname: str
    model: str
    feature: str
    signal: str
    severity: str
    statistic: str
    phase: int
    phase_name: str
    after: float


def pages(notifications: Sequence[Notification], plan: Schedule, started: float, hold: float) -> list[Page]:
    """The firing notifications, each with its phase: the one in which its alert's condition began to hold
    (``startsAt`` minus the rule's ``for``, ``hold``; the arrival time where Alertmanager sent no
    ``startsAt``). Alertmanager batches new alerts of a group every ``group_interval``, so a page may arrive
    after its phase ended."""
    found = []
    for note in notifications:
        if note.status != "firing":
            continue
        began = note.starts - hold if note.starts is not None else note.at
        at = plan.at(began - started)
        if at is None:
            continue
        labels = note.labels
        found.append(Page(note.receiver, labels.get("alertname", "?"), labels.get("model", ""),
                          labels.get("feature", ""), labels.get("signal", ""), labels.get("severity", ""),
                          labels.get("statistic", ""), at.index, at.phase.name,
                          note.at - (started + plan.starts()[at.index])))
    return found


@dataclass
class Outcome:
    """One phase's result; see the module docstring."""

    name: str
    kind: str
    title: str
    seconds: float
    recovery: float
    expected: tuple[str, ...]
    flagged: dict[str, float] = field(default_factory=dict)
    """column -> seconds after the phase began when it was first critical."""
    peaks: dict[str, tuple[str, float, float]] = field(default_factory=dict)
    """column -> (statistic, value, value / critical) at its worst evaluation."""
    evaluations: int = 0
    cleared: bool = True
    cleared_after: float | None = None
    """Seconds from the end of the drift to the first evaluation after which nothing was critical again
    (None when nothing was critical)."""
    pages: list[Page] = field(default_factory=list)
    tickets: int = 0

    @property
    def missing(self) -> list[str]:
        return [name for name in self.expected if name not in self.flagged]

    @property
    def unexpected(self) -> list[str]:
        return [name for name in self.flagged if name not in self.expected]

    @property
    def ok(self) -> bool:
        return self.evaluations > 0 and not self.missing and not self.unexpected and self.cleared

    @property
    def time_to_flag(self) -> float | None:
        """Seconds until the first expected column was flagged."""
        times = [self.flagged[name] for name in self.expected if name in self.flagged]
        return min(times) if times else None

    def problems(self) -> list[str]:
        found = []
        if self.evaluations == 0:
            found.append("the detector did not evaluate during this phase")
        if self.missing:
            found.append(f"not flagged: {', '.join(self.missing)}")
        if self.unexpected:
            found.append(f"flagged but not drifted: {', '.join(self.unexpected)}")
        if not self.cleared:
            found.append("still critical when the next phase began")
        return found


def grouped(delivered: Sequence[Page]) -> list[tuple[Page, list[str]]]:
    """One entry per alert, model, feature and phase (the first page, and the statistics that paged)."""
    groups: dict[tuple[str, str, str, int], tuple[Page, list[str]]] = {}
    for page in delivered:
        first, statistics = groups.setdefault((page.alertname, page.model, page.feature, page.phase), (page, []))
        if page.statistic and page.statistic not in statistics:
            statistics.append(page.statistic)
    return list(groups.values())


def describe(page: Page, statistics: Sequence[str]) -> str:
    """``ServewatchInputDrift critical weather/precipitation (ks, psi) +9.4 s after instantaneous began``"""
    return (f"{page.alertname} {page.severity} {page.model}/{page.feature or '-'} ({', '.join(statistics) or '-'}) "
            f"+{page.after:.1f} s after {page.phase_name} began")


def outcomes(plan: Schedule, started: float, timeline: Timeline, delivered: Sequence[Page] = ()) -> list[Outcome]:
    """Judge every phase of ``plan``, whose replay began at wall-clock ``started``."""
    results = []
    for index, (phase, offset) in enumerate(zip(plan.phases, plan.starts())):
        since, until = started + offset, started + offset + phase.total
        outcome = Outcome(phase.name, phase.kind, phase.title, phase.seconds, phase.recovery, phase.expected)
        evaluated = [(at, readings) for at, readings in timeline.between(since, until)
                     if any(reading.score > 0 for reading in readings.values())]
        outcome.evaluations = len(evaluated)
        outcome.flagged = {name: at - since for name, at in timeline.critical(since, until).items()}
        outcome.peaks = {name: (reading.worst, reading.worst_value, reading.score)
                         for name, (_at, reading) in timeline.worst(since, until).items() if reading.worst}
        if evaluated and phase.recovery > 0:
            outcome.cleared = not any(reading.critical for reading in evaluated[-1][1].values())
        last = max((at for at, readings in evaluated if any(r.critical for r in readings.values())), default=None)
        if last is not None:
            later = [at for at, _ in evaluated if at > last]
            outcome.cleared_after = (later[0] if later else until) - (since + phase.seconds)
        outcome.pages = [page for page in delivered if page.phase == index and page.receiver == "pager"]
        outcome.tickets = sum(1 for page in delivered if page.phase == index and page.receiver == "tickets")
        results.append(outcome)
    return results


def summary_document(results: list[Outcome], info: dict[str, Any]) -> dict[str, Any]:
    """The content of ``summary.json``."""
    return {
        **info,
        "ok": all(result.ok for result in results),
        "phases": [{
            "name": r.name, "kind": r.kind, "title": r.title, "seconds": r.seconds, "recovery": r.recovery,
            "expected": list(r.expected), "flagged": sorted(r.flagged), "ok": r.ok, "problems": r.problems(),
            "time_to_flag": r.time_to_flag,
            "first_flagged": {name: round(after, 2) for name, after in r.flagged.items()},
            "peaks": {name: {"statistic": stat, "value": round(value, 4), "of_critical": round(score, 3)}
                      for name, (stat, value, score) in r.peaks.items()},
            "evaluations": r.evaluations, "cleared": r.cleared,
            "cleared_after": None if r.cleared_after is None else round(r.cleared_after, 2), "tickets": r.tickets,
            "pages": [{"alertname": p.alertname, "feature": p.feature, "signal": p.signal, "severity": p.severity,
                       "statistic": p.statistic, "after": round(p.after, 2)} for p in r.pages],
        } for r in results],
    }


def format_summary(results: list[Outcome]) -> str:
    """The per-phase table printed at the end."""
    header = ["phase", "expected to flag", "flagged (critical), seconds into the phase", "paged", "verdict"]
    rows = [header]
    for r in results:
        flagged = ", ".join(f"{name} {r.flagged[name]:.1f}s" for name in sorted(r.flagged, key=lambda name: r.flagged[name]))
        paged = ", ".join(sorted({page.feature for page in r.pages if page.feature}))
        rows.append([r.name, ", ".join(r.expected) or "-", flagged or "-", paged or "-",
                     "ok" if r.ok else "FAILED: " + "; ".join(r.problems())])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths) + "  " + "-" * 7)
    return "\n".join(lines)
