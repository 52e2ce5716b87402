"""Real TorchServe and detector processes for the TorchServe benchmark and integration tests.

Usage::

    from torchserve_harness import Detector, OTLPTap, TorchServe, build_archive

    mar = build_archive(workdir, "churn")                        # examples/torchserve model + handler -> .mar
    with Detector(workdir / "detector", spec_path) as detector, OTLPTap(detector.otlp_url) as tap:
        server = TorchServe(workdir / "ts", {"churn": {"marName": mar.name, "batchSize": 4, "maxBatchDelay": 50}},
                            store=mar.parent, instrumented=True, env={"OTEL_EXPORTER_OTLP_ENDPOINT": tap.url})
        with server:                                              # start (blocks until every worker is ready)
            server.predict("churn", [0.1, 0.2, 0.3])
        detector.samples("servewatch_drift_ks")

Every process is started in a session of its own on 127.0.0.1 ports found free, logs into the given directory
and is stopped on exit, however the block ends (``torchserve --stop``, then the process group is killed).
Each TorchServe gets its own ``TMPDIR`` (its pid file lives there) and log directory. ``log_tail()`` returns
the end of the logs for a failure message. This module lives in ``bench/`` (scripts there import it by name);
the tests under ``tests/integration`` load it from here.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "torchserve"
BIN = Path(sys.executable).parent
START_TIMEOUT = 240.0
"""Seconds a server may take to become ready (a loaded 2-core machine starts TorchServe in 20-90 s)."""

_PER_REQUEST = ("Backend received inference", "[METRICS]", "ACCESS_LOG", "Backend response time", "Flushing req",
                "Looping backend", "RestJob", "BatchAggregator", "result=")

__all__ = ["Detector", "OTLPTap", "TorchServe", "build_archive", "free_port", "parse_samples", "wait_for"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll ``condition()`` until it returns something truthy (returned); TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def build_archive(directory: Path, name: str, *, handler: Path | None = None, extra_files: tuple[Path, ...] = (),
                  version: str = "1.0") -> Path:
    """``<directory>/<name>.mar`` from the example's model (``model.py``) and ``handler`` (default: the example's
    ``handler.py``), built with torch-model-archiver."""
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"{name}.pt"
    if not weights.exists():
        subprocess.run([sys.executable, str(EXAMPLE / "model.py"), str(weights)], check=True, timeout=300)
    command = [str(BIN / "torch-model-archiver"), "--model-name", name, "--version", version,
               "--serialized-file", str(weights), "--handler", str(handler or EXAMPLE / "handler.py"),
               "--export-path", str(directory), "--force"]
    if extra_files:
        command += ["--extra-files", ",".join(str(path) for path in extra_files)]
    subprocess.run(command, check=True, timeout=300, capture_output=True)
    return directory / f"{name}.mar"


def _http(url: str, data: bytes | None = None, *, method: str | None = None, timeout: float = 30.0,
          headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    """(status, body) of a request; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _stop_group(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    """SIGTERM, then SIGKILL, the process group led by ``process`` (its session) until none of it is left."""
    def alive() -> bool:
        process.poll()  # reap the leader: a zombie still counts as a member of the group
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        if not alive():
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while alive() and time.monotonic() < deadline:
            time.sleep(0.1)


class TorchServe:
    """One TorchServe: ``models`` maps a model name to its ``models=`` entry in config.properties (``marName``
    required; ``batchSize``, ``maxBatchDelay``, ``minWorkers``/``maxWorkers``...). ``instrumented`` starts it
    under ``opentelemetry-instrument``; ``env`` is added to the environment."""

    def __init__(self, directory: Path, models: Mapping[str, Mapping[str, Any]], *, store: Path,
                 instrumented: bool, env: Mapping[str, str] | None = None,
                 properties: Mapping[str, str] | None = None) -> None:
        self.directory = directory
        self.models = {name: dict(config) for name, config in models.items()}
        self.store = store
        self.instrumented = instrumented
        self.extra_env = dict(env or {})
        self.ports = {name: free_port() for name in ("inference", "management", "metrics", "grpc_inference",
                                                     "grpc_management", "worker")}
        self.inference_url, self.management_url, self.metrics_url = (
            f"http://127.0.0.1:{self.ports[api]}" for api in ("inference", "management", "metrics"))
        self.properties = {
            "inference_address": self.inference_url, "management_address": self.management_url,
            "metrics_address": self.metrics_url,
            "grpc_inference_address": "127.0.0.1", "grpc_management_address": "127.0.0.1",
            "grpc_inference_port": str(self.ports["grpc_inference"]),
            "grpc_management_port": str(self.ports["grpc_management"]),
            "initial_worker_port": str(self.ports["worker"]),
            "metrics_mode": "prometheus",
            "disable_token_authorization": "true",
            "model_store": str(store),
            "load_models": ",".join(config["marName"] for config in self.models.values()),
            "models": json.dumps({name: {"1.0": {"defaultVersion": True, "minWorkers": 1, "maxWorkers": 1,
                                                 "batchSize": 1, "maxBatchDelay": 100, "responseTimeout": 120,
                                                 **config}}
                                  for name, config in self.models.items()}),
            **dict(properties or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.config_path = directory / "config.properties"
        self.env: dict[str, str] = {}

    def __enter__(self) -> TorchServe:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start it and wait until every model has all its minimum workers ready."""
        for sub in ("tmp", "logs"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        self.config_path.write_text("".join(f"{key}={value}\n" for key, value in self.properties.items()))
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("OTEL_", "SERVEWATCH_", "TS_")) and key != "PYTHONPATH"}
        env.update(TMPDIR=str(self.directory / "tmp"), LOG_LOCATION=str(self.directory / "logs"),
                   METRICS_LOCATION=str(self.directory / "logs"), PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
        env.update(self.extra_env)
        self.env = env
        command = [str(BIN / "torchserve"), "--start", "--ncs", "--ts-config", str(self.config_path)]
        if self.instrumented:
            command.insert(0, str(BIN / "opentelemetry-instrument"))
        with open(self.directory / "launcher.log", "ab") as log:
            self.process = subprocess.Popen(command, cwd=self.directory, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._ready, START_TIMEOUT, f"TorchServe in {self.directory} to be ready", interval=0.5)

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() not in (None, 0):
            raise RuntimeError(f"torchserve exited with {self.process.returncode}\n{self.log_tail()}")
        try:
            for name, config in self.models.items():
                workers = self.workers(name)
                if sum(worker["status"] == "READY" for worker in workers) < int(config.get("minWorkers", 1)):
                    return False
        except OSError:
            return False
        return True

    def workers(self, model: str) -> list[dict[str, Any]]:
        """The management API's worker list of ``model`` (``id``, ``pid``, ``status``...)."""
        status, body = _http(f"{self.management_url}/models/{model}", timeout=10)
        if status != 200:
            return []
        return list(json.loads(body)[0].get("workers", []))

    def predict(self, model: str, payload: Any, timeout: float = 60.0) -> tuple[int, Any]:
        """POST ``payload`` as JSON to ``/predictions/<model>``; (status, decoded answer)."""
        status, body = _http(f"{self.inference_url}/predictions/{model}", json.dumps(payload).encode(),
                             headers={"Content-Type": "application/json"}, timeout=timeout)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body

    def frontend_metrics(self) -> str:
        """TorchServe's own Prometheus metrics (metrics API, prometheus mode)."""
        return _http(f"{self.metrics_url}/metrics", timeout=10)[1].decode()

    def stop(self) -> None:
        """``torchserve --stop``, then make sure nothing of its process group is left."""
        if self.process is None:
            return
        try:
            subprocess.run([str(BIN / "torchserve"), "--stop"], cwd=self.directory, env=self.env, timeout=90,
                           capture_output=True)
        except (OSError, subprocess.SubprocessError):
            pass
        _stop_group(self.process)
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the launcher's, the frontend's and the model workers' logs, without the lines TorchServe
        writes for every request."""
        parts = []
        for path in (self.directory / "launcher.log", self.directory / "logs" / "ts_log.log",
                     self.directory / "logs" / "model_log.log"):
            if path.exists():
                text = [line for line in path.read_text(errors="replace").splitlines()
                        if not any(noise in line for noise in _PER_REQUEST)][-lines:]
                parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)


class Detector:
    """``servewatch detect`` with ``spec``, OTLP on ``otlp_url``, Prometheus metrics on ``metrics_url``."""

    def __init__(self, directory: Path, spec: Path, *, interval: str = "1s", bucket: str = "1s",
                 extra: tuple[str, ...] = ()) -> None:
        self.directory = directory
        self.spec = spec
        self.otlp_port, self.metrics_port = free_port(), free_port()
        self.args = ["--interval", interval, "--bucket", bucket, *extra]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def otlp_url(self) -> str:
        return f"http://127.0.0.1:{self.otlp_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def __enter__(self) -> Detector:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [str(BIN / "servewatch"), "detect", "--spec", str(self.spec), "--listen",
                   f"127.0.0.1:{self.otlp_port}", "--metrics-listen", f"127.0.0.1:{self.metrics_port}",
                   "--state", str(self.directory / "state"), *self.args]
        with open(self.directory / "detector.log", "ab") as log:
            self.process = subprocess.Popen(command, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        try:
            wait_for(self._ready, START_TIMEOUT, "the detector to be ready")
        except BaseException:
            self.__exit__()
            raise
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"servewatch detect exited with {self.process.returncode}\n{self.log_tail()}")
        try:
            return _http(f"http://127.0.0.1:{self.metrics_port}/readyz", timeout=5)[0] == 200
        except OSError:
            return False

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            _stop_group(self.process, grace=15)
            self.process = None

    def metrics(self) -> str:
        return _http(self.metrics_url, timeout=10)[1].decode()

    def samples(self, name: str, text: str | None = None, **labels: str) -> list[tuple[dict[str, str], float]]:
        """The samples of metric ``name`` on the detector's /metrics (or in ``text``, an earlier scrape) whose
        labels include ``labels``."""
        return [(found, value) for sample, found, value in parse_samples(self.metrics() if text is None else text)
                if sample == name and all(found.get(k) == v for k, v in labels.items())]

    def log_tail(self, lines: int = 40) -> str:
        path = self.directory / "detector.log"
        return "--- detector.log\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) \
            if path.exists() else ""


def parse_samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample in Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            yield sample.name, dict(sample.labels), float(sample.value)


class OTLPTap:
    """An OTLP/HTTP pass-through that remembers who sent what: each request's path and resource attributes
    (``service.instance.id``, ``process.pid``...) and, for logs, the profile records' attributes. Forwards to
    ``upstream`` (answers 200 itself without one). Bodies are protobuf, uncompressed (the exporters' default)."""

    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = upstream
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        tap = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                tap._remember(self.path, body)
                status, answer = 200, b""
                if tap.upstream is not None:
                    headers = {key: value for key, value in self.headers.items()
                               if key.lower() in ("content-type", "content-encoding", "authorization")}
                    try:
                        status, answer = _http(tap.upstream + self.path, body, headers=headers, method="POST")
                    except OSError:
                        status, answer = 503, b""
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OTLPTap:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _remember(self, path: str, body: bytes) -> None:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

        message: Any = ExportLogsServiceRequest() if path.endswith("/v1/logs") else ExportMetricsServiceRequest()
        message.ParseFromString(body)
        resources = message.resource_logs if path.endswith("/v1/logs") else message.resource_metrics
        for item in resources:
            entry: dict[str, Any] = {"path": path, "time": time.time(),
                                     "resource": {a.key: _any_value(a.value) for a in item.resource.attributes}}
            if path.endswith("/v1/logs"):
                entry["records"] = [{a.key: _any_value(a.value) for a in record.attributes}
                                    for scope in item.scope_logs for record in scope.log_records]
            else:
                entry["metrics"] = sorted({metric.name for scope in item.scope_metrics for metric in scope.metrics})
            with self._lock:
                self.requests.append(entry)

    def senders(self, path: str | None = None) -> dict[str, dict[str, Any]]:
        """``service.instance.id`` -> resource attributes of everything received (on ``path`` if given)."""
        with self._lock:
            return {str(entry["resource"].get("service.instance.id")): entry["resource"]
                    for entry in self.requests if path is None or entry["path"].endswith(path)}

    def profile_records(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(resource, record attributes) of every profile record received."""
        with self._lock:
            return [(entry["resource"], record) for entry in self.requests if "records" in entry
                    for record in entry["records"]]


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("string_value", "int_value", "double_value", "bool_value") else kind
