"""How instrumented processes end, for real: quietly (no "leaked" warnings of datasketches at interpreter
teardown) and promptly (the exit flush waits at most EXIT_TIMEOUT in all, whatever the OTLP endpoint does:
refuse connections, or accept them and never answer), in a plain script and in a uvicorn server stopped with
SIGTERM. Every exporter here may take 30 s per request (``OTEL_EXPORTER_OTLP_TIMEOUT``): an exit that waited
for it would take minutes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servewatch.instrumentation.runtime import EXIT_TIMEOUT
from support import free_port

pytestmark = pytest.mark.integration

SLACK = 4.0
"""Seconds an exit may take beyond EXIT_TIMEOUT here (interpreter teardown, a loaded machine)."""
SPEC = """\
models:
  - name: fraud
    features:
      - {name: amount, type: numeric}
      - {name: country, type: categorical}
    predictions:
      - {name: score, type: numeric}
"""


class Silent:
    """An endpoint that accepts TCP connections and never answers."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self._held.append(self._socket.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self._socket.close()
        for held in self._held:
            held.close()


def refusing_endpoint() -> str:
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(params=["silent", "refusing"])
def dead_endpoint(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "refusing":
        yield refusing_endpoint()
        return
    silent = Silent()
    try:
        yield silent.endpoint
    finally:
        silent.close()


def environment(endpoint: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "SERVEWATCH_"))}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="30", **extra)
    return env


def test_a_normal_exit_is_quiet(receiver: Any, tmp_path: Path) -> None:
    """A spec makes every model hold live sketches from its first call on; a daemon thread still running at
    teardown (the runtime's own, ending; a framework's) keeps whatever it references alive, which datasketches
    reports as leaked instances, types and functions on stderr."""
    (tmp_path / "spec.yaml").write_text(SPEC)
    script = tmp_path / "serve.py"
    script.write_text(textwrap.dedent("""
        import threading, time
        from servewatch.instrumentation import record, runtime

        for _ in range(3):
            record("fraud", [{"amount": 12.5, "country": "DE"}], [0.25], duration=0.01)
        held = runtime.active()
        threading.Thread(target=lambda: time.sleep(3600) or held, daemon=True).start()
    """))
    env = environment(receiver.endpoint, SERVEWATCH_SPEC=str(tmp_path / "spec.yaml"))
    for _ in range(2):                      # the plain race too: the runtime's thread ending at teardown
        result = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "leaked" not in result.stderr, result.stderr
    rows = sum(profile.rows for profile, _ in receiver.profiles() if profile.signal == "input")
    assert rows == 2 * 3                   # the last interval still left, in full


@pytest.mark.parametrize(("dead_endpoint", "threads"), [("silent", False), ("refusing", True)],
                         ids=["silent-no-new-threads", "refusing"], indirect=["dead_endpoint"])
def test_a_script_exits_promptly_when_the_endpoint_is_gone(dead_endpoint: str, tmp_path: Path,
                                                           threads: bool) -> None:
    """``no-new-threads``: as on Python 3.12, where no exit hook may start a thread."""
    script = tmp_path / "serve.py"
    script.write_text(textwrap.dedent(f"""
        import threading, time
        import numpy as np
        from servewatch.instrumentation import record, runtime

        record("m", np.ones((4, 3)), np.ones(4), duration=0.01)
        while runtime.active().metrics is None:     # exporters built: the wait below is the endpoint's alone
            time.sleep(0.01)
        record("m", np.ones((2, 3)), np.ones(2), duration=0.01)
        if not {threads!r}:
            def refuse(self):
                raise RuntimeError("can't create new thread at interpreter shutdown")
            threading.Thread.start = refuse
        print("ending", time.time(), flush=True)
    """))
    result = subprocess.run([sys.executable, str(script)], env=environment(dead_endpoint), capture_output=True,
                            text=True, timeout=120)
    ended = time.time()
    assert result.returncode == 0, result.stderr
    (marker,) = re.findall(r"^ending ([\d.]+)$", result.stdout, re.MULTILINE)
    assert ended - float(marker) < EXIT_TIMEOUT + SLACK, result.stderr
    assert "leaked" not in result.stderr and "Traceback" not in result.stderr, result.stderr


APP = '''
import asyncio, json
from servewatch.instrumentation import flush, monitor

@monitor("m")
def predict(rows):
    return [sum(row) for row in rows]

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(flush)      # uvicorn ends by re-raising SIGTERM: no exit hooks
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = json.dumps(predict(json.loads(body))).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": answer})
'''


def test_a_uvicorn_server_stops_promptly_on_sigterm_when_the_endpoint_is_gone(dead_endpoint: str,
                                                                              tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    import requests

    (tmp_path / "app.py").write_text(APP)
    env = environment(dead_endpoint, OTEL_METRIC_EXPORT_INTERVAL="500", SERVEWATCH_PROFILE_INTERVAL="0.5")
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "--app-dir", str(tmp_path), "app:app", "--host",
                                "127.0.0.1", "--port", "0"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        for line in process.stdout:  # type: ignore[union-attr]
            output.append(line)
            found = re.search(r"running on (http://127\.0\.0\.1:\d+)", line)
            if found:
                break
        assert found, "".join(output)
        for _ in range(5):
            assert requests.post(found.group(1), json=[[1.0, 2.0], [3.0, 4.0]], timeout=10).json() == [3.0, 7.0]
        time.sleep(1.5)                     # exports under way: the thread is stuck on the endpoint
        stopped = time.time()
        process.send_signal(signal.SIGTERM)
        output.extend(process.communicate(timeout=120)[0])
        ended = time.time()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = "".join(output)
    assert process.returncode in (0, -signal.SIGTERM), text
    assert "Application shutdown complete" in text and ended - stopped < EXIT_TIMEOUT + SLACK, text
