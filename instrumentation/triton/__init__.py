"""servewatch for NVIDIA Triton, from four sides: PyTriton apps, python-backend models, tritonclient, and
Triton's own metrics endpoint.

Usage::

    pip install 'servewatch[triton]'                       # nvidia-pytriton, tritonclient[http,grpc]; numpy<2
    export SERVEWATCH_SPEC=servewatch.yaml                  # optional: names and types the features
    export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318  # where `servewatch detect` listens (the default)

    opentelemetry-instrument python app.py                  # 1. a PyTriton app: nothing else changes
    opentelemetry-instrument python client.py               # 3. a tritonclient program: nothing else changes

    # 2. a python-backend model (model.py), one line:  class TritonPythonModel(MonitoredPythonModel): ...
    # 4. Triton's metrics (:8002) of a standalone tritonserver, as a sidecar:
    python -m servewatch.instrumentation.triton.bridge --url http://127.0.0.1:8002/metrics

1. **PyTriton** (:mod:`~servewatch.instrumentation.triton.pytriton`, entry point ``servewatch_pytriton``): per
   model bound with ``Triton.bind``, in the process that binds it (``ml.framework`` = ``pytriton``): latency,
   requests by outcome and the batch Triton formed, inputs and outputs by tensor name (column ``i`` of a 2-D
   tensor ``x`` is ``x.<i>``; wide, image and text tensors are projected), their profiles; and, read from the
   metrics endpoint of the server the process launched, queue time, compute time and GPU gauges.
2. **Python-backend models** (:mod:`~servewatch.instrumentation.triton.python_backend`): Triton's stub
   interpreters ignore ``sitecustomize``, so derive ``TritonPythonModel`` from :class:`MonitoredPythonModel`
   (``ml.framework`` = ``triton``); every model instance is its own producer.
3. **tritonclient** (:mod:`~servewatch.instrumentation.triton.client`, entry point ``servewatch_tritonclient``):
   http and grpc, ``infer`` and ``async_infer``, and the aio clients: latency and outcome as the caller sees
   them, the ``InferInput`` arrays and the result's outputs, by model name (``ml.framework`` = ``tritonclient``):
   the way to watch models whose backend runs no Python (TensorRT, ONNX, ...).
4. **Triton's metrics** (:mod:`~servewatch.instrumentation.triton.metrics` has the mapping,
   :mod:`~servewatch.instrumentation.triton.bridge` runs it): ``nv_inference_queue_duration_us`` becomes
   ``servewatch.inference.queue.time``, compute times ``servewatch.inference.compute.time{phase}``, the GPU
   gauges ``hw.gpu.*``, and (sidecar) request counts, mean latency and mean batch size the ``servewatch.inference.*``
   series, so dashboards speak one vocabulary.

Environment: ``SERVEWATCH_SPEC``, ``SERVEWATCH_PROFILE_INTERVAL`` (s, 60), ``SERVEWATCH_SPOOL_DIR``,
``SERVEWATCH_MAX_COLUMNS`` (64), ``SERVEWATCH_DISABLED``, and the standard ``OTEL_*`` variables (endpoint,
headers, service name, ``OTEL_METRIC_EXPORT_INTERVAL``); see :mod:`servewatch.instrumentation.settings`. For
python-backend models set them where ``tritonserver`` starts: the stubs inherit its environment.
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=servewatch_pytriton,servewatch_tritonclient`` turns the hooks off.

Names load on first use: importing this package imports neither PyTriton nor tritonclient, and a
python-backend stub that imports :class:`MonitoredPythonModel` loads no OpenTelemetry instrumentation
machinery.
"""

from __future__ import annotations

from servewatch.lazy import lazy_attributes

__all__ = ["MonitoredPythonModel", "PyTritonInstrumentor", "TritonClientInstrumentor", "TritonMetrics"]

_HOMES = {
    "PyTritonInstrumentor": "instrumentors",
    "TritonClientInstrumentor": "instrumentors",
    "MonitoredPythonModel": "python_backend",
    "TritonMetrics": "metrics",
}

__getattr__, __dir__ = lazy_attributes(__name__, __all__, _HOMES)
