"""tritonclient hooks on the real client classes where no server answers: exceptions pass through unchanged and
count as errors; inputs are read the way the calls set them. (Calls that succeed, in every protocol and mode,
run against a real tritonserver in tests/integration/test_triton_server.py.)"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc")

import tritonclient.grpc as grpc  # noqa: E402
import tritonclient.grpc.aio as grpc_aio  # noqa: E402
import tritonclient.http as http  # noqa: E402
import tritonclient.http.aio as http_aio  # noqa: E402
from servewatch.exporters.spool import read_spool  # noqa: E402
from servewatch.instrumentation import errors, flush, runtime  # noqa: E402
from servewatch.instrumentation.triton import TritonClientInstrumentor  # noqa: E402
from servewatch.instrumentation.triton.client import client_inputs  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

CLOSED = "127.0.0.1:9"   # discard: nothing listens
FAILURES = (InferenceServerException, ConnectionError)   # what the clients raise themselves when nobody answers


@pytest.fixture
def instrumented(spool: Path) -> Iterator[Path]:
    instrumentor = TritonClientInstrumentor()
    instrumentor.instrument()
    yield spool
    instrumentor.uninstrument()


def outcomes(model: str) -> dict[str, int]:
    active = runtime.active()
    assert active is not None
    state = next(state for state in active.recorder.states() if state.name == model)
    return {outcome: stats.requests for outcome, stats in state.stats.outcomes.items()}


def features(module: object, rows: np.ndarray) -> object:
    value = module.InferInput("features", list(rows.shape), "FP32")  # type: ignore[attr-defined]
    value.set_data_from_numpy(rows)
    return value


def test_inputs_are_the_arrays_given_to_set_data_from_numpy(instrumented: Path) -> None:
    rows = np.ones((3, 4), np.float32)
    words = http.InferInput("text", [2, 1], "BYTES")
    words.set_data_from_numpy(np.array([[b"a"], [b"b"]], dtype=object))
    shared = grpc.InferInput("shm", [3, 4], "FP32")
    shared.set_shared_memory("region", 48)                      # no array: not seen
    found = client_inputs([features(http, rows), words, shared, features(grpc, rows)])
    assert set(found) == {"features", "text"} and found["features"] is rows
    assert client_inputs(None) == {}


def test_sync_calls_that_fail_raise_unchanged_and_count_as_errors(instrumented: Path) -> None:
    rows = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    for module, model in ((http, "over-http"), (grpc, "over-grpc")):
        client = module.InferenceServerClient(CLOSED)
        with pytest.raises(FAILURES):
            client.infer(model, [features(module, rows)])
        assert outcomes(model) == {"ok": 0, "error": 1}
    assert flush(10.0)
    inputs = {profile.model: profile for _, profile in read_spool(instrumented) if profile.signal == "input"}
    assert inputs["over-http"].rows == 2 and inputs["over-grpc"].rows == 2     # what was sent is still profiled


def test_async_calls_that_fail(instrumented: Path) -> None:
    rows = np.ones((1, 4), np.float32)
    client = http.InferenceServerClient(CLOSED)
    handle = client.async_infer("http-async", [features(http, rows)])
    with pytest.raises(FAILURES):
        handle.get_result()
    with pytest.raises(FAILURES):
        handle.get_result()                                     # asked twice, reported once
    assert outcomes("http-async") == {"ok": 0, "error": 1}

    seen: list[object] = []
    called = threading.Event()                                  # the callback runs on a grpc thread

    def callback(result: object, error: object) -> None:
        seen.append(error)
        called.set()

    grpc.InferenceServerClient(CLOSED).async_infer("grpc-async", [features(grpc, rows)], callback)
    assert called.wait(30)
    assert isinstance(seen[0], InferenceServerException)
    assert outcomes("grpc-async") == {"ok": 0, "error": 1}


def test_aio_calls_that_fail(instrumented: Path) -> None:
    rows = np.ones((1, 4), np.float32)

    async def call(module: object, model: str) -> None:
        client = module.InferenceServerClient(CLOSED)  # type: ignore[attr-defined]
        try:
            await client.infer(model, [features(module, rows)])
        finally:
            await client.close()

    for module, model in ((http_aio, "http-aio"), (grpc_aio, "grpc-aio")):
        with pytest.raises(Exception) as raised:
            asyncio.run(call(module, model))
        assert not type(raised.value).__module__.startswith("servewatch")
        assert outcomes(model) == {"ok": 0, "error": 1}
    assert errors.counts() == {}


def test_calls_refused_before_sending_count_as_errors(instrumented: Path) -> None:
    rows = np.ones((1, 4), np.float32)
    with pytest.raises(InferenceServerException, match="model version"):
        http.InferenceServerClient(CLOSED).async_infer("refused-http", [features(http, rows)], model_version=1)
    assert outcomes("refused-http") == {"ok": 0, "error": 1}
    called: list[object] = []
    with pytest.raises(InferenceServerException, match="model version"):
        grpc.InferenceServerClient(CLOSED).async_infer("refused-grpc", [features(grpc, rows)],
                                                       lambda result, error: called.append(error), model_version=1)
    assert outcomes("refused-grpc") == {"ok": 0, "error": 1} and called == []
