"""`servewatch detect` under stress, as a real process: hostile bodies, kill -9 while producers send, load.

Each test starts the real command on loopback ports it binds itself (port 0) and a state directory of its own,
and stops it (SIGTERM, then checks the exit status). Nothing here asserts on time.
"""

from __future__ import annotations

import gzip
import os
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
    line = process.stdout.readline()
    found = re.search(r"receiving OTLP/HTTP on (http://\S+) .*serving (http://\S+/metrics)", line)
    if found is None:
        process.kill()
        raise AssertionError(f"unexpected start-up output: {line}{process.stdout.read()}")
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
