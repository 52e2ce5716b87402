"""Failures inside the instrumentation: counted, logged once per kind, never raised into the request.

Usage::

    from servewatch.instrumentation import guard

    @guard("torchserve.postprocess")          # a hook: an exception is counted and swallowed (returns None)
    def after_predict(context, outputs): ...

    with guard("triton.scrape"):              # a block inside a hook
        totals = scrape(url)

    errors.report("triton.scrape", error)     # what guard does, for code that handles the exception itself

Every failure increments the ``servewatch.instrumentation.errors`` counter with attribute ``error.type`` =
the kind (a short, fixed name such as ``extract.input``: where it failed, never the message, so the label stays
bounded) and is logged on the ``servewatch.instrumentation`` logger the first time its kind is seen in the
process, with the traceback (a :class:`~servewatch.ServewatchError`, such as a bad ``SERVEWATCH_SPEC``: its
reason's first line alone). The framework's own exceptions must never pass through a guard: call the
wrapped function outside it and let its exceptions propagate untouched.

Kinds used by the core: ``record`` (the recorder itself), ``record.argument`` (a duration, batch size or
request count that is not a number), ``extract.input`` / ``extract.prediction`` (a value could not be turned
into columns; ``unsupported.input`` / ``unsupported.prediction`` for a type nobody expected),
``profile.update`` (gathered rows could not be profiled), ``profile.close``, ``spec`` (``SERVEWATCH_SPEC``
could not be loaded: automatic columns are used), ``export.setup``, ``export.profiles`` (a delivery failed;
the profiles stay pending), ``export.metrics``, ``export.shutdown``, ``profiles.dropped`` (pending profiles
dropped while the receiver was unreachable, counted per profile), ``runtime`` and ``flush`` (the background
thread), ``queue_time``, ``metrics.source`` (a bridge's metrics registered with ``register_metrics``),
``gpu``, ``model.limit`` (more models than the recorder keeps), ``monitor`` (the generic API's argument
handling), ``<framework>.hook`` (``observe``'s callables), ``<framework>.instrument`` (patching).
"""

from __future__ import annotations

import logging
import threading
from contextlib import ContextDecorator
from types import TracebackType

from servewatch.errors import ServewatchError
from servewatch.metrics import INSTRUMENTATION_ERRORS

__all__ = ["Errors", "errors", "guard"]

log = logging.getLogger("servewatch.instrumentation")


class Errors:
    """Per-kind failure counts of this process (read by the ``servewatch.instrumentation.errors`` counter)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def report(self, kind: str, error: BaseException | None = None, count: int = 1) -> None:
        """Count ``count`` failures of ``kind``; log the first of each kind. Never raises."""
        try:
            with self._lock:
                first = kind not in self._counts
                self._counts[kind] = self._counts.get(kind, 0) + count
            if first:
                ours = isinstance(error, ServewatchError)  # its reason is the whole story: one line, no traceback
                reason = f"{type(error).__name__}: {str(error).splitlines()[0] if ours else error}" \
                    if error is not None else f"see {INSTRUMENTATION_ERRORS.name}"
                log.warning("servewatch: %s failed (%s); serving is not affected, further failures of this kind are "
                            "only counted (%s{error.type=%r})", kind, reason, INSTRUMENTATION_ERRORS.name, kind,
                            exc_info=error if isinstance(error, Exception) and not ours else None)
        except Exception:  # logging misconfigured; counting is all we can do, and we must not raise
            pass

    def counts(self) -> dict[str, int]:
        """Kind -> failures so far."""
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        """Forget everything (a forked child starts from zero, under its own ``service.instance.id``)."""
        self._counts = {}
        self._lock = threading.Lock()


errors = Errors()
"""This process's failure counts."""


class guard(ContextDecorator):  # noqa: N801 - used like a keyword: ``with guard(...)``, ``@guard(...)``
    """Run a block or function; an ``Exception`` is reported under ``kind`` and swallowed."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __enter__(self) -> guard:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> bool:
        if error is None or not isinstance(error, Exception):
            return False
        errors.report(self.kind, error)
        return True
