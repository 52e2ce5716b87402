"""Real Ray Serve and detector processes for the Ray Serve benchmark and integration tests.

Usage::

    from ray_serve_harness import Detector, RayCluster, ServeApp, serve_config

    with Detector(workdir / "detector", spec_path) as detector:
        config = serve_config({"scorer": ("app:scorer", "/scorer")}, port=free_port())
        with ServeApp(workdir / "serve", config, pythonpath=[EXAMPLE], instrumented=True,
                      env={"OTEL_EXPORTER_OTLP_ENDPOINT": detector.otlp_url}) as app:
            app.post("/scorer", {"amount": 120.0})             # -> (status, decoded JSON or text)
            app.ray_metrics()                                   # Ray's own Prometheus endpoint, parsed
        detector.samples("servewatch_drift_severity", model="Scorer")

``ServeApp`` runs ``[opentelemetry-instrument] serve run config.yaml``: the driver starts a local Ray cluster
of its own (``RAY_TMPDIR`` in the work directory, so its session files, metrics port and logs are private)
unless ``address`` names an existing one (:class:`RayCluster`, ``ray start --head``). Every process is started
in a session of its own and stopped on exit, however the block ends: Ray's workers each lead a process group
of their own, so the whole session is signalled (SIGTERM, then SIGKILL), which leaves no raylet behind.
Servers listen on 127.0.0.1 ports found free. ``log_tail()`` returns the end of the logs for a failure
message. This module lives in ``bench/`` (scripts there import it by name); the tests load it from here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ray_serve"
BIN = Path(sys.executable).parent
START_TIMEOUT = 300.0
"""Seconds a cluster and its applications may take to come up (15-30 s idle; minutes on a loaded 2-core box)."""
BASE_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "RAY_DEDUP_LOGS": "0"}

__all__ = ["BASE_ENV", "Detector", "EXAMPLE", "RayCluster", "ServeApp", "free_port", "parse_samples",
           "serve_config", "wait_for"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll ``condition()`` until it returns something truthy (returned); TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def http(url: str, body: Any = None, *, timeout: float = 30.0) -> tuple[int, Any]:
    """POST ``body`` as JSON (GET when None); ``(status, decoded JSON, else text)``."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def parse_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Prometheus text exposition -> ``(sample name, labels, value)``."""
    from prometheus_client.parser import text_string_to_metric_families

    return [(sample.name, dict(sample.labels), float(sample.value))
            for family in text_string_to_metric_families(text) for sample in family.samples]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} not found)"


def _session_members(session: int) -> list[int]:
    """Pids of the live processes in ``session`` (read from /proc; zombies are already gone)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != b"Z":  # after "pid (comm)": state ppid pgrp session
            members.append(int(entry))
    return members


def stop_session(session: int, grace: float = 8.0) -> None:
    """SIGTERM every process of ``session``, then SIGKILL what is left after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        members = _session_members(session)
        if not members:
            return
        for pid in members:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _session_members(session):
            time.sleep(0.2)


