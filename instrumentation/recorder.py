"""The recorder: one inference call -> request statistics and profile updates of its model.

Usage::

    from servewatch.instrumentation.recorder import Recorder

    recorder = Recorder(spec, max_columns=64)
    recorder.record("fraud", "python", inputs=x, outputs=y, duration=0.003, batch_size=None, outcome="ok",
                    requests=1)
    profiles = recorder.close(time.time())      # every model's closed input / prediction profiles

Per model there is one lock and one :class:`ModelState`: request statistics
(:class:`~servewatch.instrumentation.stats.RequestStats`), queue time, and the input and prediction
:class:`~servewatch.instrumentation.buffer.SignalBuffer`. Extraction runs before the lock is taken; under it a
call costs a few additions and, for small batches, one copy into a block. A failure to read the inputs or
the outputs is counted (``extract.input``, ``unsupported.prediction``, ...) and the rest of the call is still
recorded; nothing here raises into the caller except what the caller itself passes wrong (``record`` in
:mod:`servewatch.instrumentation.runtime` guards that too). At most :data:`MAX_MODELS` models are kept.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from servewatch import metrics as m
from servewatch.profile import Profile
from servewatch.spec import Spec
from servewatch.wire import Limits

from .buffer import SignalBuffer
from .extraction import Unsupported
from .guard import errors
from .sentinel import NOTHING
from .stats import RequestStats

__all__ = ["MAX_MODELS", "NOTHING", "ModelState", "Recorder"]

MAX_MODELS = 256
"""Models one process keeps state for; calls for further names are dropped and counted (``model.limit``)."""
_MAX_NAME = Limits().max_name_length


class ModelState:
    """Everything recorded for one model in this process."""

    __slots__ = ("name", "framework", "lock", "stats", "queue_seconds", "inputs", "predictions", "attributes",
                 "created", "calls")

    def __init__(self, name: str, framework: str, spec: Spec, max_columns: int, now: float) -> None:
        self.name = name
        self.framework = framework
        self.lock = threading.Lock()
        self.stats = RequestStats()
        self.queue_seconds = 0.0
        model_spec = spec.model(name)
        self.inputs = SignalBuffer(name, "input", spec=model_spec, max_columns=max_columns, start=now)
        self.predictions = SignalBuffer(name, "prediction", spec=model_spec, max_columns=max_columns, start=now)
        self.attributes = {m.MODEL_ATTRIBUTE: name, m.FRAMEWORK_ATTRIBUTE: framework}
        self.created = now
        self.calls = 0
        """Calls recorded (profile-only ones included), for telling whether anything happened since a flush."""


class Recorder:
    """Per-model state of one process."""

    def __init__(self, spec: Spec | None = None, *, max_columns: int = 64) -> None:
        self.spec = spec or Spec()
        self.max_columns = max_columns
        self._models: dict[str, ModelState] = {}
        self._lock = threading.Lock()
        self._discarded = False

    def states(self) -> list[ModelState]:
        """The models seen so far."""
        return list(self._models.values())

    def state(self, model: str, framework: str) -> ModelState | None:
        """The state of ``model`` (created on first use; None past :data:`MAX_MODELS`)."""
        state = self._models.get(model)
        if state is not None:
            return state
        with self._lock:
            state = self._models.get(model)
            if state is None:
                if self._discarded:
                    return None
                if len(self._models) >= MAX_MODELS:
                    errors.report("model.limit")
                    return None
                state = self._models[model] = ModelState(model, framework, self.spec, self.max_columns, time.time())
        return state

    def record(self, model: str, framework: str, inputs: Any = NOTHING, outputs: Any = NOTHING,
               duration: float | None = None, batch_size: int | None = None, outcome: str = "ok",
               requests: int | None = 1, route: str | None = None) -> None:
        """One inference call (see :func:`servewatch.instrumentation.record` for the arguments); ``requests=None``
        adds the profile rows only (:func:`servewatch.instrumentation.profile_rows`)."""
        if route is not None and (type(route) is not str or not 0 < len(route) <= _MAX_NAME):
            route = str(route)[:_MAX_NAME] or None  # "" (no route, as Ray says for handle calls) adds no label
        state = self._models.get(model)
        if state is None:
            if type(model) is not str or not 0 < len(model) <= _MAX_NAME:
                model = (str(model) or "default")[:_MAX_NAME]
            state = self.state(model, framework)
            if state is None:
                return
        in_batch = out_batch = None
        if inputs is not NOTHING:
            try:
                in_batch = state.inputs.extractor.extract(inputs)
            except Exception as error:
                _extraction_failed("input", error)
        if outputs is not NOTHING:
            try:
                out_batch = state.predictions.extractor.extract(outputs)
            except Exception as error:
                _extraction_failed("prediction", error)
        if batch_size is None:
            batch = in_batch or out_batch
            batch_size = batch[2] if batch is not None else None
        with state.lock:
            state.calls += 1
            if requests is not None:
                state.stats.add(outcome, duration, batch_size, requests, route)
            if in_batch is not None:
                state.inputs.add(in_batch)
            if out_batch is not None:
                state.predictions.add(out_batch)

    def add_queue_time(self, model: str, framework: str, seconds: float) -> None:
        """``seconds`` more spent queued by requests of ``model`` (ignored unless finite and positive)."""
        if not 0.0 < seconds < float("inf"):
            return
        state = self.state(str(model)[:_MAX_NAME] or "default", framework)
        if state is not None:
            with state.lock:
                state.queue_seconds += seconds

    def totals(self) -> tuple[Any, ...]:
        """A snapshot that changes whenever anything is recorded (calls, queue time, failures): equal snapshots
        mean the metrics have nothing new to say."""
        models = []
        for state in self.states():
            with state.lock:
                models.append((state.name, state.calls, state.queue_seconds))
        return tuple(models), sum(errors.counts().values())

    def discard(self) -> None:
        """Forget every model and keep none from now on (the process is ending: nothing recorded now could
        leave, and sketches still alive when the interpreter tears down make datasketches report leaks)."""
        with self._lock:
            self._discarded = True
            self._models = {}

    def close(self, now: float) -> list[Profile]:
        """End the interval of every model at ``now``; the closed profiles that hold rows."""
        closed: list[Profile] = []
        for state in self.states():
            with state.lock:
                for buffer in (state.inputs, state.predictions):
                    try:
                        profile = buffer.close(now)
                    except Exception as error:
                        errors.report("profile.close", error)
                        continue
                    if profile is not None:
                        closed.append(profile)
        return closed


def _extraction_failed(signal: str, error: Exception) -> None:
    errors.report(f"{'unsupported' if isinstance(error, Unsupported) else 'extract'}.{signal}", error)
