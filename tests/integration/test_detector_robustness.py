"""`servewatch detect` under stress, as a real process: hostile bodies, kill -9 while producers send, load.

Each test starts the real command on loopback ports it binds itself (port 0) and a state directory of its own,
and stops it (SIGTERM, then checks the exit status). Nothing here asserts on time.
"""

from __future__ import annotations

import gzip
import math
import os
import sqlite3
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from servewatch.detectors.service import Layout, Store

from servewatch.profile import Profile
from servewatch.wire import encode_profiles

pytestmark = pytest.mark.integration

PROTOBUF = {"Content-Type": "application/x-protobuf"}


@dataclass
class Detector:
    process: subprocess.Popen[str]
    endpoint: str
    metrics_url: str
    state: Path

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(10)

    def metric(self, name: str) -> float:
        text = requests.get(self.metrics_url, timeout=10).text
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " "))


def spawn(state: Path, *flags: str) -> Detector:
    """Start `servewatch detect` and read the bound addresses from its start-up line."""
    command = [str(Path(sys.executable).with_name("servewatch")), "detect", "--listen", "127.0.0.1:0",
               "--metrics-listen", "127.0.0.1:0", "--state", str(state), "--log-level", "warning", *flags]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    lines: list[str] = []
    found = None
    while found is None and (line := process.stdout.readline()):   # a log line may come first (damaged state)
        lines.append(line)
        found = re.search(r"receiving OTLP/HTTP on (http://\S+) .*serving (http://\S+/metrics)", line)
    if found is None:
        process.kill()
        raise AssertionError(f"unexpected start-up output: {''.join(lines)}{process.stdout.read()}")
    threading.Thread(target=process.stdout.read, daemon=True).start()  # keep draining its output
    return Detector(process, found.group(1), found.group(2), state)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def _profile(model: str, producer: str, sequence: int, rows: int = 50, columns: int = 2, seed: int = 0) -> Profile:
    end = time.time()
    profile = Profile(model, "input", start=end - 1 - sequence * 1e-3, end=end, producer=producer, sequence=sequence)
    return profile.update(np.random.default_rng(seed).normal(size=(rows, columns)))


def _corrupt_kll(body: bytes, byte: int, bit: int) -> bytes:
    """``body`` with one bit of the first column's KLL header flipped: still valid protobuf."""
    request = ExportLogsServiceRequest.FromString(body)
    record = request.resource_logs[0].scope_logs[0].log_records[0]
    columns = next(kv.value for kv in record.body.kvlist_value.values if kv.key == "columns")
    fields = columns.kvlist_value.values[0].value.kvlist_value.values
    kll = next(kv.value for kv in fields if kv.key == "kll")
    data = bytearray(kll.bytes_value)
    data[byte] ^= 1 << bit
    kll.bytes_value = bytes(data)
    return request.SerializeToString()


