"""The dedicated fuzz loop: 20,000 hostile inputs into Profile.from_bytes, in a subprocess so a crash shows;
every range check of the wire is reached, and only ProfileError with a known reason comes out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_twenty_thousand_hostile_inputs(tmp_path: Path) -> None:
    script = Path(__file__).with_name("fuzz_profiles.py")
    run = subprocess.run([sys.executable, str(script), "20000", "20261126", str(tmp_path)], capture_output=True,
                         text=True, timeout=600)
    case = tmp_path / "case.bin"
    assert run.returncode == 0, (f"fuzz loop died (code {run.returncode}) on {case} "
                                 f"({case.stat().st_size if case.exists() else 0} bytes): {run.stderr[-2000:]}")
    assert "20000 cases" in run.stdout
    reasons = dict(item.split("=") for item in run.stdout.split("rejected by reason: ")[1].split(", "))
    for reason in ("rows_range", "count_range", "sequence_range", "interval", "name_length", "hollow_sketch",
                   "corrupt_sketch", "sketch_mismatch"):   # the field mutations reach every range check
        assert int(reasons.get(reason, 0)) > 0, (reason, run.stdout)
