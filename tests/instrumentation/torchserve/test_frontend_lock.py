"""Where the queue-time election's lock files live: a private directory of the user's, never a predictable
name in a directory others can write, and never through a symbolic link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from servewatch.instrumentation.torchserve import frontend
from servewatch.instrumentation.torchserve.frontend import QueueTimeBridge


def _elect(monkeypatch: pytest.MonkeyPatch, runtime: Path) -> QueueTimeBridge:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    bridge = QueueTimeBridge("churn", environ={})
    assert bridge._elected("http://127.0.0.1:8082/metrics")
    return bridge


def test_lock_files_live_in_a_private_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bridge = _elect(monkeypatch, tmp_path)
    private = tmp_path / "servewatch"
    assert private.is_dir() and private.stat().st_mode & 0o777 == 0o700
    (lock,) = private.iterdir()
    assert lock.stat().st_mode & 0o777 == 0o600
    bridge.close()
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setattr(frontend.tempfile, "gettempdir", lambda: str(tmp_path))
    assert frontend._private_dir() == str(tmp_path / f"servewatch-{os.getuid()}")


def test_a_directory_others_can_write_or_a_planted_link_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    shared = tmp_path / "servewatch"
    shared.mkdir(mode=0o700)
    shared.chmod(0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    with pytest.raises(OSError, match="not a private directory"):
        QueueTimeBridge("churn", environ={})._elected("http://127.0.0.1:8082/metrics")
    shared.chmod(0o700)
    bridge = _elect(monkeypatch, tmp_path)
    (lock,) = shared.iterdir()
    bridge.close()
    target = tmp_path / "victim"
    target.write_text("precious")
    lock.unlink()
    lock.symlink_to(target)                               # another user's trap at the predictable name
    with pytest.raises(OSError):
        QueueTimeBridge("churn", environ={})._elected("http://127.0.0.1:8082/metrics")
    assert target.read_text() == "precious"
