"""The generic API in this process: decorator (sync, async, methods), context manager, observe, guard."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from servewatch.exporters.spool import read_spool
from servewatch.instrumentation import errors, flush, guard, monitor, observe, profile_rows, record, runtime


def profiles(directory: Path) -> dict[tuple[str, str], list]:
    assert flush(10.0)
    found: dict[tuple[str, str], list] = {}
    for _, profile in read_spool(directory):
        found.setdefault((profile.model, profile.signal), []).append(profile)
    return found


def test_decorator_records_inputs_outputs_and_passes_results_through(spool: Path) -> None:
    @monitor("fraud")
    def predict(features: np.ndarray, threshold: float = 0.5) -> np.ndarray:
        return features.sum(axis=1) > threshold

    for _ in range(10):
        assert predict(np.ones((3, 2))).tolist() == [True] * 3
    assert predict.__name__ == "predict"
    found = profiles(spool)
    assert found[("fraud", "input")][0].rows == 30
    assert found[("fraud", "prediction")][0].columns["class"].categories() == {"true": 30.0}
    assert runtime.active().recorder.states()[0].stats.outcomes["ok"].requests == 10


def test_the_functions_exception_passes_through_untouched(spool: Path) -> None:
    problem = ValueError("bad request")

    @monitor("m")
    def predict(features: object) -> None:
        raise problem

    with pytest.raises(ValueError) as caught:
        predict(np.ones((2, 2)))
    assert caught.value is problem
    stats = runtime.active().recorder.states()[0].stats.outcomes
    assert stats["error"].requests == 1 and stats["ok"].requests == 0
    assert profiles(spool)[("m", "input")][0].rows == 2          # what a failing call received is profiled


def test_async_methods_and_argument_selection(spool: Path) -> None:
    class Service:
        @monitor("a", inputs="rows", outputs=lambda response: response["scores"])
        async def handle(self, request_id: str, rows: list[dict]) -> dict:
            await asyncio.sleep(0)
            return {"scores": [0.5] * len(rows), "id": request_id}

    service = Service()
    result = asyncio.run(service.handle("r1", rows=[{"x": 1.0}, {"x": 2.0}]))
    assert result["id"] == "r1"
    asyncio.run(service.handle("r2", [{"x": 3.0}]))
    found = profiles(spool)
    assert found[("a", "input")][0].columns["x"].count == 3
    assert found[("a", "prediction")][0].columns["f0"].count == 3


def test_one_sample_at_a_time(spool: Path) -> None:
    @monitor("single", batched=False)
    def predict(features: list[float]) -> float:
        return sum(features)

    predict([1.0, 2.0, 3.0])
    predict(features=[4.0, 5.0, 6.0])
    found = profiles(spool)
    assert list(found[("single", "input")][0].columns) == ["f0", "f1", "f2"]
    assert found[("single", "input")][0].rows == 2 and found[("single", "prediction")][0].rows == 2


def test_context_manager_nested_and_failing(spool: Path) -> None:
    with monitor("outer") as call:
        call.inputs = np.ones((2, 2))
        with monitor("inner") as inner:
            inner.inputs = np.ones((5, 1))
            inner.outputs = np.zeros(5)
        call.outputs = np.ones(2)
        call.requests = 2
    with pytest.raises(KeyError):
        with monitor("outer") as call:
            call.inputs = np.ones((1, 2))
            raise KeyError("x")
    states = {state.name: state.stats.outcomes for state in runtime.active().recorder.states()}
    assert states["outer"]["ok"].requests == 2 and states["outer"]["error"].requests == 1
    assert states["inner"]["ok"].requests == 1
    found = profiles(spool)
    assert found[("outer", "input")][0].rows == 3 and found[("inner", "prediction")][0].rows == 5


def test_observe_for_hooks_keeps_the_call_and_guards_the_callables(spool: Path) -> None:
    def framework_call(batch: list[float]) -> list[float]:
        return [value * 2 for value in batch]

    def broken_model_name() -> str:
        raise AttributeError("context has no model_name")

    assert observe(framework_call, ([1.0, 2.0],), {}, framework="torchserve", model="tiny",
                   inputs=lambda: [1.0, 2.0]) == [2.0, 4.0]
    assert observe(framework_call, ([3.0],), {}, framework="torchserve", model=broken_model_name) == [6.0]
    assert errors.counts() == {"torchserve.hook": 1}
    with pytest.raises(TypeError):
        observe(framework_call, (None,), {}, framework="torchserve", model="tiny")
    state = runtime.active().recorder.states()[0]
    assert state.framework == "torchserve" and state.stats.outcomes["error"].requests == 1
    observe(framework_call, ([1.0],), {}, framework="torchserve", model="tiny", route="/predict")
    observe(framework_call, ([1.0],), {}, framework="torchserve", model="tiny", route=lambda: "/explain")
    record("tiny", duration=0.1, route="/predict", framework="torchserve")
    assert {route: counted.requests for route, counted in state.stats.outcomes["ok"].routes.items()} == \
        {"/predict": 2, "/explain": 1}


def test_record_with_request_ids_and_garbage_arguments(spool: Path) -> None:
    record("batched", np.ones((4, 2)), duration=0.01, request_ids=["a", "b", "c"], framework="triton")
    record("batched", duration="slow", batch_size="many")      # wrong types: counted, never raised
    record("batched", duration=np.float32(0.5), batch_size=np.int64(2), requests=np.int64(2))
    stats = runtime.active().recorder.states()[0].stats.outcomes["ok"]
    assert stats.requests == 3 + 1 + 2 and stats.duration.count == 3 + 2 and stats.batch_size.count == 2
    assert errors.counts() == {"record.argument": 2}
    record("batched", np.ones((2, 2)), requests=0)             # a batch whose requests are counted elsewhere
    assert (stats.requests, stats.batch_size.count) == (6, 3)
    record("batched", requests=-2)                             # refused, counted, the call counts once
    assert stats.requests == 6 + 1 and errors.counts() == {"record.argument": 3}
    profile_rows("batched", np.ones((5, 2)), np.ones(5))       # a chunk: rows only, no call
    assert (stats.requests, stats.batch_size.count, stats.duration.count) == (7, 3, 5)
    assert runtime.active().recorder.states()[0].inputs.counts()["f0"][0] == 4 + 2 + 5


def test_guard_counts_and_swallows_but_not_base_exceptions() -> None:
    errors.reset()

    @guard("hook.helper")
    def helper() -> int:
        raise ZeroDivisionError

    assert helper() is None
    with guard("hook.block"):
        [][1]
    with pytest.raises(KeyboardInterrupt), guard("hook.block"):
        raise KeyboardInterrupt
    assert errors.counts() == {"hook.helper": 1, "hook.block": 1}


def test_disabled_means_nothing_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVEWATCH_DISABLED", "true")
    try:
        @monitor("off")
        def predict(x: object) -> object:
            return x

        assert predict(1) == 1
        record("off", [1.0])
        assert runtime.active() is None and runtime._disabled
    finally:
        runtime.forget()
        runtime._disabled = False


def test_observe_records_coroutines_and_futures_when_they_complete(spool: Path) -> None:
    import concurrent.futures

    async def batch(rows: list[float]) -> list[float]:
        await asyncio.sleep(0.01)
        if not rows:
            raise ValueError("empty batch")
        return [value * 2 for value in rows]

    async def serve() -> list[float]:
        pending = observe(batch, ([1.0, 2.0],), {}, framework="ray_serve", model="batched",
                          inputs=lambda: [1.0, 2.0], requests=lambda: 2)
        assert asyncio.iscoroutine(pending)
        with pytest.raises(ValueError):
            await observe(batch, ([],), {}, framework="ray_serve", model="batched")
        return await pending

    assert asyncio.run(serve()) == [2.0, 4.0]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = observe(pool.submit, (sum, [1.0, 2.0]), {}, framework="triton", model="future")
        assert future.result() == 3.0
    states = {state.name: state.stats.outcomes for state in runtime.active().recorder.states()}
    assert (states["batched"]["ok"].requests, states["batched"]["error"].requests) == (2, 1)
    assert states["batched"]["ok"].duration.count == 2 and states["batched"]["ok"].duration.sum >= 0.02
    found = profiles(spool)
    assert found[("batched", "prediction")][0].rows == 2 and found[("future", "prediction")][0].rows == 1


def test_generators_are_left_undecorated_and_reported() -> None:
    errors.reset()

    def stream(x: int):  # type: ignore[no-untyped-def]
        yield x

    assert monitor("m")(stream) is stream
    assert list(stream(1)) == [1] and errors.counts() == {"monitor": 1}
