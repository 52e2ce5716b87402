"""servewatch for Ray Serve: latency, errors, batch sizes and drift profiles of every deployment, per replica.

Usage::

    pip install 'servewatch[ray]'
    export SERVEWATCH_SPEC=servewatch.yaml                  # optional: names and types the features
    export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318  # `servewatch detect` (the default endpoint)
    opentelemetry-instrument serve run app:app              # or a config file; or a script calling serve.run

Nothing else changes: not the deployments, not the Serve config. ``opentelemetry-instrument`` puts its
``sitecustomize`` on ``PYTHONPATH``; when ``serve run`` (or ``serve.run`` in a script) starts the local Ray
cluster, every Ray process inherits that environment, and this instrumentor, found through the
``opentelemetry_instrumentor`` entry point ``servewatch_ray_serve``, hooks a replica's process once it imports
Ray Serve's replica module. In code, ``RayServeInstrumentor().instrument()`` in a process before it hosts a
replica does the same; ``uninstrument()`` restores everything.
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=servewatch_ray_serve`` or ``SERVEWATCH_DISABLED=true`` turns it off.

**An existing cluster** (``ray start`` run without ``opentelemetry-instrument``, KubeRay): its workers did not
inherit the variables, so give them to the application's replicas in its ``runtime_env``; Ray starts them in
workers of their own with that environment (:func:`runtime_env` builds the mapping from the current one)::

    applications:
      - name: fraud
        import_path: app:app
        runtime_env:
          env_vars:
            PYTHONPATH: /venv/lib/python3.11/site-packages/opentelemetry/instrumentation/auto_instrumentation
            OTEL_EXPORTER_OTLP_ENDPOINT: http://servewatch-detector:4318
            SERVEWATCH_SPEC: /etc/servewatch/servewatch.yaml

or ``serve run --address HEAD:6379 --runtime-env-json "$(python -c 'import json; from
servewatch.instrumentation.ray_serve import runtime_env; print(json.dumps(runtime_env()))')" app:app``. Ray's
``worker_process_setup_hook`` does not help here: Ray runs it in the workers of the driver's job only, and
replicas belong to the Serve controller's (verified on Ray 2.60).

What every replica reports (``ml.model.name`` = the deployment name, ``ml.framework`` = ``ray_serve``; the
resource carries ``ray.serve.application``, ``ray.serve.deployment``, ``ray.serve.replica.id`` and a
``service.instance.id`` of its own, so two replicas are two producers the detector merges):

- ``servewatch.inference.duration`` and ``servewatch.inference.requests`` per request, HTTP and handle calls
  alike, from the latency Ray itself measured; ``outcome="error"`` when the deployment raised or answered
  4xx/5xx (as Ray counts HTTP errors); HTTP requests with ``http.route``, the route Ray's proxy matched (the
  route prefix, or a FastAPI ingress's route template; at most 32 per deployment, the rest ``other``), handle
  calls without it;
- input and prediction profiles and the ``servewatch.input.*`` / ``servewatch.prediction.*`` counters: for
  HTTP requests the JSON body (copied as the deployment reads it, never consumed on its behalf) and the
  response body; for handle calls the arguments (one argument as it is, several as named columns) and the
  returned object; for a deployment with a ``@serve.batch`` method, what that method receives and returns per
  batch (then requests themselves are not profiled, so no row counts twice);
- ``servewatch.inference.batch.size``: the batches ``@serve.batch`` formed (elsewhere the rows of a request).

Ray's own metrics (``ray_serve_*``) are untouched: servewatch never sets OpenTelemetry's global providers
(doing so in Ray's dashboard agent would break them) and stays inert in the driver, the controller, the proxy
and Ray's agents, where no replica lives. Not profiled (counted and timed only): streaming responses to handle
calls (``stream=True``), gRPC ingress, WebSockets, bodies over 1 MiB. The hook points are private Ray APIs,
verified on ``ray[serve] >=2.60,<2.61``: on another Ray, the replica logs one message and serves untouched.

Environment: ``SERVEWATCH_SPEC``, ``SERVEWATCH_PROFILE_INTERVAL`` (s, 60), ``SERVEWATCH_SPOOL_DIR``,
``SERVEWATCH_MAX_COLUMNS`` (64), ``SERVEWATCH_DISABLED``, and the standard ``OTEL_*`` variables (endpoint,
headers, service name, ``OTEL_METRIC_EXPORT_INTERVAL``); see :mod:`servewatch.instrumentation.settings`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from types import ModuleType
from typing import Any, ClassVar

import wrapt
from servewatch.instrumentation import ServewatchInstrumentor, errors

from .package import RAY_RANGE, _instruments, supported

__all__ = ["RayServeInstrumentor", "runtime_env"]

log = logging.getLogger("servewatch.instrumentation")

_REPLICA_MODULE = "ray.serve._private.replica"
_FORWARDED = ("OTEL_", "SERVEWATCH_")


class RayServeInstrumentor(ServewatchInstrumentor):
    """Instruments the Ray Serve replicas of this process (see the module docstring)."""

    framework: ClassVar[str] = "ray_serve"
    instruments: ClassVar[tuple[str, ...]] = _instruments

    def _patch(self, **kwargs: Any) -> None:
        wrapt.register_post_import_hook(self._on_replica_module, _REPLICA_MODULE)

    def _on_replica_module(self, module: ModuleType) -> None:
        """Check the Ray version, then apply the patches (the replica module has just been imported)."""
        if not getattr(self, "_active", False):
            return
        try:
            import ray

            version = str(getattr(ray, "__version__", "unknown"))
            if not supported(version):
                log.warning("servewatch: Ray %s is outside the range this instrumentation supports "
                            "(ray[serve]%s); Ray Serve is not instrumented in process %d and serves as "
                            "usual. Install a supported Ray or a servewatch release made for this one.",
                            version, RAY_RANGE, os.getpid())
                return
            from .hooks import PATCHES

            for module_name, attribute, wrapper in PATCHES:
                self.wrap(module_name, attribute, wrapper)
        except Exception as error:
            errors.report("ray_serve.instrument", error)

    def _uninstrument(self, **kwargs: Any) -> None:
        super()._uninstrument(**kwargs)
        from . import replica

        replica.detach()


def runtime_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A Ray ``runtime_env`` that instruments an application's replicas on an existing cluster: ``env_vars``
    with ``PYTHONPATH`` = OpenTelemetry's auto-instrumentation directory (its ``sitecustomize``) and every
    ``OTEL_*`` and ``SERVEWATCH_*`` variable of ``environ`` (default ``os.environ``)."""
    from opentelemetry.instrumentation import auto_instrumentation

    env = os.environ if environ is None else environ
    variables = {key: value for key, value in env.items() if key.startswith(_FORWARDED)}
    variables["PYTHONPATH"] = os.path.dirname(os.path.abspath(auto_instrumentation.__file__))
    return {"env_vars": variables}
