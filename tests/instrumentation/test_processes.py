"""The process model, for real: instrumented interpreters exporting over OTLP/HTTP to a recording receiver.

- a process that never serves exports nothing (launchers, helpers), whatever it imports and registers;
- a forked child and a subprocess child each report under their own service.instance.id, none re-sends
  another's data;
- a receiver that is down, then up: nothing is lost, nothing fails; a slow receiver: nothing fails;
- unexpected values and failing extraction: zero failed requests, the errors counted and exported;
- at exit the metrics leave once, and what a thread still records after the main thread ended leaves too.
"""

from __future__ import annotations

import collections
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from support import free_port

pytestmark = pytest.mark.integration

FAST = {"SERVEWATCH_PROFILE_INTERVAL": "0.2", "OTEL_METRIC_EXPORT_INTERVAL": "200"}


def otlp(receiver: Any, **extra: str) -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, **FAST, **extra}


def rows_by_producer(receiver: Any) -> dict[str, collections.Counter]:
    rows: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for profile, resource in receiver.profiles():
        assert profile.producer == resource["service.instance.id"]
        rows[profile.producer][profile.signal] += profile.rows
    return rows


def test_a_process_that_never_serves_exports_nothing(receiver: Any, run_python: Any) -> None:
    result = run_python("""
        import threading, time
        from servewatch.instrumentation import ServewatchInstrumentor, monitor, observe_queue_time, register_metrics

        @monitor("never")
        def predict(x):
            return x

        class Launcher(ServewatchInstrumentor):
            framework = "fake"
            def _patch(self, **kwargs):
                self.wrap("json", "dumps", lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs))

        Launcher().instrument(skip_dep_check=True)
        observe_queue_time(lambda: {"never": 1.0}, framework="fake")
        register_metrics(lambda meter: print("setup"), produce=lambda: print("produce") or [], scope="fake")
        time.sleep(1.5)                               # several profile and metric intervals
        print(sorted(t.name for t in threading.enumerate()))
        print(sorted(m for m in ("numpy", "datasketches", "opentelemetry.sdk") if m in sys.modules))
    """.replace("import threading, time", "import sys, threading, time"), otlp(receiver))
    assert "servewatch" not in result.stdout and "setup" not in result.stdout and "produce" not in result.stdout
    assert result.stdout.splitlines()[-1] == "[]"    # nothing heavy is even imported
    assert receiver.requests == []


SLOW = {"SERVEWATCH_PROFILE_INTERVAL": "3600", "OTEL_METRIC_EXPORT_INTERVAL": "3600000"}
"""No periodic export: what is received was sent by flushes."""


def test_metrics_leave_once_at_exit(receiver: Any, run_python: Any) -> None:
    run_python("""
        import time
        import numpy as np
        from servewatch.instrumentation import flush, record, runtime

        record("m", np.ones((2, 3)), np.ones(2), duration=0.01)
        assert flush(10)                              # a framework's shutdown hook; then the exit hooks run
    """, otlp(receiver, **SLOW))
    assert len(receiver.of("/v1/metrics")) == 1 and len(receiver.of("/v1/logs")) == 1
    ((_, point, _),) = receiver.metric_points("servewatch.inference.requests")
    assert point.as_int == 1


def test_what_is_recorded_after_the_main_thread_ended_still_leaves(receiver: Any, run_python: Any) -> None:
    run_python("""
        import threading, time
        import numpy as np
        from servewatch.instrumentation import record, runtime

        record("m", np.ones((2, 3)), np.ones(2), duration=0.01)
        while runtime.active().metrics is None:       # exporters built: the first exit flush is prompt
            time.sleep(0.01)

        def late():
            time.sleep(1.0)                           # the first exit flush (main thread ended) is over by now
            record("m", np.ones((1, 3)), np.ones(1), duration=0.01)

        threading.Thread(target=late).start()         # a non-daemon thread, still serving
    """, otlp(receiver, **SLOW))
    points = [point.as_int for _, point, _ in receiver.metric_points("servewatch.inference.requests")]
    assert points == [1, 2]                           # at the main thread's end, then at exit: the late call
    assert sorted(profile.rows for profile, _ in receiver.profiles() if profile.signal == "input") == [1, 2]


