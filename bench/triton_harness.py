"""Real processes for the Triton benchmark and integration tests: the detector, a PyTriton app, the bundled
tritonserver, the example client.

    from triton_harness import Processes, start_detector, start_pytriton_app, wait_for   # tests load it by path
    with Processes(tmp_path) as processes:
        detector = start_detector(processes, spec_path)
        app, ports = start_pytriton_app(processes, serving_environment(detector, spec_path))
        wait_for(lambda: ..., 60, "what", processes)     # on timeout: the tail of every log
    # every process (and its process group: tritonserver, python-backend stubs) is stopped on exit

They run from the virtual environment of the running interpreter (``.venv-triton``: Debian's python3.11, numpy<2,
PyTriton and tritonclient); ports come from binding port 0; everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "triton"
START_TIMEOUT = 120.0
"""Seconds a server may take to become ready (a loaded 2-core machine is slow)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def triton_available() -> str | None:
    """Why the Triton tests cannot run here (None when they can)."""
    try:
        import pytriton  # noqa: F401
        import tritonclient.grpc  # noqa: F401
    except ImportError as error:
        return f"needs the triton extra (make venv-triton; run with .venv-triton/bin/pytest): {error}"
    if not sysconfig.get_config_var("Py_ENABLE_SHARED"):
        return "PyTriton's python-backend stub needs a shared libpython"
    return None


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without OTEL_*/SERVEWATCH_* settings, with this venv first on PATH and this
    interpreter's libpython first on LD_LIBRARY_PATH (the stub must load the libpython of this interpreter)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "SERVEWATCH_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    libraries = [str(sysconfig.get_config_var("LIBDIR"))] + ([env["LD_LIBRARY_PATH"]] if env.get("LD_LIBRARY_PATH")
                                                             else [])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(libraries)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            text = []
        return f"--- {self.name} (exit {self.popen.poll()}) {self.log}\n" + "\n".join(text)

    def stop(self, timeout: float = 30.0) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # the group: tritonserver and its stubs, whatever the leader did
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.popen.poll() is None:
            self.popen.wait(10)


