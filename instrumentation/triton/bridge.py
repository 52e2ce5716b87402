"""Running the :8002 bridge: inside a PyTriton process, or as a sidecar next to any ``tritonserver``.

Usage::

    # next to a tritonserver (TensorRT, ONNX, python-backend ... models); OTLP to OTEL_EXPORTER_OTLP_ENDPOINT
    python -m servewatch.instrumentation.triton.bridge --url http://127.0.0.1:8002/metrics \\
        [--model resnet --model bert] [--no-requests]

    # in code
    from servewatch.instrumentation.triton.bridge import run_sidecar
    metrics = run_sidecar("http://127.0.0.1:8002/metrics", models={"resnet"})   # reported from now on
    metrics.close()                                                              # reads the endpoint no more

Inside a PyTriton process nothing is to be done: the instrumentor starts the bridge at the first inference,
for the server that process launched and the models it bound (:mod:`~servewatch.instrumentation.triton.pytriton`).

What is reported is mapped in :mod:`~servewatch.instrumentation.triton.metrics`. Everything goes through the
instrumentation's own metrics pipeline, so it carries the process's ``service.instance.id`` and leaves with
the instrumentation's collections (every ``OTEL_METRIC_EXPORT_INTERVAL``, from the runtime's one thread, and
at exit): queue time through :func:`servewatch.instrumentation.observe_queue_time` (counted as the model's
own ``servewatch.inference.queue.time``), the other figures through
:func:`servewatch.instrumentation.register_metrics` under the instrumentation scope :data:`SCOPE` (the
endpoint is read once per collection). The sidecar watches the models named with ``--model``, else those of
``SERVEWATCH_SPEC``, else every model the server reports; it also reports request counts, mean latency and
mean batch size (``--no-requests`` leaves them to the hooks of models instrumented in-process: PyTriton or
the python-backend opt-in, which would otherwise count twice).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Collection, Sequence
from typing import Any

from servewatch.cli import http_url
from servewatch.instrumentation import flush, observe_queue_time, register_metrics

from .metrics import TritonMetrics

__all__ = ["SCOPE", "add_arguments", "main", "run", "run_sidecar", "start_in_process"]

log = logging.getLogger("servewatch.instrumentation")
SCOPE = "servewatch.triton"
"""The instrumentation scope of the bridge's metrics (Prometheus: ``otel_scope_name``)."""


def start_in_process(url: str, models: Callable[[], Collection[str]], *, framework: str) -> TritonMetrics | None:
    """Bridge ``url`` for the ``models`` this serving process instruments (PyTriton): queue time into the
    instrumentation's metrics, compute time (and the GPU gauges where the process does not read NVML itself)
    registered with its pipeline. The :class:`~servewatch.instrumentation.triton.metrics.TritonMetrics` read
    (``close()`` stops reading), or None when servewatch is disabled or ``OTEL_METRICS_EXPORTER=none``."""
    from servewatch.instrumentation.runtime import current

    runtime = current(framework)
    if runtime is None or runtime.settings.metrics_exporter == "none":
        return None
    metrics = TritonMetrics(url, models=models, framework=framework, requests=False, gpus=not _reads_nvml(),
                            delta=runtime.settings.delta_histograms)
    _register(metrics)
    log.info("servewatch: reading Triton's metrics at %s (queue and compute time, GPU)", url)
    return metrics


def _register(metrics: TritonMetrics) -> None:
    observe_queue_time(metrics.queue_seconds, framework=metrics.framework)
    register_metrics(metrics.register, produce=metrics.produce, scope=SCOPE)


def _reads_nvml() -> bool:
    """Whether this process reports its GPUs itself (nvidia-ml-py is installed: the ``gpu`` extra)."""
    import importlib.util

    return importlib.util.find_spec("pynvml") is not None


def run_sidecar(url: str, *, models: Collection[str] | None = None, requests: bool = True,
                framework: str = "triton") -> TritonMetrics | None:
    """Bridge ``url`` from this (otherwise idle) process: the runtime starts now and its thread collects; the
    :class:`~servewatch.instrumentation.triton.metrics.TritonMetrics` read (``close()`` stops reading), or None
    when servewatch is disabled or ``OTEL_METRICS_EXPORTER=none`` leaves it nothing to send."""
    from servewatch.instrumentation.runtime import current

    runtime = current(framework)
    if runtime is None or runtime.settings.metrics_exporter == "none":
        return None
    if models is None and runtime.spec.models:
        models = frozenset(model.name for model in runtime.spec.models)
    metrics = TritonMetrics(url, models=models, framework=framework, requests=requests,
                            delta=runtime.settings.delta_histograms)
    _register(metrics)
    return metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sidecar's options (for ``python -m`` and a ``servewatch`` subcommand)."""
    parser.add_argument("--url", type=http_url, default="http://127.0.0.1:8002/metrics",
                        help="Triton's metrics endpoint (default %(default)s)")
    parser.add_argument("--model", action="append", dest="models", metavar="NAME",
                        help="a model to watch (repeat; default: the spec's models, else all)")
    parser.add_argument("--no-requests", dest="requests", action="store_false",
                        help="leave request counts, latency and batch size to in-process hooks")
    parser.add_argument("--framework", default="triton", help="the ml.framework reported (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Bridge until SIGTERM or Ctrl-C; exit status 0."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    metrics = run_sidecar(args.url, models=frozenset(args.models) if args.models else None, requests=args.requests,
                          framework=args.framework)
    if metrics is None:
        print("servewatch: nothing to do (SERVEWATCH_DISABLED=true or OTEL_METRICS_EXPORTER=none)", file=sys.stderr)
        return 0
    stopped = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    from servewatch.instrumentation.runtime import current

    runtime = current(args.framework)
    log.info("servewatch: bridging %s every %gs; SIGTERM or Ctrl-C stops", args.url,
             runtime.settings.metric_interval if runtime is not None else float("nan"))
    while not stopped.wait(1.0):
        pass
    flush()                                 # a last collection, read from the endpoint now
    metrics.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m servewatch.instrumentation.triton.bridge``: the sidecar (module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m servewatch.instrumentation.triton.bridge",
                                     description="Report a Triton server's metrics under servewatch's names.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
