"""CPU per request of a TorchServe worker with and without servewatch, without the Java frontend.

    python bench/torchserve_worker.py [--rounds 10] [--requests 2000] [--batch 1]

Starts TorchServe's own worker (``ts/model_service_worker.py``) twice, once plain and once under
``opentelemetry-instrument`` (example spec, profiles and metrics every 10 s to an OTLP sink in this process),
loads the example churn model into each over the worker's socket protocol as the frontend does, and sends
each the same predict messages one after the other from this process, alternating rounds. Printed: the
worker's CPU time (user + system) per request and the round-trip time per message, medians over rounds, and
their differences: the cost servewatch adds to a worker, free of the frontend's noise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from torchserve_harness import BIN, EXAMPLE, OTLPTap, build_archive, wait_for

MODEL = "churn"


def frame(*parts: bytes) -> bytes:
    return b"".join(struct.pack("!i", len(part)) + part for part in parts)


def load_message(model_dir: Path, batch_size: int) -> bytes:
    """The frontend's "load model" message (TorchServe 0.12 wire format)."""
    return (b"L" + frame(MODEL.encode(), str(model_dir).encode()) + struct.pack("!i", batch_size)
            + frame(b"handler.py") + struct.pack("!i", -1) + frame(b"") + struct.pack("!?", True))


def predict_message(rows: list[list[float]], start: int) -> bytes:
    """The frontend's "predict" message: one JSON request per row."""
    message = b"I"
    for offset, row in enumerate(rows):
        message += frame(f"r{start + offset}".encode()) + struct.pack("!i", -1)  # no headers
        message += frame(b"body", b"application/json", json.dumps(row).encode()) + struct.pack("!i", -1)
    return message + struct.pack("!i", -1)


class Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def exactly(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("the worker closed the connection")
            data += chunk
        return bytes(data)

    def integer(self) -> int:
        return int(struct.unpack("!i", self.exactly(4))[0])

    def sized(self) -> bytes:
        return self.exactly(self.integer())

    def load_response(self) -> int:
        code = self.integer()
        self.sized()
        self.integer()
        return code

    def predict_response(self, requests: int) -> int:
        code = self.integer()
        self.sized()
        for _ in range(requests):
            self.sized()  # request id
            self.sized()  # content type
            self.integer()  # status
            self.sized()  # phrase
            for _ in range(self.integer()):  # headers
                self.sized()
                self.sized()
            self.sized()  # body
        if self.integer() != -1:
            raise ValueError("malformed predict response")
        return code


class Worker:
    """One TorchServe worker process and a connection to it."""

    def __init__(self, directory: Path, model_dir: Path, env: dict[str, str], instrumented: bool, batch: int) -> None:
        import ts

        directory.mkdir(parents=True)
        self.path = str(directory / "ts.sock.9000")  # the worker expects <name>.<port>
        home = Path(ts.__file__).parent
        command = [sys.executable, str(home / "model_service_worker.py"), "--sock-type", "unix", "--sock-name",
                   self.path, "--metrics-config", str(home / "configs" / "metrics.yaml")]
        if instrumented:
            command.insert(0, str(BIN / "opentelemetry-instrument"))
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SERVEWATCH_"))}
        environ.update(PYTHONPATH=str(model_dir), OMP_NUM_THREADS="1")  # no spinning OpenMP threads
        self.log = open(directory / "worker.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(command, env={**environ, **env}, cwd=model_dir, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.sock = wait_for(self._connect, 120, "the worker's socket")
        self.reader = Reader(self.sock)
        self.sock.sendall(load_message(model_dir, batch))
        if self.reader.load_response() != 200:
            raise RuntimeError((directory / "worker.log").read_text()[-3000:])

    def _connect(self) -> socket.socket | None:
        if self.process.poll() is not None:
            raise RuntimeError(f"the worker exited with {self.process.returncode}")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if sock.connect_ex(self.path) == 0:
            return sock
        sock.close()
        return None

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def run(self, messages: list[tuple[bytes, int]]) -> tuple[float, list[float]]:
        """Send each message, wait for its answer: (worker CPU seconds, round trips in seconds)."""
        before = self.cpu()
        trips = []
        for message, requests in messages:
            began = time.perf_counter()
            self.sock.sendall(message)
            if self.reader.predict_response(requests) != 200:
                raise RuntimeError("a prediction failed")
            trips.append(time.perf_counter() - began)
        return self.cpu() - before, trips

    def stop(self) -> None:
        self.sock.close()
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=2000, help="requests per round and side")
    parser.add_argument("--batch", type=int, default=1, help="requests per predict message")
    args = parser.parse_args()
    rng = random.Random(0)
    rows = [[rng.gauss(0, 1) for _ in range(3)] for _ in range(args.requests)]
    messages = [(predict_message(rows[i:i + args.batch], i), len(rows[i:i + args.batch]))
                for i in range(0, len(rows), args.batch)]
    with tempfile.TemporaryDirectory(prefix="servewatch-bench-worker-") as tmp, OTLPTap() as sink:
        root = Path(tmp)
        mar = build_archive(root / "store", MODEL)
        model_dir = root / "model"
        zipfile.ZipFile(mar).extractall(model_dir)  # what the frontend does with an archive
        env = {"SERVEWATCH_SPEC": str(EXAMPLE / "servewatch.yaml"), "SERVEWATCH_PROFILE_INTERVAL": "10",
               "OTEL_METRIC_EXPORT_INTERVAL": "10000", "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
               "SERVEWATCH_TORCHSERVE_METRICS_URL": "none"}
        workers = {"baseline": Worker(root / "plain", model_dir, env, False, args.batch),
                   "servewatch": Worker(root / "instrumented", model_dir, env, True, args.batch)}
        try:
            for worker in workers.values():
                worker.run(messages[: len(messages) // 4])  # warm-up, and the runtime's start
            cpu: dict[str, list[float]] = {name: [] for name in workers}
            trip: dict[str, list[float]] = {name: [] for name in workers}
            for index in range(args.rounds):
                for name in (list(workers) if index % 2 == 0 else list(reversed(workers))):
                    seconds, trips = workers[name].run(messages)
                    cpu[name].append(seconds / len(rows))
                    trip[name].append(statistics.median(trips))
        finally:
            for worker in workers.values():
                worker.stop()
        exported = len(sink.requests)
    base_cpu, our_cpu = (statistics.median(cpu[name]) * 1e6 for name in workers)
    base_trip, our_trip = (statistics.median(trip[name]) * 1e6 for name in workers)
    print(f"TorchServe worker alone, {args.batch} request(s) per message, {args.rounds} rounds of {args.requests}:")
    print(f"  CPU per request:  {base_cpu:6.1f} us without, {our_cpu:6.1f} us with servewatch "
          f"({our_cpu - base_cpu:+.1f} us, {our_cpu / base_cpu:.3f}x)")
    print(f"  round trip (p50): {base_trip:6.1f} us without, {our_trip:6.1f} us with servewatch "
          f"({our_trip - base_trip:+.1f} us, {our_trip / base_trip:.3f}x)")
    print(f"  ({exported} OTLP exports received from the instrumented worker)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
