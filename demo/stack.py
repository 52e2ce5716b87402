"""The processes of the demo: the model server, Prometheus, Alertmanager, and the webhook that gets paged.

Usage::

    processes = Processes(out / "logs")
    hook = Webhook().start()                                   # Alertmanager's receivers, in this process
    try:
        start_server(processes, env)                           # uvicorn + the instrumented app, booting
        binaries = alerting_binaries()                         # (prometheus, alertmanager) or None
        if binaries:
            stack = start_alerting(processes, out / "stack", binaries, rules_yml, alertmanager_document,
                                   detector.metrics_url, job="servewatch-detector")
        url = server_url(processes)                            # once the server answers /healthz
        processes.check()                                      # raises DemoError when a service died
    finally:
        processes.stop(); hook.stop()

Every child gets its own process group (Ctrl-C in the terminal reaches only the demo, which stops them in
reverse order: SIGTERM, then SIGKILL after a grace period) and writes its output to ``<logs>/<name>.log``.
Servers listen on 127.0.0.1 only. Prometheus and Alertmanager are used where their binaries are installed
(``prometheus``; ``prometheus-alertmanager`` as Debian names it, or ``alertmanager``).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from ..errors import ServewatchError

__all__ = ["Alerting", "DemoError", "Notification", "Processes", "Webhook", "alerting_binaries", "environment",
           "server_url", "start_alerting", "start_server", "wait_until"]


class DemoError(ServewatchError):
    """A part of the demo could not start or died (the message says which, and where its log is)."""


class Processes:
    """Child processes, started in order and stopped in reverse; see the module docstring."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.services: set[str] = set()

    def start(self, name: str, argv: list[str], env: Mapping[str, str] | None = None, *,
              service: bool = True) -> subprocess.Popen[bytes]:
        """Start ``argv``; a ``service`` must keep running (:meth:`check`), a task may end."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.log_path(name), "wb") as log:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       env=dict(env) if env is not None else None, start_new_session=True)
        self.running.append((name, process))
        if service:
            self.services.add(name)
        return process

    def wait(self, name: str, timeout: float) -> int:
        """Wait for the task ``name`` to end; its exit status (DemoError when it takes too long)."""
        for known, process in self.running:
            if known == name:
                try:
                    return process.wait(timeout)
                except subprocess.TimeoutExpired:
                    raise DemoError(f"{name} still running after {timeout:.0f} s "
                                    f"(log: {self.log_path(name)})") from None
        raise KeyError(name)

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def log_tail(self, name: str, lines: int = 12) -> str:
        try:
            return "\n".join(self.log_path(name).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check(self) -> None:
        """Raise :class:`DemoError` when a service has exited."""
        for name, process in self.running:
            if name in self.services and process.poll() is not None:
                raise DemoError(f"{name} exited with status {process.returncode} (log: {self.log_path(name)}):\n"
                                f"{self.log_tail(name)}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every child (newest first), wait up to ``grace`` seconds, then SIGKILL what is left."""
        for _, process in reversed(self.running):
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + grace
        for _, process in reversed(self.running):
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running.clear()
        self.services.clear()


def wait_until(what: str, ready: Callable[[], Any], processes: Processes, timeout: float = 60.0) -> Any:
    """Poll ``ready()`` until it returns something true (OSError counts as not yet); DemoError on timeout or
    when a child dies meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = ready()
        except OSError:
            result = None
        if result:
            return result
        processes.check()
        if time.monotonic() > deadline:
            raise DemoError(f"{what} not ready after {timeout:.0f} s")
        time.sleep(0.1)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def start_server(processes: Processes, env: Mapping[str, str]) -> None:
    """Start the instrumented model server under uvicorn on a free loopback port (:func:`server_url` waits
    for it).

    ``--port 0`` and the bound port read back from uvicorn's start-up line (``--fd`` with a socket bound
    here would avoid that, but uvicorn then takes the socket for a Unix one and leaves Nagle's algorithm on:
    40 ms per request)."""
    argv = [sys.executable, "-m", "uvicorn", "servewatch.demo.server:app", "--host", "127.0.0.1", "--port", "0",
            "--no-access-log", "--timeout-graceful-shutdown", "5"]
    processes.start("server", argv, env)


def server_url(processes: Processes, timeout: float = 60.0) -> str:
    """The model server's base URL, once it answers ``/healthz``."""
    pattern = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")

    def bound() -> str | None:
        found = pattern.search(processes.log_path("server").read_text(errors="replace"))
        return found.group(1) if found else None

    url = wait_until("the model server (uvicorn)", bound, processes, timeout)
    wait_until("the model server's /healthz", lambda: _http_ok(f"{url}/healthz"), processes, timeout)
    return url