@dataclass
class Processes:
    """Starts processes in their own process groups, logs in ``folder``; stops them all on exit."""

    folder: Path
    running: list[Process] = field(default_factory=list)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop_all()

    def start(self, name: str, command: Sequence[str], env: dict[str, str], cwd: Path | None = None) -> Process:
        log = self.folder / f"{name}.log"
        handle = open(log, "wb")  # noqa: SIM115 - the child owns it
        popen = subprocess.Popen(list(command), env=env, cwd=cwd or self.folder, stdout=handle,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()
        process = Process(name, popen, log)
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.running):
            process.stop()

    def tails(self) -> str:
        return "\n".join(process.tail() for process in self.running)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, processes: Processes | None = None,
              interval: float = 0.25) -> Any:
    """Poll ``condition`` until it returns something true; on timeout fail with the logs' tails."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:  # a server not up yet
            value = None
        if value:
            return value
        if processes is not None:
            dead = [p for p in processes.running if p.popen.poll() is not None and p.popen.returncode != 0]
            if dead:
                raise AssertionError(f"{dead[0].name} died while waiting for {what}\n{processes.tails()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n"
                                 + (processes.tails() if processes else ""))
        time.sleep(interval)


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


# -- the detector ----------------------------------------------------------------------------------------------

@dataclass
class Detector:
    process: Process
    endpoint: str
    metrics_url: str

    def samples(self) -> list[tuple[str, dict[str, str], float]]:
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(self.metrics_url, timeout=10) as response:
            text = response.read().decode()
        return [(sample.name, sample.labels, sample.value) for family in text_string_to_metric_families(text)
                for sample in family.samples]

    def values(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        """Samples of ``name`` whose labels include ``labels``."""
        return [(found, value) for sample, found, value in self.samples()
                if sample == name and all(found.get(key) == wanted for key, wanted in labels.items())]

    def total(self, name: str, **labels: str) -> float:
        return sum(value for _, value in self.values(name, **labels))


def start_detector(processes: Processes, spec: Path) -> Detector:
    """``servewatch detect`` on free ports with ``spec`` (its state in the processes' folder)."""
    metrics_port = free_port()
    listen_port = free_port()
    process = processes.start("detector", [str(BIN / "servewatch"), "detect", "--spec", str(spec), "--state",
                                           str(processes.folder / "detector-state"), "--listen",
                                           f"127.0.0.1:{listen_port}", "--metrics-listen",
                                           f"127.0.0.1:{metrics_port}"], environment())
    detector = Detector(process, f"http://127.0.0.1:{listen_port}", f"http://127.0.0.1:{metrics_port}/metrics")
    wait_for(lambda: http_ok(f"http://127.0.0.1:{metrics_port}/readyz"), START_TIMEOUT, "the detector", processes)
    return detector


def serving_environment(detector: Detector, spec: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """What an instrumented serving process gets: the detector as OTLP endpoint, a 1 s time scale."""
    return environment({"OTEL_EXPORTER_OTLP_ENDPOINT": detector.endpoint, "SERVEWATCH_SPEC": str(spec),
                        "SERVEWATCH_PROFILE_INTERVAL": "1", "OTEL_METRIC_EXPORT_INTERVAL": "1000",
                        "OTEL_SERVICE_NAME": "triton-test", **(extra or {})})


# -- Triton ----------------------------------------------------------------------------------------------------

@dataclass
class Ports:
    http: int
    grpc: int
    metrics: int

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics}/metrics"


def _ready(ports: Ports, models: Sequence[str]) -> bool:
    return all(http_ok(f"http://127.0.0.1:{ports.http}/v2/models/{model}/ready") for model in models)


def start_pytriton_app(processes: Processes, env: dict[str, str], *, instrumented: bool = True,
                       name: str = "pytriton") -> tuple[Process, Ports]:
    """examples/triton/app.py (under ``opentelemetry-instrument`` when ``instrumented``), ready to serve."""
    ports = Ports(free_port(), free_port(), free_port())
    command = [str(BIN / "python"), str(EXAMPLES / "app.py"), "--http-port", str(ports.http), "--grpc-port",
               str(ports.grpc), "--metrics-port", str(ports.metrics)]
    if instrumented:
        command = [str(BIN / "opentelemetry-instrument"), *command]
    process = processes.start(name, command, env, cwd=EXAMPLES)
    wait_for(lambda: _ready(ports, ("churn", "iris")), START_TIMEOUT, "the PyTriton app", processes)
    return process, ports


def tritonserver_paths() -> tuple[Path, Path, Path]:
    """(tritonserver binary, backends folder, python-backend stub for this interpreter) inside the PyTriton wheel."""
    import pytriton

    root = Path(pytriton.__file__).parent / "tritonserver"
    stub = root / "python_backend_stubs" / f"{sys.version_info[0]}.{sys.version_info[1]}" / "triton_python_backend_stub"
    return root / "bin" / "tritonserver", root / "backends", stub


def start_tritonserver(processes: Processes, repositories: Sequence[Path], env: dict[str, str],
                       models: Sequence[str]) -> tuple[Process, Ports]:
    """The tritonserver bundled with PyTriton serving ``repositories``, ready with ``models``."""
    binary, backends, stub = tritonserver_paths()
    local = processes.folder / "backends"
    if not local.exists():
        shutil.copytree(backends, local, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copy(stub, local / "python" / "triton_python_backend_stub")
    import pytriton

    libraries = Path(pytriton.__file__).parent.parent / "nvidia_pytriton.libs"
    env = {**env, "LD_LIBRARY_PATH": f"{env['LD_LIBRARY_PATH']}{os.pathsep}{libraries}"}
    ports = Ports(free_port(), free_port(), free_port())
    command = [str(binary), *[f"--model-repository={repository}" for repository in repositories],
               f"--backend-directory={local}", f"--http-port={ports.http}", f"--grpc-port={ports.grpc}",
               f"--metrics-port={ports.metrics}", "--http-address=127.0.0.1", "--grpc-address=127.0.0.1",
               "--metrics-address=127.0.0.1", "--allow-gpu-metrics=false", "--metrics-interval-ms=500",
               "--log-verbose=0"]
    process = processes.start("tritonserver", command, env)
    wait_for(lambda: _ready(ports, models), START_TIMEOUT, "tritonserver", processes)
    return process, ports


def run_client(env: dict[str, str], *arguments: str, instrumented: bool = False, timeout: float = 180.0) -> str:
    """examples/triton/client.py with ``arguments``; returns its summary line (fails with its output)."""
    command = [str(BIN / "python"), str(EXAMPLES / "client.py"), *arguments]
    if instrumented:
        command = [str(BIN / "opentelemetry-instrument"), *command]
    result = subprocess.run(command, env=env, cwd=EXAMPLES, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"client exit {result.returncode}: {' '.join(arguments)}\n{result.stdout}\n{result.stderr}")
    lines = [line for line in result.stdout.splitlines() if line.startswith("sent ")]
    assert lines, result.stdout + result.stderr
    return lines[-1]


def summary_counts(line: str) -> tuple[int, int]:
    """(ok, failed) of a client summary line."""
    found = re.search(r"(\d+) ok, (\d+) failed", line)
    assert found is not None, line
    return int(found.group(1)), int(found.group(2))


def example_client() -> Any:
    """examples/triton/client.py as a module (its ``run(parse_args([...]))`` sends traffic from this process)."""
    import importlib.util

    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    loaded = sys.modules.get("servewatch_triton_example_client")
    if loaded is None:
        spec = importlib.util.spec_from_file_location("servewatch_triton_example_client", EXAMPLES / "client.py")
        loaded = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[spec.name] = loaded  # type: ignore[union-attr]
        spec.loader.exec_module(loaded)  # type: ignore[union-attr]
    return loaded


def send(*arguments: str) -> tuple[int, int]:
    """(ok, failed) requests of one in-process run of the example client (not instrumented)."""
    client = example_client()
    outcomes = client.run(client.parse_args(list(arguments)))
    return outcomes.count(True), outcomes.count(False)
