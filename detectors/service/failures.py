"""Failures of one model's part of the detector's work, contained to that model: counted, logged once, retried.

Usage::

    failures = Failures()
    try:
        roll_up(model, signal)
        failures.clear("maintain", model, signal)           # logs once that it works again
    except Exception as error:
        failures.record("maintain", model, signal, error)   # counted every time, logged on the first
    failures.counts                                          # {(model, stage): failures}

A model whose data makes a stage fail (a bucket that overflows when rolled up, a window that cannot be
compared) must not stop the other models: each stage runs per model and signal, and what fails is recorded
here and tried again at the next interval. The first failure of a run is logged with its traceback, the
repeats only counted (``servewatch_detector_model_failures_total{model, stage}``), so one broken model cannot
flood the log. Stages: ``maintain`` (roll-ups, :meth:`~.store.Store.maintain`), ``evaluate`` (windows and
comparisons) and ``store`` (a profile that cannot be stored even on its own, :mod:`.committer`); a failure of
the store as a whole is recorded under the model ``""``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from ...metrics import MODEL_FAILURES

__all__ = ["Failures"]

_log = logging.getLogger("servewatch.detect")


class Failures:
    """Counts of failures per (model, stage), and which (model, signal, stage) are failing now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[tuple[str, str]] = Counter()
        self._failing: set[tuple[str, str, str]] = set()

    def record(self, stage: str, model: str, signal: str, error: BaseException) -> None:
        """Count a failure; log it if this (model, signal, stage) was not failing already."""
        key = (model, signal, stage)
        with self._lock:
            self.counts[(model, stage)] += 1
            first = key not in self._failing
            self._failing.add(key)
        if first:
            where = f"{model}/{signal}" if model else "the store"
            _log.error("%s: %s failed (%s: %s); the other models go on. Further failures are counted in %s, "
                       "not logged", where, stage, type(error).__name__, error, MODEL_FAILURES, exc_info=error)

    def clear(self, stage: str, model: str, signal: str) -> None:
        """The (model, signal, stage) worked: log the recovery if it was failing."""
        if not self._failing:  # the usual case, without taking the lock
            return
        with self._lock:
            if (model, signal, stage) not in self._failing:
                return
            self._failing.discard((model, signal, stage))
        _log.warning("%s: %s works again", f"{model}/{signal}" if model else "the store", stage)
