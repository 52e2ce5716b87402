"""The operator's log: what changed in the detector, one INFO line per change, never one per evaluation.

Usage (inside :class:`~.service.DetectorService`)::

    events = Events(spec)
    events.started()                     # at start: a reference file the spec names that cannot be read
    events.evaluated(results)            # after each evaluation: compared with the previous results
    events.rejected("malformed", "body is not ...")   # where rejections are counted; rate-limited

Lines on the ``servewatch.detect`` logger, as an operator reads them::

    model fraud: first profiles (input, prediction); windows 5m, 1h against first 10m of traffic
    fraud/input: reference not ready (reference not complete yet: ready in 9m 40s)
    fraud/input: reference ready (first 10m of traffic); evaluating windows 5m, 1h
    fraud/input 5m: amount ok -> critical (ks 0.412, psi 1.93)
    fraud/input 5m: amount critical -> ok
    rejected 12 profiles (corrupt_sketch) in the last 60s: profile fraud/input: kll sketch ...
    fraud/input: no reference (cannot read reference file refs/fraud.pb: No such file or directory)   [WARNING]

It is an observer: it keeps the previous evaluation's states (reference state per (model, signal, window),
severity per column and window) and logs the differences, so the evaluator and the receivers stay as they are.
A reference that counts down (``ready in ...``) changes its text every evaluation, not its state: one line.
Rejections come from many requests: :class:`Throttle` gives at most one line per reason per ``every`` seconds,
with the count since the last line (the rest is flushed on the next evaluation after the minute).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping

from ...duration import format_duration
from ...spec import Spec
from ..report import ColumnReport
from .evaluator import WindowResult

__all__ = ["Events", "Throttle"]

_log = logging.getLogger("servewatch.detect")

_SHOWN = ("ks", "linf", "d1", "psi")
"""The statistics a severity line quotes, where the column has them."""


class Throttle:
    """Counts occurrences per key and says when a line for that key is due: at most one per ``every`` seconds.

    ``add(key, count)`` returns the count to report now (the occurrences since the last line), or None while
    the key's minute is not over; ``due()`` returns the keys whose minute is over and whose count is waiting.
    """

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[Hashable, float] = {}
        self._pending: dict[Hashable, int] = {}

    def add(self, key: Hashable, count: int = 1) -> int | None:
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + count
            return self._take(key, self.clock())

    def due(self) -> list[tuple[Hashable, int]]:
        now = self.clock()
        with self._lock:
            taken = [(key, self._take(key, now)) for key in list(self._pending)]
        return [(key, count) for key, count in taken if count is not None]

    def _take(self, key: Hashable, now: float) -> int | None:
        if now - self._last.get(key, -self.every) < self.every:
            return None
        self._last[key] = now
        return self._pending.pop(key, None)


class Events:
    """Logs what an operator needs to know, once per change; see the module docstring."""

    def __init__(self, spec: Spec, *, every: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 log: logging.Logger = _log) -> None:
        self.spec = spec
        self.log = log
        self.throttle = Throttle(every, clock)
        self._messages: dict[str, str] = {}
        self._models: set[str] = set()
        self._references: dict[tuple[str, str, str], tuple[str, str | None]] = {}
        self._severities: dict[tuple[str, str, str, str], str] = {}
        self._lock = threading.Lock()

    def started(self) -> None:
        """Warn about each reference file the spec names that cannot be read (before any traffic arrives)."""
        for model in self.spec.models:
            path = model.reference.path if model.reference.kind == "file" else None
            if path and not os.access(path, os.R_OK):
                reason = "no such file" if not os.path.exists(path) else "not readable"
                self.log.warning("model %s: reference file %s: %s; its windows are not evaluated until it can be "
                                 "read", model.name, path, reason)

    def rejected(self, reason: str, message: str, count: int = 1) -> None:
        """``count`` profiles were rejected for ``reason`` (``message``: what the producer was told)."""
        with self._lock:
            self._messages[reason] = message
        self._report(reason, self.throttle.add(reason, count))

    def evaluated(self, results: Mapping[tuple[str, str, str], WindowResult]) -> None:
        """Compare ``results`` with the previous evaluation's and log every change."""
        with self._lock:
            self._new_models(list(results.values()))
            self._reference_changes(results)
            self._severity_changes(results.values())
        for reason, count in self.throttle.due():
            self._report(str(reason), count)

    # -- the changes --------------------------------------------------------------------------------------------

    def _new_models(self, results: list[WindowResult]) -> None:
        signals: dict[str, list[str]] = {}
        for result in results:
            if result.model not in self._models:
                signals.setdefault(result.model, [])
                if result.signal not in signals[result.model]:
                    signals[result.model].append(result.signal)
        for model, names in signals.items():
            self._models.add(model)
            spec = self.spec.model(model)
            listed = "" if self.spec.has_model(model) else "; not in the spec: automatic columns, default windows"
            self.log.info("model %s: first profiles (%s); windows %s against %s%s", model, ", ".join(sorted(names)),
                          ", ".join(window.name for window in spec.windows), _reference_text(results, model),
                          listed)

    def _reference_changes(self, results: Mapping[tuple[str, str, str], WindowResult]) -> None:
        lines: dict[tuple[str, str, str, str | None], list[str]] = {}
        for key, result in results.items():
            state = _reference_state(result)
            before = self._references.get(key, ("", None))
            if before == state or (before[0] == state[0] == "waiting"):   # a countdown: same state, new text
                continue
            self._references[key] = state
            lines.setdefault((result.model, result.signal, *state), []).append(result.window.name)
        for (model, signal, verdict, reason), windows in lines.items():
            if verdict == "ready":
                self.log.info("%s/%s: reference ready (%s); evaluating windows %s", model, signal,
                              results[(model, signal, windows[0])].reference, ", ".join(windows))
            elif verdict == "waiting":
                self.log.info("%s/%s: reference not ready (%s); windows %s show sample counts only", model, signal,
                              reason, ", ".join(windows))
            else:
                self.log.warning("%s/%s: no reference (%s); windows %s are not evaluated", model, signal, reason,
                                 ", ".join(windows))

    def _severity_changes(self, results: Iterable[WindowResult]) -> None:
        for result in results:
            if result.report is None:
                continue
            changes = []
            for name, column in result.report.columns.items():
                key = (result.model, result.signal, result.window.name, name)
                before = self._severities.get(key, "ok")
                self._severities[key] = column.severity
                if column.severity != before:
                    changes.append(f"{name} {before} -> {column.severity}{_why(column)}")
            for name, rule in result.report.rules.items():
                key = (result.model, result.signal, result.window.name, f"rule:{name}")
                severity = "warning" if rule.violated else "ok"
                before = self._severities.get(key, "ok")
                self._severities[key] = severity
                if severity != before:
                    changes.append(f"{name} rule {'violated' if rule.violated else 'holds again'}"
                                   f"{f' ({rule.value:.3g}, limit {rule.limit})' if rule.value is not None else ''}")
            if changes:
                self.log.info("%s/%s %s: %s", result.model, result.signal, result.window.name, "; ".join(changes))

    def _report(self, reason: str, count: int | None) -> None:
        if not count:
            return
        with self._lock:
            message = self._messages.get(reason, "")
        self.log.warning("rejected %d profile%s (%s) in the last %s: %s", count, "s" * (count != 1), reason,
                         format_duration(self.throttle.every), message)


def _reference_state(result: WindowResult) -> tuple[str, str | None]:
    """("ready" | "waiting" | "missing", why): a countdown keeps its state while its text changes."""
    if result.report is not None:
        return "ready", None
    reason = result.reason or "no reference yet"
    waiting = reason.startswith("reference not complete") or reason.startswith("no data from")
    return ("waiting" if waiting else "missing"), reason


def _reference_text(results: Iterable[WindowResult], model: str) -> str:
    return next((result.reference for result in results if result.model == model), "its reference")


def _why(column: ColumnReport) -> str:
    statistics = column.statistics
    shown = [f"{name} {statistics[name].value:.3g}" for name in _SHOWN
             if name in statistics and statistics[name].value is not None]
    broken = [name for name, rule in column.rules.items() if rule.violated]
    parts = shown + [f"rule {name} violated" for name in broken]
    return f" ({', '.join(parts)})" if parts else ""