def _raw(address: str, payload: bytes, timeout: float = 5.0) -> bytes:
    host, port = address.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(payload)
        chunks = []
        while True:
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def test_hostile_bodies_get_the_right_answer_and_hurt_nothing(state: Path) -> None:
    detector = spawn(state, "--token", "s3cret")
    auth = {**PROTOBUF, "Authorization": "Bearer s3cret"}
    logs = detector.endpoint + "/v1/logs"
    try:
        good = encode_profiles([_profile("fraud", "good", 1, rows=200)])
        assert requests.post(logs, data=good, headers=auth, timeout=10).status_code == 200

        def post(body: bytes, **headers: str) -> requests.Response:
            return requests.post(logs, data=body, headers={**auth, **headers}, timeout=30)

        assert requests.post(logs, data=good, headers=PROTOBUF, timeout=10).status_code == 401
        assert requests.post(logs, data=good, headers={**PROTOBUF, "Authorization": "Bearer nope"},
                             timeout=10).status_code == 401
        assert post(good[: len(good) // 2]).status_code == 400                       # truncated
        assert post(good, **{"Content-Type": "text/plain"}).status_code == 415        # wrong content type
        assert post(good, **{"Content-Encoding": "br"}).status_code == 415
        assert post(b"{not json", **{"Content-Type": "application/json"}).status_code == 400
        assert post(b"\0" * (17 * 2**20)).status_code == 413                         # over the 16 MiB default
        bomb = gzip.compress(b"\0" * (80 * 2**20))
        assert post(bomb, **{"Content-Encoding": "gzip"}).status_code == 413         # inflates past 64 MiB
        assert requests.get(logs, headers=auth, timeout=10).status_code == 405
        assert requests.post(detector.endpoint + "/v1/traces", data=good, headers=auth, timeout=10).status_code == 404
        rng = random.Random(5)
        for _ in range(20):                                                           # random bytes
            assert post(rng.randbytes(rng.randrange(1, 4000))).status_code in (200, 400)
        for byte in range(8):                                                         # bit-flipped KLL headers
            for bit in range(8):
                answer = post(_corrupt_kll(encode_profiles([_profile("flipped", "x", 8 * byte + bit)]), byte, bit))
                assert answer.status_code == 200
                partial = ExportLogsServiceResponse.FromString(answer.content).partial_success
                assert (partial.rejected_log_records, bool(partial.error_message)) in ((1, True), (0, False))
        base = encode_profiles([_profile("fuzz", "fuzzer", 0)])
        for _ in range(150):                                                          # bit flips anywhere
            mutated = bytearray(base)
            for _ in range(rng.randrange(1, 4)):
                mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
            assert post(bytes(mutated)).status_code in (200, 400)
        port = detector.endpoint
        head = ("POST /v1/logs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n"
                "Content-Type: application/x-protobuf\r\n")
        assert _raw(port, (head + "\r\n").encode()).startswith(b"HTTP/1.1 411")   # no Content-Length
        chunked = (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + b"".join(
            f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (good[:100], good[100:])) + b"0\r\n\r\n"
        assert _raw(port, chunked + b"", timeout=2.0).startswith(b"HTTP/1.1 200")   # a repeat: counted once
        mixed = ExportLogsServiceRequest.FromString(encode_profiles([_profile("json", "j", 1)]))
        mixed.resource_logs[0].scope_logs[0].log_records.add(body={"string_value": "an ordinary log line"})
        as_json = json_format.MessageToJson(mixed).encode()                         # OTLP JSON, plus a plain log
        ignored = detector.metric("servewatch_detector_records_ignored_total")
        answer = post(as_json, **{"Content-Type": "application/json"})
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
        assert "partialSuccess" not in answer.json()
        assert detector.metric("servewatch_detector_records_ignored_total") == ignored + 1
        conflicting = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(scope_metrics=[ScopeMetrics(
            metrics=[Metric(name="jobs", sum=Sum(aggregation_temporality=2, is_monotonic=True,
                                                 data_points=[NumberDataPoint(as_int=1)])),
                     Metric(name="jobs_total", gauge=Gauge(data_points=[NumberDataPoint(as_double=1.0)]))])])])
        answer = requests.post(detector.endpoint + "/v1/metrics", data=conflicting.SerializeToString(),
                               headers=auth, timeout=10)
        partial = ExportMetricsServiceResponse.FromString(answer.content).partial_success
        assert answer.status_code == 200 and partial.rejected_data_points == 1 and "jobs" in partial.error_message
        assert requests.get(detector.metrics_url.replace("/metrics", "/readyz"), timeout=10).status_code == 200
        assert detector.metric("servewatch_detector_profiles_duplicate_total") >= 1
        assert detector.metric("servewatch_detector_profiles_rejected_total") >= 1
    finally:
        assert detector.stop() == 0
    store = Store(state, Layout(60.0, 8 * 86400.0))
    try:
        good_window = store.merged("fraud", "input", 0.0, time.time() + 60, time.time())
        assert good_window is not None and good_window.rows == 200
        from_json = store.merged("json", "input", 0.0, time.time() + 60, time.time())
        assert from_json is not None and from_json.rows == 50
        for series in store.series():   # everything stored still decodes
            store.merged(series.model, series.signal, 0.0, time.time() + 60, time.time())
        assert store.corrupt == 0
    finally:
        store.close()


def test_kill_9_loses_nothing_acknowledged_and_repeats_count_once(state: Path) -> None:
    detector = spawn(state)
    producers = 6
    sent: dict[tuple[str, int], tuple[bytes, float, int]] = {}
    acked: set[tuple[str, int]] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def produce(name: str) -> None:
        session = requests.Session()
        for sequence in range(10_000):
            if stop.is_set():
                return
            rows = 1 + sequence % 9
            profile = _profile("durable", name, sequence, rows=rows, columns=1, seed=sequence)
            body = encode_profiles([profile])
            with lock:
                sent[(name, sequence)] = (body, profile.start, rows)
            try:
                answer = session.post(detector.endpoint + "/v1/logs", data=body, headers=PROTOBUF, timeout=5)
            except requests.RequestException:
                return
            if answer.status_code == 200:
                with lock:
                    acked.add((name, sequence))

    threads = [threading.Thread(target=produce, args=(f"producer-{i}",)) for i in range(producers)]
    for thread in threads:
        thread.start()
    while len(acked) < 200:
        time.sleep(0.05)
    os.kill(detector.process.pid, signal.SIGKILL)          # while the producers are sending
    detector.process.wait(10)
    stop.set()
    for thread in threads:
        thread.join(10)
    print(f"\nsent {len(sent)} profiles, {len(acked)} acknowledged before kill -9")

    def stored_rows() -> int:
        store = Store(state, Layout(60.0, 8 * 86400.0))
        try:
            for name, sequence in acked:
                assert store.received(name, "durable", "input", sequence, sent[(name, sequence)][1]), (name, sequence)
            merged = store.merged("durable", "input", 0.0, time.time() + 60, time.time())
            return merged.rows if merged is not None else 0
        finally:
            store.close()

    restarted = spawn(state)
    assert restarted.stop() == 0
    after_kill = stored_rows()
    assert after_kill >= sum(sent[key][2] for key in acked)
    again = spawn(state)
    try:
        session = requests.Session()
        for body, _, _ in sent.values():                   # the producers' retries: everything, once more
            assert session.post(again.endpoint + "/v1/logs", data=body, headers=PROTOBUF, timeout=10).status_code == 200
        assert again.metric("servewatch_detector_profiles_duplicate_total") >= len(acked)
        assert again.metric("servewatch_detector_profiles_received_total") <= len(sent) - len(acked)
    finally:
        assert again.stop() == 0
    assert stored_rows() == sum(rows for _, _, rows in sent.values())   # each profile exactly once


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmRSS:"))


def test_load_of_24_concurrent_producers(state: Path) -> None:
    detector = spawn(state, "--interval", "1s", "--bucket", "1s")
    producers, seconds = 24, 6.0
    template = ExportLogsServiceRequest.FromString(encode_profiles([_profile("loaded", "t", 0, rows=500, columns=10)]))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    rss: list[tuple[float, int]] = []
    started = time.monotonic()

    def produce(index: int) -> None:
        session = requests.Session()
        request = ExportLogsServiceRequest()
        request.CopyFrom(template)
        attributes = request.resource_logs[0].scope_logs[0].log_records[0].attributes
        producer = next(kv for kv in attributes if kv.key == "servewatch.producer")
        producer.value.string_value = f"producer-{index}"
        sequence = next(kv for kv in attributes if kv.key == "servewatch.sequence")
        end = next(kv for kv in attributes if kv.key == "servewatch.interval.end")
        mine: list[float] = []
        count = 0
        while time.monotonic() - started < seconds:
            count += 1
            sequence.value.int_value = count
            end.value.double_value = time.time()
            body = request.SerializeToString()
            sent = time.perf_counter()
            status = session.post(detector.endpoint + "/v1/logs", data=body, headers=PROTOBUF, timeout=30).status_code
            mine.append(time.perf_counter() - sent)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=produce, args=(i,)) for i in range(producers)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        rss.append((time.monotonic() - started, _rss(detector.process.pid)))
        time.sleep(0.5)
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    rss.append((elapsed, _rss(detector.process.pid)))
    try:
        received = detector.metric("servewatch_detector_profiles_received_total")
        evaluation = detector.metric("servewatch_detector_evaluation_duration_seconds")
    finally:
        assert detector.stop() == 0
    latencies.sort()
    total = sum(statuses.values())
    print(f"\n{producers} producers for {elapsed:.1f}s: {total} profiles ({total / elapsed:.0f}/s), "
          f"ack latency p50 {latencies[len(latencies) // 2] * 1e3:.1f} ms, "
          f"p99 {latencies[int(len(latencies) * 0.99)] * 1e3:.1f} ms; last evaluation {evaluation * 1e3:.0f} ms")
    print("RSS over time: " + ", ".join(f"{t:.1f}s {size / 2**20:.0f} MiB" for t, size in rss))
    assert statuses == {200: total} and received == total
    settled = [size for t, size in rss if t >= 2.0]
    assert max(settled) < 2 * settled[0] + 256 * 2**20, "RSS keeps growing under steady load"


