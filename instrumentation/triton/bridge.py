"""Running the :8002 bridge: inside a PyTriton process, or as a sidecar next to any ``tritonserver``.

Usage::

    # next to a tritonserver (TensorRT, ONNX, python-backend ... models); OTLP to OTEL_EXPORTER_OTLP_ENDPOINT
    python -m servewatch.instrumentation.triton.bridge --url http://127.0.0.1:8002/metrics \\
        [--model resnet --model bert] [--no-requests]

    # in code
    from servewatch.instrumentation.triton.bridge import run_sidecar
    bridge = run_sidecar("http://127.0.0.1:8002/metrics", models={"resnet"})   # started; bridge.stop() ends it

Inside a PyTriton process nothing is to be done: the instrumentor starts the bridge at the first inference,
for the server that process launched and the models it bound (:mod:`~servewatch.instrumentation.triton.pytriton`).

What is reported is mapped in :mod:`~servewatch.instrumentation.triton.metrics`. Queue time goes through the
instrumentation's own metrics (:func:`servewatch.instrumentation.observe_queue_time`, so it carries the
process's ``service.instance.id`` and the model's ``ml.framework``); the other figures are exported by a
:class:`BridgeExporter`: a metrics pipeline of its own (``servewatch.exporters.MetricsPipeline``, never a
global provider) under the same resource, collected every ``OTEL_METRIC_EXPORT_INTERVAL`` by one daemon
thread, flushed at exit. The sidecar watches the models named with ``--model``, else those of
``SERVEWATCH_SPEC``, else every model the server reports; it also reports request counts, mean latency and
mean batch size (``--no-requests`` leaves them to the hooks of models instrumented in-process: PyTriton or
the python-backend opt-in, which would otherwise count twice).
"""

from __future__ import annotations

import argparse
import atexit
import logging
import signal
import sys
import threading
from collections.abc import Callable, Collection, Sequence
from typing import Any

from servewatch.instrumentation import guard, observe_queue_time
from servewatch.instrumentation.guard import errors
from servewatch.instrumentation.settings import Settings

from .metrics import TritonMetrics

__all__ = ["BridgeExporter", "add_arguments", "main", "run", "run_sidecar", "start_in_process"]

log = logging.getLogger("servewatch.instrumentation")
EXIT_TIMEOUT = 5.0
"""Seconds the process waits at exit for the last collection to leave."""


class BridgeExporter:
    """Exports a :class:`~servewatch.instrumentation.triton.metrics.TritonMetrics` every metric interval."""

    def __init__(self, metrics: TritonMetrics, settings: Settings, *, instance_id: str | None = None) -> None:
        self.metrics = metrics
        self.interval = settings.metric_interval
        self._settings = settings
        self._instance_id = instance_id
        self._pipeline: Any = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="servewatch-triton-metrics", daemon=True)

    def start(self) -> BridgeExporter:
        """Start the thread (the exporter is built there, so the caller never waits for it)."""
        self._thread.start()
        atexit.register(self.stop)
        return self

    def _build(self) -> None:
        from servewatch.exporters.metrics import MetricsPipeline, otlp_metric_exporter
        from servewatch.exporters.resource import process_resource

        settings = self._settings
        protocol = "console" if settings.metrics_exporter == "console" else settings.metrics_protocol
        resource = process_resource(framework=self.metrics.framework, instance_id=self._instance_id)
        pipeline = MetricsPipeline(resource, otlp_metric_exporter(protocol), producers=[self.metrics.produce],
                                   timeout=settings.metric_timeout,
                                   on_failure=lambda: errors.report("triton.metrics.export"))
        self.metrics.register(pipeline.meter())
        self._pipeline = pipeline

    def collect(self) -> None:
        """Read the endpoint and export once, now (building the exporter first if it is still missing)."""
        with guard("triton.metrics.export"):
            if self._pipeline is None:
                self._build()
            self._pipeline.collect()

    def _run(self) -> None:
        try:
            with guard("triton.metrics.export"):
                self._build()
            while not self._stop.wait(self.interval):
                self.collect()
            self.collect()
            if self._pipeline is not None:
                with guard("triton.metrics.export"):
                    self._pipeline.shutdown()
        finally:
            self._done.set()

    def stop(self, timeout: float = EXIT_TIMEOUT) -> None:
        """Export a last time and stop reading the endpoint (waits at most ``timeout`` seconds)."""
        self._stop.set()
        if self._thread.is_alive():
            self._done.wait(timeout)
        self.metrics.close()


