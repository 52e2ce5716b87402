"""Instrumentation inside serving processes: what each model receives and answers, as mergeable profiles and
OpenTelemetry metrics, at a cost of a few microseconds per call and never an exception in a request.

Usage (any Python server)::

    from servewatch.instrumentation import monitor

    @monitor("fraud")                        # profiles the first argument and the return value
    def predict(features):                   # sync or async; a numpy array, tensor, DataFrame, dicts, lists ...
        return model.predict_proba(features)

    with monitor("fraud") as call:           # or say it yourself
        call.inputs = features
        call.outputs = model.predict(features)

Run it with ``servewatch detect`` listening on ``localhost:4318`` (the OTLP default) or point
``OTEL_EXPORTER_OTLP_ENDPOINT`` elsewhere. Configuration is environment only
(:mod:`~servewatch.instrumentation.settings`): ``SERVEWATCH_SPEC``, ``SERVEWATCH_PROFILE_INTERVAL`` (60 s),
``SERVEWATCH_SPOOL_DIR``, ``SERVEWATCH_MAX_COLUMNS`` (64), ``SERVEWATCH_DISABLED`` and the ``OTEL_*`` variables.
What is produced: per model and interval an input and a prediction :class:`~servewatch.profile.Profile`, sent
as OTLP log records (``servewatch.profile``) or spooled to files; the metrics of
:mod:`~servewatch.instrumentation.telemetry`; GPU gauges (:mod:`~servewatch.instrumentation.gpu`). How inputs
become columns and projections: :mod:`~servewatch.instrumentation.extraction`.

For framework instrumentors (TorchServe, PyTriton / Triton python backend / tritonclient, Ray Serve)
========================================================================================================

Subclass :class:`ServewatchInstrumentor` (entry point group ``opentelemetry_instrumentor``; pyproject already
names ``servewatch.instrumentation.torchserve:TorchServeInstrumentor``, ``...triton:PyTritonInstrumentor``,
``...triton:TritonClientInstrumentor``, ``...ray_serve:RayServeInstrumentor``) and patch with ``self.wrap``;
the patch is applied when the framework's module is imported, never by importing it yourself::

    class RayServeInstrumentor(ServewatchInstrumentor):
        framework = "ray_serve"
        instruments = ("ray[serve] >= 2.60, < 2.61",)

        def _patch(self, **kwargs):
            self.wrap("ray.serve.batching", "_BatchQueue._process_batch_inner", _batch)

**Report one inference call** - the hook wraps the framework's function, which is called *outside* anything
of ours so that its result and its exceptions pass through untouched:

- with :func:`observe` when the wrapped function is the inference (it times the call; the callables run
  after it, guarded; a coroutine or a future the function returns is recorded when it completes)::

      def _batch(wrapped, instance, args, kwargs):
          return observe(wrapped, args, kwargs, framework="ray_serve", model=lambda: deployment_name(),
                         inputs=lambda: args[1], outputs=lambda results: results,
                         requests=lambda: len(args[1]))

- with :func:`record` when the framework already measured it (e.g. Ray's ``_record_errors_and_metrics`` with
  ``latency_ms``)::

      record(model, inputs, outputs, duration=seconds, batch_size=None, outcome="ok" | "error",
             framework="torchserve", requests=None, request_ids=None, route=None)

  ``inputs`` / ``outputs``: the batch as the model sees it (tensors, arrays, dicts of named tensors, lists of
  per-request values; omit what you do not have). ``duration``: seconds of the call; each request of the call
  counts it once. ``batch_size``: rows (default: counted from ``inputs``). ``requests``: client requests the
  call served (default ``len(request_ids)``, else 1; ``0`` counts the batch but no request, for a batch
  whose requests are counted elsewhere). ``outcome="error"`` when the call raised (outputs are then omitted).
  ``route``: the HTTP route the request came in on, as the framework names it (a route template such as
  ``/items/{id}``, never the raw path), for the attribute ``http.route`` of ``servewatch.inference.duration``
  and ``servewatch.inference.requests`` (at most 32 routes per model, the rest ``other``; None or ``""``: no
  attribute; profiles stay per model). ``observe`` takes ``route`` too, a string or a callable run after the
  call.
  ``record`` never raises and returns in microseconds. Arrays are read before it returns
  (small batches copied, large ones profiled at once), so the framework may free or reuse that memory
  afterwards (Triton's python backend frees request tensors when ``execute`` returns).

**Profile rows without counting a call** (a handler that runs its model chunk by chunk):
``profile_rows(model, inputs, outputs, framework=...)`` per chunk adds them to the profiles and counters of
values only; then ``record(model, duration=..., batch_size=..., framework=...)`` once for the call.

**Report queue time** bridged from the framework's own metrics: ``observe_queue_time(source,
framework=...)`` registers ``source() -> {model: cumulative seconds}`` (e.g. scraping TorchServe's
``ts_queue_latency_microseconds`` or Triton's ``nv_inference_queue_duration_us`` from the local metrics port,
converted to seconds), polled at each metric collection in serving processes only; report only the models this
process serves. For queue time measured in-process per call: ``record_queue_time(model, seconds,
framework=...)``.

**Export a bridge's own metrics** (figures only the framework has: Triton's compute time, its GPU gauges)
with the instrumentation's, under the process's ``service.instance.id`` and without a pipeline or thread of
your own: ``register_metrics(setup, produce=..., scope="servewatch.<framework>")``, where ``setup(meter)``
creates observable instruments on a meter of that scope and ``produce()`` returns pre-aggregated SDK
``Metric`` objects at each collection. Like ``observe_queue_time`` it starts nothing: only a serving process
collects them.

**Guard a hook** so it can never raise into the request: ``with guard("ray_serve.args"): ...`` or
``@guard("torchserve.context")`` on a helper; the exception is counted in
``servewatch.instrumentation.errors{error.type=<kind>}``, logged once per kind, and swallowed. ``observe``,
``record`` and ``ServewatchInstrumentor.instrument`` are guarded already; guard only your own extra code.

**Stay cheap to load.** ``opentelemetry-instrument`` loads every entry point in every process it starts (TorchServe's
metric collector every minute, Ray's many helpers). Importing this package, the instrumentor base and
``servewatch`` itself loads neither numpy, datasketches nor the OpenTelemetry SDK (they load with the runtime,
on the first inference); keep your entry-point module and ``_patch`` as light: name wrappers by path
(``self.wrap(module, name, "package.module:function")``) so that their module loads with the framework's, and
import nothing optional at module level (a non-``ImportError`` there aborts every instrumentor of the process).

**Stay inert, survive forks.** Nothing starts until the first ``record``/``observe`` in a process: the
launcher, TorchServe's ``metric_collector.py``, Ray's agents never export (do not call ``record`` from code
that runs there). Providers are our own, built on first use, never global; after ``os.fork`` the child starts
afresh with a new ``service.instance.id``; at exit the last interval is flushed, waiting at most
``EXIT_TIMEOUT`` (5 s) in all, whatever the receiver does (:mod:`~servewatch.instrumentation.runtime`). A
process killed by a signal (SIGKILL; uvicorn, which ends by re-raising SIGTERM; a worker the framework
terminates) runs no exit hooks: call :func:`flush` (it waits at most as long, by default) from the framework's
shutdown hook where there is one, or accept losing the last interval
(at most one ``SERVEWATCH_PROFILE_INTERVAL`` of profiles and one ``OTEL_METRIC_EXPORT_INTERVAL`` of metric
increments).
"""

from __future__ import annotations

from servewatch.lazy import lazy_attributes

from .guard import errors, guard
from .monitor import Inference, Monitor, monitor, observe
from .runtime import flush, observe_queue_time, profile_rows, record, record_queue_time, register_metrics
from .sentinel import NOTHING

__all__ = [
    "NOTHING",
    "Inference",
    "Monitor",
    "ServewatchInstrumentor",
    "errors",
    "flush",
    "guard",
    "monitor",
    "observe",
    "observe_queue_time",
    "profile_rows",
    "record",
    "record_queue_time",
    "register_metrics",
]

# ServewatchInstrumentor loads opentelemetry-instrumentation and wrapt, so only when asked for
__getattr__, __dir__ = lazy_attributes(__name__, __all__, {"ServewatchInstrumentor": "instrumentor"})