# -- one producer's bad data stays with its model (issue 14) -----------------------------------------------

def _gauge(detector: Detector, name: str, **labels: str) -> float | None:
    """The sum of the samples of ``name`` whose labels include ``labels`` (None when there is none)."""
    text = requests.get(detector.metrics_url, timeout=10).text
    found = None
    for line in text.splitlines():
        sample = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if sample is None or sample.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', sample.group(2) or ""))
        if all(have.get(key) == value for key, value in labels.items()):
            found = (found or 0.0) + float(sample.group(3))
    return found


def _evaluated(detector: Detector, model: str, timeout: float = 60.0) -> bool:
    """Wait until the detector publishes the model's windows (a deadline for waiting, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gauge(detector, "servewatch_window_samples", model=model):
            return True
        time.sleep(0.2)
    return False


def _with_rows(body: bytes, rows: int) -> bytes:
    """``body`` (one profile) claiming ``rows`` rows: what the encoder refuses, sent as a hostile peer would."""
    request = ExportLogsServiceRequest.FromString(body)
    record = request.resource_logs[0].scope_logs[0].log_records[0]
    next(kv.value for kv in record.body.kvlist_value.values if kv.key == "rows").int_value = rows
    return request.SerializeToString()


def _neighbours(model: str, producer: str = "hostile") -> list[Profile]:
    """Two profiles of ``model`` in neighbouring 1 s buckets of one 10 s bucket, sealed by now."""
    base = math.floor(time.time() / 10) * 10 - 10
    return [Profile(model, "input", start=base + 3 + i, end=base + 3.5 + i, producer=producer, sequence=i).update(
        {"x": [1.0, 2.0]}) for i in (0, 1)]


def _partial(answer: requests.Response) -> tuple[int, str]:
    partial = ExportLogsServiceResponse.FromString(answer.content).partial_success
    return partial.rejected_log_records, partial.error_message


def test_hostile_profiles_are_refused_by_reason_and_the_others_evaluated(state: Path) -> None:
    """Rows claiming 2**63-1 (two of them stopped every roll-up, so every model's evaluation), a hollow
    frequent-items sketch, 4,096 columns: each refused or cut with a partial-success message and a counter by
    reason; a healthy model is evaluated all the same."""
    detector = spawn(state, "--interval", "1s", "--bucket", "1s")
    logs = detector.endpoint + "/v1/logs"
    try:
        for profile in _neighbours("hostile"):
            answer = requests.post(logs, data=_with_rows(encode_profiles([profile]), 2**63 - 1), headers=PROTOBUF,
                                   timeout=10)
            assert answer.status_code == 200 and _partial(answer) == (1, "body.rows 9223372036854775807 outside "
                                                                         "[0, 2**48]")
        categorical = Profile("hollow", "input", start=time.time() - 1, end=time.time(), producer="h")
        categorical.update({"country": ["US"] * 2000})
        request = ExportLogsServiceRequest.FromString(encode_profiles([categorical]))
        record = request.resource_logs[0].scope_logs[0].log_records[0]
        columns = next(kv.value for kv in record.body.kvlist_value.values if kv.key == "columns")
        frequent = next(kv.value for kv in columns.kvlist_value.values[0].value.kvlist_value.values
                        if kv.key == "frequent")
        frequent.bytes_value = frequent.bytes_value[:8] + (0).to_bytes(4, "little") + frequent.bytes_value[12:32]
        answer = requests.post(logs, data=request.SerializeToString(), headers=PROTOBUF, timeout=10)
        assert answer.status_code == 200 and _partial(answer)[0] == 1 and "holds no items" in _partial(answer)[1]

        wide = Profile.from_data(np.random.default_rng(1).normal(size=(3, 4096)), model="wide", max_columns=4096)
        wide.start, wide.end, wide.producer = time.time() - 1, time.time(), "w"
        answer = requests.post(logs, data=encode_profiles([wide]), headers=PROTOBUF, timeout=60)
        rejected, message = _partial(answer)
        assert answer.status_code == 200 and rejected == 0     # stored, but not whole: the sender is told
        assert "wide/input: columns past the limit of 512 per model and signal were left out" in message
        assert _gauge(detector, "servewatch_detector_columns_dropped_total", model="wide") == 4096 - 512

        good = encode_profiles([_profile("good", "g", 0, rows=300)])
        assert requests.post(logs, data=good, headers=PROTOBUF, timeout=10).status_code == 200
        assert _evaluated(detector, "good"), "the healthy model was never evaluated"
        assert _gauge(detector, "servewatch_detector_profiles_rejected_total", reason="rows_range") == 2
        assert _gauge(detector, "servewatch_detector_profiles_rejected_total", reason="hollow_sketch") == 1
        assert not _gauge(detector, "servewatch_detector_model_failures_total")
    finally:
        assert detector.stop() == 0


def test_damaged_state_stops_no_other_model_before_or_after_a_restart(state: Path) -> None:
    """State from before the wire's checks: two overflowing buckets of one model (every roll-up raised
    OverflowError and a failing maintain() stopped every model's evaluation, restart or not), and a bucket
    row whose blob reads back as text (an sqlite3.OperationalError). The healthy model is evaluated; the
    failing one is counted under model_failures, the damaged one under store_damaged."""
    store = Store(state, Layout(1.0, 8 * 86400.0))
    try:
        overflowing = _neighbours("hostile")
        for profile in overflowing:
            profile.rows = 2**63 - 1
        damaged = _neighbours("damaged", producer="d")
        assert store.write(overflowing + damaged, time.time()) == ["accepted"] * 4
    finally:
        store.close()
    with sqlite3.connect(state / "detector.db") as connection:
        connection.execute("UPDATE bucket_data SET data = CAST(x'ff00fe9a' AS TEXT) WHERE id IN "
                           "(SELECT id FROM buckets WHERE model = 'damaged')")
    connection.close()
    for attempt in range(2):   # and once more after a restart
        detector = spawn(state, "--interval", "1s", "--bucket", "1s")
        try:
            body = encode_profiles([_profile("good", "g", attempt, rows=300)])
            assert requests.post(detector.endpoint + "/v1/logs", data=body, headers=PROTOBUF,
                                 timeout=10).status_code == 200
            assert _evaluated(detector, "good"), f"the healthy model was never evaluated (start {attempt + 1})"
            assert (_gauge(detector, "servewatch_detector_model_failures_total", model="hostile", stage="maintain")
                    or 0) >= 1
            if attempt == 0:
                assert (_gauge(detector, "servewatch_detector_store_damaged_total") or 0) >= 1
        finally:
            assert detector.stop() == 0


def test_a_poisoned_request_among_innocent_producers_harms_none_of_them(state: Path) -> None:
    """One producer keeps sending profiles whose rows overflow its bucket's count once merged, while eight
    innocent ones send theirs: every innocent request gets 200 and is stored (192 of 6,963 got 503 when the
    poisoned request shared their group commit)."""
    detector = spawn(state)
    logs = detector.endpoint + "/v1/logs"
    statuses: dict[str, list[int]] = {}
    stop = threading.Event()

    def innocent(index: int) -> None:
        session = requests.Session()
        mine = statuses.setdefault(f"innocent-{index}", [])
        for sequence in range(60):
            body = encode_profiles([_profile("shared", f"innocent-{index}", sequence, rows=5, columns=1)])
            mine.append(session.post(logs, data=body, headers=PROTOBUF, timeout=30).status_code)

    def poisoner() -> None:
        session = requests.Session()
        mine = statuses.setdefault("poisoner", [])
        sequence = 0
        while not stop.is_set():
            sequence += 1
            body = _with_rows(encode_profiles([_profile("shared", "poisoner", sequence, rows=5, columns=1)]),
                              2**63 - 1)
            mine.append(session.post(logs, data=body, headers=PROTOBUF, timeout=30).status_code)

    try:
        threads = [threading.Thread(target=innocent, args=(i,)) for i in range(8)]
        poison = threading.Thread(target=poisoner)
        poison.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stop.set()
        poison.join()
        innocents = [status for name, codes in statuses.items() if name != "poisoner" for status in codes]
        print(f"\n{len(innocents)} innocent requests beside {len(statuses['poisoner'])} poisoned ones: "
              f"{ {code: innocents.count(code) for code in set(innocents)} }")
        assert innocents == [200] * (8 * 60)
        assert _gauge(detector, "servewatch_detector_profiles_received_total") == 8 * 60
    finally:
        assert detector.stop() == 0
    store = Store(state, Layout(60.0, 8 * 86400.0))
    try:
        merged = store.merged("shared", "input", 0.0, time.time() + 60, time.time())
        assert merged is not None and merged.rows == 8 * 60 * 5
    finally:
        store.close()