@dataclass(frozen=True)
class Notification:
    """One alert of one webhook notification: when it arrived (``at``), on which receiver path, its status,
    labels and annotations, and when the alert started firing (``starts``, Unix seconds; None if unknown)."""

    at: float
    receiver: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts: float | None = None


def _timestamp(text: object) -> float | None:
    """An RFC 3339 time as Alertmanager writes it (nanoseconds allowed) -> Unix seconds."""
    if not isinstance(text, str) or not text:
        return None
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if match is None:
        return None
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    try:
        whole = datetime.datetime.fromisoformat(match.group(1) + zone).timestamp()
    except ValueError:
        return None
    return whole + float("0" + (match.group(2) or ".0"))


class Webhook(ThreadingHTTPServer):
    """The receivers Alertmanager delivers to (``/pager``, ``/tickets``), in this process, on a free port."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Hook)
        self.notifications: list[Notification] = []
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{path}"

    def start(self) -> Webhook:
        self._thread = threading.Thread(target=self.serve_forever, name="servewatch-demo-webhook", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(5)
        self.server_close()

    def received(self) -> list[Notification]:
        with self.lock:
            return list(self.notifications)


class _Hook(BaseHTTPRequestHandler):
    server: Webhook

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            alerts = body.get("alerts", []) if isinstance(body, dict) else []
        except (ValueError, TypeError):
            alerts = []
        now = time.time()
        with self.server.lock:
            for alert in alerts:
                if isinstance(alert, dict):
                    self.server.notifications.append(Notification(
                        now, self.path.strip("/"), str(alert.get("status", "")), dict(alert.get("labels") or {}),
                        dict(alert.get("annotations") or {}), _timestamp(alert.get("startsAt"))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def alerting_binaries() -> tuple[str, str] | None:
    """(prometheus, alertmanager) paths where both are installed, else None."""
    prometheus = shutil.which("prometheus")
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    return (prometheus, alertmanager) if prometheus and alertmanager else None


@dataclass(frozen=True)
class Alerting:
    """Where the running Prometheus and Alertmanager answer."""

    prometheus: str
    alertmanager: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_alerting(processes: Processes, directory: Path, binaries: tuple[str, str], rules: Path,
                   alertmanager_config: dict[str, Any], metrics_url: str, job: str,
                   timeout: float = 60.0) -> Alerting:
    """Start Alertmanager (``alertmanager_config``) and Prometheus (scraping ``metrics_url`` as ``job`` every
    second, evaluating ``rules`` every second, alerting that Alertmanager); both answer when this returns."""
    prometheus_bin, alertmanager_bin = binaries
    directory.mkdir(parents=True, exist_ok=True)
    am_port, prom_port = _free_port(), _free_port()
    am_config = directory / "alertmanager.yml"
    am_config.write_text(yaml.safe_dump(alertmanager_config, sort_keys=False))
    processes.start("alertmanager", [alertmanager_bin, f"--config.file={am_config}",
                                     f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
                                     f"--storage.path={directory / 'alertmanager-data'}"])
    target = metrics_url.removeprefix("http://").split("/", 1)[0]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules.resolve())],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [{"job_name": job, "honor_labels": True, "static_configs": [{"targets": [target]}]}],
    }
    prom_config = directory / "prometheus.yml"
    prom_config.write_text(yaml.safe_dump(config, sort_keys=False))
    processes.start("prometheus", [prometheus_bin, f"--config.file={prom_config}",
                                   f"--web.listen-address=127.0.0.1:{prom_port}",
                                   f"--storage.tsdb.path={directory / 'prometheus-data'}"])
    alerting = Alerting(f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}")
    wait_until("Alertmanager", lambda: _http_ok(f"{alerting.alertmanager}/-/ready"), processes, timeout)
    wait_until("Prometheus", lambda: _http_ok(f"{alerting.prometheus}/-/ready"), processes, timeout)
    return alerting


def environment(**values: str) -> dict[str, str]:
    """This process's environment with ``values`` set (and ``PYTHONUNBUFFERED`` so logs arrive at once)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **values}