def _clean_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("OTEL_", "SERVEWATCH_", "RAY_")) and key != "PYTHONPATH"}
    env.update(BASE_ENV, PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    env.update(extra or {})
    return env


class _Process:
    """A child started in its own session; stopped (the whole session) on exit."""

    log: Path
    process: subprocess.Popen[bytes] | None = None

    def _spawn(self, command: list[str], cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        return self.process

    def stop(self) -> None:
        if self.process is not None:
            stop_session(self.process.pid)
            if self.process.poll() is None:
                self.process.wait(5)

    def __enter__(self) -> Any:
        try:
            self.start()  # type: ignore[attr-defined]
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        return f"--- {self.log}\n{_tail(self.log, lines)}"


class Detector(_Process):
    """``servewatch detect`` with ``spec`` on ports found free, its state in ``directory``."""

    def __init__(self, directory: Path, spec: Path) -> None:
        self.directory, self.spec = directory, spec
        self.log = directory / "detector.log"
        self.otlp_url = self.metrics_url = ""

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._spawn([str(BIN / "servewatch"), "detect", "--spec", str(self.spec), "--state",
                     str(self.directory / "state"), "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                     "--log-level", "warning"], self.directory, _clean_env(None))
        line = wait_for(self._started, 60.0, "servewatch detect to start")
        self.otlp_url, self.metrics_url = line.group(1), line.group(2)

    def _started(self) -> Any:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"servewatch detect exited with {self.process.returncode}\n{self.log_tail()}")
        return re.search(r"receiving OTLP/HTTP on (http://127\.0\.0\.1:\d+) .*serving (http://127\.0\.0\.1:\d+/metrics)",
                         self.log.read_text(errors="replace"))

    def samples(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        """The samples called ``name`` on the detector's /metrics whose labels include ``labels``."""
        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:
            text = response.read().decode()
        return [(found, value) for sample, found, value in parse_samples(text)
                if sample == name and all(found.get(key) == value_ for key, value_ in labels.items())]

    def total(self, name: str, **labels: str) -> float:
        """Sum of :meth:`samples` (e.g. a serving counter over every replica)."""
        return sum(value for _, value in self.samples(name, **labels))


def serve_config(applications: Mapping[str, tuple[str, str]], *, port: int,
                 runtime_env: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A Serve config: ``applications`` maps a name to ``(import path, route prefix)``; HTTP on 127.0.0.1:``port``;
    ``runtime_env`` (optional) for every application."""
    apps = []
    for name, (import_path, route) in applications.items():
        app: dict[str, Any] = {"name": name, "route_prefix": route, "import_path": import_path}
        if runtime_env is not None:
            app["runtime_env"] = dict(runtime_env)
        apps.append(app)
    return {"proxy_location": "HeadOnly", "http_options": {"host": "127.0.0.1", "port": port}, "applications": apps}


def _temp_root() -> Path:
    # Ray's socket paths live under it and must stay within AF_UNIX's 107 bytes: keep it short
    return Path(tempfile.mkdtemp(prefix="swray-", dir="/tmp"))


class RayCluster(_Process):
    """An existing cluster: ``ray start --head`` (without servewatch), as a platform team would run it."""

    def __init__(self, directory: Path, *, num_cpus: int = 2) -> None:
        self.directory = directory
        self.log = directory / "ray-start.log"
        self.num_cpus = num_cpus
        self.port = free_port()
        self.temp = _temp_root()
        self.address = f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        process = self._spawn([str(BIN / "ray"), "start", "--head", f"--port={self.port}",
                               f"--num-cpus={self.num_cpus}", f"--temp-dir={self.temp}", "--dashboard-host=127.0.0.1",
                               "--dashboard-port=0", "--disable-usage-stats"], self.directory, _clean_env(None))
        if process.wait(START_TIMEOUT) != 0:
            raise RuntimeError(f"ray start failed\n{self.log_tail()}")

    def stop(self) -> None:
        super().stop()  # ray start's daemons stay in its session
        shutil.rmtree(self.temp, ignore_errors=True)

    def metrics_url(self) -> str:
        return _ray_metrics_url(self.temp)


def _ray_metrics_url(temp: Path) -> str:
    ports = list(temp.glob("ray/session_latest/metrics_export_port_*"))
    if not ports:
        raise FileNotFoundError(f"no metrics_export_port file under {temp}/ray/session_latest")
    return f"http://127.0.0.1:{ports[0].read_text().strip()}/metrics"


class ServeApp(_Process):
    """``serve run`` of ``config`` (see :func:`serve_config`) with ``pythonpath`` importable; ``instrumented``
    runs it under ``opentelemetry-instrument``; ``address`` deploys to an existing cluster instead of starting
    one; ``env`` is added to the environment. ``start`` returns once every path of ``probes`` answers its
    POSTed body with 2xx (without probes: once a replica answers a GET on every route prefix, whatever it
    answers)."""

    def __init__(self, directory: Path, config: Mapping[str, Any], *, pythonpath: Iterable[Path] = (),
                 instrumented: bool, env: Mapping[str, str] | None = None, address: str | None = None,
                 probes: Mapping[str, Any] | None = None) -> None:
        self.directory = directory
        self.config = config
        self.pythonpath = [str(path) for path in pythonpath]
        self.instrumented = instrumented
        self.extra_env = dict(env or {})
        self.address = address
        self.port = int(config["http_options"]["port"])
        self.probes = dict(probes or {})
        self.log = directory / "serve.log"
        self.temp = _temp_root()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        config_path = self.directory / "config.yaml"
        config_path.write_text(json.dumps(self.config, indent=2))  # JSON is YAML
        env = _clean_env({"RAY_TMPDIR": str(self.temp), **self.extra_env})
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(self.pythonpath)
        command = [str(BIN / "serve"), "run", str(config_path)]
        if self.address:
            command[2:2] = ["--address", self.address]
        if self.instrumented:
            command.insert(0, str(BIN / "opentelemetry-instrument"))
        self._spawn(command, self.directory, env)
        probes = self.probes or {app["route_prefix"]: None for app in self.config["applications"]}
        wait_for(lambda: all(self._answers(path, body) for path, body in probes.items()), START_TIMEOUT,
                 f"Serve to answer on {sorted(probes)}", interval=1.0)

    def _answers(self, path: str, body: Any) -> bool:
        """True when ``path`` answers: 2xx to a probe ``body``; without one, anything but 404 and 5xx."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"serve run exited with {self.process.returncode}\n{self.log_tail()}")
        try:
            status, _ = http(self.url + path, body, timeout=10)
        except OSError:
            return False
        if body is not None:
            return 200 <= status < 300
        return status not in (404, 502, 503, 504)  # a replica answered, if only with an error of its own

    def post(self, route: str, body: Any, timeout: float = 30.0) -> tuple[int, Any]:
        return http(self.url + route, body, timeout=timeout)

    def ray_metrics(self) -> list[tuple[str, dict[str, str], float]]:
        """Ray's own metrics (the dashboard agent's Prometheus endpoint of this app's cluster), parsed."""
        with urllib.request.urlopen(_ray_metrics_url(self.temp), timeout=10) as response:
            return parse_samples(response.read().decode())

    def ray_logs(self) -> Path:
        return self.temp / "ray" / "session_latest" / "logs"

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.temp, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        replicas = sorted(self.ray_logs().glob("worker-*.err")) if self.ray_logs().exists() else []
        errors = "\n".join(f"--- {path.name}\n{_tail(path, 15)}" for path in replicas
                           if "Traceback" in path.read_text(errors="replace"))
        return f"{super().log_tail(lines)}\n{errors}"