def test_forked_and_spawned_children_report_under_their_own_identity(receiver: Any, run_python: Any,
                                                                      tmp_path: Path) -> None:
    child = tmp_path / "child.py"
    child.write_text(textwrap.dedent("""
        import numpy as np
        from servewatch.instrumentation import record
        record("m", np.ones((11, 2)), np.ones(11), duration=0.001)
    """))
    run_python(f"""
        import os, subprocess, sys
        import numpy as np
        from servewatch.instrumentation import record, runtime

        record("m", np.ones((5, 2)), np.ones(5), duration=0.001)
        parent = runtime.active().instance_id
        pid = os.fork()
        if pid == 0:
            record("m", np.ones((7, 2)), np.ones(7), duration=0.001)
            assert runtime.active().instance_id != parent
            sys.exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        subprocess.run([sys.executable, {str(child)!r}], check=True)
        record("m", np.ones((3, 2)), np.ones(3), duration=0.001)
    """, otlp(receiver))
    rows = rows_by_producer(receiver)
    assert sorted(counts["input"] for counts in rows.values()) == [7, 8, 11]
    assert all(counts["input"] == counts["prediction"] for counts in rows.values())
    requests = {resource["service.instance.id"]: point.as_int
                for _, point, resource in receiver.metric_points("servewatch.inference.requests")}
    assert set(requests) == set(rows) and sorted(requests.values()) == [1, 1, 2]


def test_receiver_down_then_up_loses_nothing_and_fails_nothing(tmp_path: Path) -> None:
    from servewatch_test_receiver import Receiver  # loaded by conftest

    port = free_port()
    script = tmp_path / "serve.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        import numpy as np
        from servewatch.instrumentation import errors, flush, monitor, runtime

        @monitor("m")
        def predict(x):
            return x[:, 0]

        served = 0
        for _ in range(50):
            predict(np.ones((2, 3)))
            served += 1
            time.sleep(0.01)
        while errors.counts().get("export.profiles", 0) < 2:       # deliveries failed, profiles pending
            time.sleep(0.05)
        print("pending", runtime.active().profile_exporter.pending, flush=True)
        sys.stdin.readline()                                      # the receiver is up now
        for _ in range(50):
            predict(np.ones((2, 3)))
            served += 1
        print("served", served, flush=True)
    """))
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_EXPORTER_OTLP_TIMEOUT": "1", **FAST,
           "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen([sys.executable, str(script)], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        assert first.startswith("pending") and int(first.split()[1]) > 0, first + process.stderr.read()
        with Receiver(port=port) as receiver:                    # the endpoint comes up
            process.stdin.write("go\n")
            process.stdin.flush()
            out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "served 100" in out
    inputs = [profile for profile, _ in receiver.profiles() if profile.signal == "input"]
    assert sum(profile.rows for profile in inputs) == 200
    sequences = sorted(profile.sequence for profile in inputs)
    assert sequences == list(range(1, len(sequences) + 1))       # every closed profile arrived, once


def test_slow_receiver_and_unexpected_values_fail_no_request(run_python: Any) -> None:
    from servewatch_test_receiver import Receiver

    with Receiver(delay=1.5) as slow:
        result = run_python("""
            import numpy as np
            from servewatch.instrumentation import errors, monitor

            class Weird:
                def __array__(self, *args, **kwargs):
                    raise RuntimeError("cannot convert")

            @monitor("m")
            def predict(x):
                return {1, 2}                                   # a prediction type nobody expected

            failed = 0
            for value in [np.ones((2, 2)), Weird(), object(), "some text input", {"a": [1, 2]}] * 20:
                try:
                    predict(value)
                except Exception:
                    failed += 1
            print("failed", failed, sorted(errors.counts()))
        """, otlp(slow, OTEL_EXPORTER_OTLP_TIMEOUT="0.5"))
    assert "failed 0 " in result.stdout
    assert "extract.input" in result.stdout and "unsupported.input" in result.stdout
    assert "unsupported.prediction" in result.stdout


def test_errors_reach_the_metrics_and_bad_settings_are_reported_once(receiver: Any, run_python: Any) -> None:
    result = run_python("""
        import logging
        logging.basicConfig(level=logging.WARNING)
        from servewatch.instrumentation import record
        for _ in range(5):
            record("m", object())
    """, otlp(receiver, SERVEWATCH_MAX_COLUMNS="lots"))
    assert result.stderr.count("SERVEWATCH_MAX_COLUMNS='lots'") == 1
    assert result.stderr.count("unsupported.input failed") == 1
    points = receiver.metric_points("servewatch.instrumentation.errors")
    assert max(point.as_int for attributes, point, _ in points if attributes == {"error.type": "unsupported.input"}) == 5


def test_disabled_process_exports_nothing(receiver: Any, run_python: Any) -> None:
    result = run_python("""
        import threading
        from servewatch.instrumentation import record
        record("m", [1.0, 2.0], duration=0.1)
        print(sorted(t.name for t in threading.enumerate()))
    """, otlp(receiver, SERVEWATCH_DISABLED="true"))
    assert "servewatch" not in result.stdout and receiver.requests == []
