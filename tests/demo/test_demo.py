"""``servewatch demo --fast`` end to end, as CI runs it: real uvicorn server, detector, Prometheus and
Alertmanager (where installed); every phase flags exactly its drifted columns; the outputs are there and
valid; Ctrl-C and bad input stop everything."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ALERTING = shutil.which("prometheus") is not None and (
    shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")) is not None


def demo(out: Path, *extra: str) -> subprocess.Popen[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "SERVEWATCH_"))}
    return subprocess.Popen([sys.executable, "-m", "servewatch.cli", "demo", "--fast", "--no-live", "--out",
                             str(out), *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def leftovers(out: Path) -> list[str]:
    """Processes still running that the demo in ``out`` started (by command line or environment)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (proc / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(out) in cmdline or f"{out}/model.json" in environ:
            found.append(f"{proc.name}: {cmdline}")
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str, float]:
    out = tmp_path_factory.mktemp("demo") / "out"
    started = time.monotonic()
    process = demo(out)
    try:
        output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    wall = time.monotonic() - started
    print(f"\nservewatch demo --fast: {wall:.0f} s\n{output[-3000:]}")
    return out, process.returncode, output, wall


def test_every_phase_flags_exactly_its_drifted_columns(run: tuple[Path, int, str, float]) -> None:
    out, status, output, _ = run
    assert status == 0, output[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] and summary["failures"] == 0 and summary["requests"] > 500
    phases = {phase["name"]: phase for phase in summary["phases"]}
    assert list(phases) == ["baseline", "instantaneous", "gradual", "periodic", "temporary"]
    for phase in phases.values():
        assert phase["ok"], phase
        assert sorted(phase["flagged"]) == sorted(phase["expected"]), phase
        assert phase["evaluations"] > 0 and phase["cleared"], phase
    assert phases["baseline"]["flagged"] == []
    assert set(phases["instantaneous"]["flagged"]) == {"precipitation", "weather"}
    assert set(phases["gradual"]["flagged"]) == {"temp_max", "probability"}
    assert set(phases["periodic"]["flagged"]) == {"temp_max", "temp_min", "probability"}
    assert phases["temporary"]["flagged"] == ["wind"]
    assert "every phase flagged exactly its drifted columns" in output


def test_writes_valid_dashboards_rules_and_alertmanager_config(run: tuple[Path, int, str, float]) -> None:
    out = run[0]
    spec = out / "servewatch.yaml"
    assert "reference: reference.pb" in spec.read_text() and (out / "reference.pb").stat().st_size > 0
    boards = sorted(path.name for path in (out / "dashboards").glob("*.json"))
    assert "servewatch-model-weather.json" in boards and "servewatch-overview.json" in boards
    for board in boards:
        document = json.loads((out / "dashboards" / board).read_text())
        assert document["panels"] and document["uid"]
    assert (out / "dashboards" / "servewatch-dashboards.yaml").exists()
    rules, config = out / "alerts" / "rules.yml", out / "alerts" / "alertmanager.yml"
    assert "ServewatchInputDrift" in rules.read_text()
    promtool, amtool = shutil.which("promtool"), shutil.which("amtool")
    if promtool is None or amtool is None:
        pytest.skip("promtool / amtool not installed")
    for argv in ([promtool, "check", "rules", str(rules)], [amtool, "check-config", str(config)]):
        checked = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads((out / "summary.json").read_text())["checks"]


def test_writes_a_picture_report_of_each_drift(run: tuple[Path, int, str, float]) -> None:
    out = run[0]
    for phase in ("instantaneous", "gradual", "periodic", "temporary"):
        html, png = out / "report" / f"{phase}.html", out / "report" / f"{phase}.png"
        assert html.stat().st_size > 10_000 and "data:image/png;base64," in html.read_text(), phase
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, phase
        assert (out / "windows" / f"{phase}.pb").stat().st_size > 0
    assert "temp_max" in (out / "report" / "gradual.html").read_text()


def test_pages_arrive_through_prometheus_and_alertmanager(run: tuple[Path, int, str, float]) -> None:
    out, _, output, _ = run
    summary = json.loads((out / "summary.json").read_text())
    if not ALERTING:
        assert not summary["alerting"]
        pytest.skip("prometheus / alertmanager not installed")
    assert summary["alerting"] and summary["pages"] >= 1, output[-3000:]
    for phase in summary["phases"]:  # only the drifted columns of each phase page (none in the baseline)
        paged = {(page["alertname"], page["feature"]) for page in phase["pages"]}
        assert {feature for _, feature in paged} <= set(phase["expected"]), (phase["name"], paged)
        assert {name for name, _ in paged} <= {"ServewatchInputDrift", "ServewatchPredictionDrift"}, paged
    assert "PAGE Servewatch" in output


def test_nothing_is_left_running(run: tuple[Path, int, str, float]) -> None:
    assert leftovers(run[0]) == []


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = demo(out)
    try:
        assert process.stdout is not None
        for line in process.stdout:  # wait until the replay runs (every process is up)
            if "phase 1/5" in line:
                break
        assert leftovers(out), "the demo's processes should be running"
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, output
    assert "interrupted" in output
    assert leftovers(out) == []


def test_a_dying_server_stops_everything_with_a_reason(tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = demo(out)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("model server:"):
                break
        servers = [entry.split(":")[0] for entry in leftovers(out) if "uvicorn" in entry]
        assert len(servers) == 1
        os.kill(int(servers[0]), signal.SIGKILL)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 2, output
    assert "servewatch demo: server exited with status -9" in output
    assert leftovers(out) == []


def test_refuses_an_output_folder_it_does_not_own(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "precious.txt").write_text("keep me")
    process = demo(tmp_path)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 2 and "not from a servewatch demo run" in output
    assert (tmp_path / "state" / "precious.txt").read_text() == "keep me"
    assert leftovers(tmp_path) == []
