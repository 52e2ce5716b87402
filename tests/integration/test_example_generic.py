"""examples/generic/README.md, run as written: every ```sh block, in order, in one shell, on free ports (and a
temporary folder instead of /tmp/sw-generic), in a copy of the example. It must reach what the README promises:
the serving metrics and an ok drift gauge after the unshifted traffic, a critical one for amount after the
shifted traffic, and the detector's log line saying so.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "generic"
PORTS = ("4318", "4317", "9108", "8000")


def shell_blocks(readme: Path) -> list[str]:
    """The ```sh blocks of ``readme``, in order."""
    return re.findall(r"^```sh\n(.*?)^```$", readme.read_text(), flags=re.M | re.S)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def test_the_readme_commands_reach_a_drift_gauge(tmp_path: Path) -> None:
    blocks = shell_blocks(EXAMPLE / "README.md")
    assert len(blocks) == 4 and "--shift amount=3" in blocks[3]
    script = "\n".join(blocks).replace("/tmp/sw-generic", str(tmp_path / "work"))
    for port, free in zip(PORTS, _free_ports(len(PORTS))):
        assert re.search(rf"\b{port}\b", script), port
        script = re.sub(rf"\b{port}\b", str(free), script)
    copy = tmp_path / "repo" / "examples" / "generic"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("fraud.pb", "__pycache__"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("w") as stdout_file, err.open("w") as stderr_file:
        process = subprocess.Popen(["bash", "-e", "-c", script], cwd=copy.parents[1], env=env, stdout=stdout_file,
                                   stderr=stderr_file, start_new_session=True)
    try:
        process.wait(timeout=240)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)   # whatever the script left running in the background
        except ProcessLookupError:
            pass
        process.wait()
    stdout, stderr = out.read_text(), err.read_text()
    assert process.returncode == 0, stdout + stderr
    assert (copy / "fraud.pb").stat().st_size > 0
    first, second = stdout.split("sent ", 2)[1:3]
    assert re.search(r"^servewatch_inference_requests_total\{.*\} [1-9]", first, flags=re.M), first
    calm = _severities(first)
    assert calm and set(calm.values()) == {0.0}, first                   # the training-like traffic: all ok
    shifted = _severities(second)
    assert shifted["amount"] == 2.0 and shifted["age"] == 0.0, second   # amount critical, the others not
    assert re.search(r"fraud/input 5m: amount (ok|warning) -> critical \(ks ", stderr), stderr
    assert "fraud/input: reference ready (file " in stderr


def _severities(text: str) -> dict[str, float]:
    found = {}
    for labels, value in re.findall(r'^servewatch_drift_severity\{(.*?)\} (\S+)$', text, flags=re.M):
        if 'model="fraud"' in labels and 'window="5m"' in labels:
            found[re.search(r'feature="(\w*)"', labels).group(1)] = float(value)  # type: ignore[union-attr]
    return found