def start_in_process(url: str, models: Callable[[], Collection[str]], *, framework: str) -> BridgeExporter | None:
    """Bridge ``url`` for the ``models`` this serving process instruments (PyTriton): queue time into the
    instrumentation's metrics, the rest through a :class:`BridgeExporter` under the process's identity (GPU
    gauges only where the process does not read NVML itself)."""
    from servewatch.instrumentation.runtime import current

    runtime = current(framework)
    if runtime is None:  # SERVEWATCH_DISABLED
        return None
    settings = runtime.settings
    metrics = TritonMetrics(url, models=models, framework=framework, requests=False, gpus=not _reads_nvml(),
                            delta=settings.delta_histograms)
    observe_queue_time(metrics.queue_seconds, framework=framework)
    if settings.metrics_exporter == "none":
        return None
    log.info("servewatch: reading Triton's metrics at %s (queue and compute time, GPU)", url)
    return BridgeExporter(metrics, settings, instance_id=runtime.instance_id).start()


def _reads_nvml() -> bool:
    """Whether this process reports its GPUs itself (nvidia-ml-py is installed: the ``gpu`` extra)."""
    import importlib.util

    return importlib.util.find_spec("pynvml") is not None


def run_sidecar(url: str, *, models: Collection[str] | None = None, requests: bool = True,
                framework: str = "triton") -> BridgeExporter | None:
    """Start bridging ``url`` from this (otherwise idle) process; None when servewatch is disabled or
    ``OTEL_METRICS_EXPORTER=none`` leaves it nothing to send."""
    from servewatch.instrumentation.runtime import current

    runtime = current(framework)
    if runtime is None or runtime.settings.metrics_exporter == "none":
        return None
    settings = runtime.settings
    if models is None and runtime.spec.models:
        models = frozenset(model.name for model in runtime.spec.models)
    metrics = TritonMetrics(url, models=models, framework=framework, requests=requests,
                            delta=settings.delta_histograms)
    observe_queue_time(metrics.queue_seconds, framework=framework)
    return BridgeExporter(metrics, settings, instance_id=runtime.instance_id).start()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sidecar's options (for ``python -m`` and a ``servewatch`` subcommand)."""
    parser.add_argument("--url", default="http://127.0.0.1:8002/metrics",
                        help="Triton's metrics endpoint (default %(default)s)")
    parser.add_argument("--model", action="append", dest="models", metavar="NAME",
                        help="a model to watch (repeat; default: the spec's models, else all)")
    parser.add_argument("--no-requests", dest="requests", action="store_false",
                        help="leave request counts, latency and batch size to in-process hooks")
    parser.add_argument("--framework", default="triton", help="the ml.framework reported (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    """Bridge until SIGTERM or Ctrl-C; exit status 0."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    bridge = run_sidecar(args.url, models=frozenset(args.models) if args.models else None, requests=args.requests,
                         framework=args.framework)
    if bridge is None:
        print("servewatch: nothing to do (SERVEWATCH_DISABLED=true or OTEL_METRICS_EXPORTER=none)", file=sys.stderr)
        return 0
    stopped = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("servewatch: bridging %s every %gs; SIGTERM or Ctrl-C stops", args.url, bridge.interval)
    while not stopped.wait(1.0):
        pass
    bridge.stop()
    from servewatch.instrumentation import flush

    flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m servewatch.instrumentation.triton.bridge``: the sidecar (module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m servewatch.instrumentation.triton.bridge",
                                     description="Report a Triton server's metrics under servewatch's names.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
