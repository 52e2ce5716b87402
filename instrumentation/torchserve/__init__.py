"""servewatch for TorchServe: latency, errors, batch sizes, queue time, and drift profiles of every model served.

Usage::

    pip install 'servewatch[torchserve]'
    export SERVEWATCH_SPEC=servewatch.yaml                  # optional: names and types the features
    export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318  # where `servewatch detect` listens (the default)
    opentelemetry-instrument torchserve --start --ts-config config.properties

Nothing else changes: not the handlers, not the model archives. ``opentelemetry-instrument`` puts its
``sitecustomize`` on ``PYTHONPATH``; TorchServe's frontend starts every worker
(``ts/model_service_worker.py``) with that environment, and this instrumentor, found through the
``opentelemetry_instrumentor`` entry point ``servewatch_torchserve``, hooks the worker once it imports
``ts.service``. In code, ``TorchServeInstrumentor().instrument()`` before TorchServe's worker imports does the
same; ``uninstrument()`` restores everything. ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=servewatch_torchserve``
or ``SERVEWATCH_DISABLED=true`` turns it off.

What every worker reports, per model (``ml.model.name`` = the TorchServe model name, ``ml.framework`` =
``torchserve``), as OTLP metrics and profiles (see :mod:`servewatch.instrumentation.torchserve.service`):

- ``servewatch.inference.duration`` (per request, the wall time of the batch it was part of),
  ``servewatch.inference.requests`` (by ``outcome``: a handler that raised, or a 4xx/5xx answer, is ``error``),
  ``servewatch.inference.batch.size`` (the batches TorchServe formed: ``batchSize``/``maxBatchDelay``);
- input and prediction profiles: for ``BaseHandler``-style handlers the tensor ``inference`` receives (after
  ``preprocess``) and what it returns (before ``postprocess``); for function handlers the request payloads and
  the returned list. The spec's ``source`` picks and names the columns (``{index: 0}`` = column 0 of the
  ``(N, F)`` input tensor); without a spec they are named ``f0``, ``f1``, ...; value counters
  ``servewatch.input.*`` / ``servewatch.prediction.*``;
- ``servewatch.inference.queue.time``: the time requests waited in the frontend's queue, read from
  TorchServe's metrics API when it runs in Prometheus mode: add ``metrics_mode=prometheus`` to
  ``config.properties`` (the metrics API is on by default at ``metrics_address``, ``http://127.0.0.1:8082``);
  ``SERVEWATCH_TORCHSERVE_METRICS_URL`` names another address, or ``none``
  (:mod:`servewatch.instrumentation.torchserve.frontend`).

Every worker is its own producer (its own ``service.instance.id``): two workers of a model send two streams,
which the detector merges. The ``torchserve`` launcher and TorchServe's periodic metric collector
(``ts/metrics/metric_collector.py``) load this instrumentor too but never predict, so they create no
exporter, start no thread and send nothing. Not covered: models whose model-config YAML sets
``asyncCommunication: true`` (the asynchronous workers of the LLM engines), which replace ``predict`` per
service with a coroutine.

Environment: ``SERVEWATCH_SPEC``, ``SERVEWATCH_PROFILE_INTERVAL`` (s, 60), ``SERVEWATCH_SPOOL_DIR``,
``SERVEWATCH_MAX_COLUMNS`` (64), ``SERVEWATCH_DISABLED``, ``SERVEWATCH_TORCHSERVE_METRICS_URL``, and the
standard ``OTEL_*`` variables (endpoint, headers, service name, ``OTEL_METRIC_EXPORT_INTERVAL``);
see :mod:`servewatch.instrumentation.settings`.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar

from servewatch.instrumentation.instrumentor import ServewatchInstrumentor

from .package import _instruments

__all__ = ["TorchServeInstrumentor"]


class TorchServeInstrumentor(ServewatchInstrumentor):
    """Hooks ``ts.service.Service.predict`` (and, per model, the handler's ``inference``) in TorchServe workers.

    ``instrument()`` only registers an import hook for ``ts.service`` (or patches it at once if it is imported):
    cheap and inert in processes that never serve. ``uninstrument()`` also undoes the per-model wraps.
    """

    framework: ClassVar[str] = "torchserve"
    instruments: ClassVar[tuple[str, ...]] = _instruments

    def _patch(self, **kwargs: Any) -> None:
        self.wrap("ts.service", "Service.predict", f"{__name__}.service:predict_wrapper")  # imported with ts.service

    def _uninstrument(self, **kwargs: Any) -> None:
        super()._uninstrument(**kwargs)
        service = sys.modules.get(f"{__name__}.service")  # never imported: nothing was attached
        if service is not None:
            service.detach_all()
