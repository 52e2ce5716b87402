"""The PyTriton hook on PyTriton's real classes, without a server: every callable shape, failures, odd tensors.
(The whole path, server included, runs in tests/integration/test_triton_pytriton.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest

pytest.importorskip("pytriton.proxy.inference")

from pytriton.decorators import TritonContext, batch  # noqa: E402
from pytriton.model_config.triton_model_config import TritonModelConfig  # noqa: E402
from pytriton.models.model import _inject_triton_context  # noqa: E402
from pytriton.proxy import inference  # noqa: E402
from pytriton.proxy.types import Request  # noqa: E402
from servewatch.exporters.spool import read_spool  # noqa: E402
from servewatch.instrumentation import errors, flush, runtime  # noqa: E402
from servewatch.instrumentation.triton import PyTritonInstrumentor  # noqa: E402


@pytest.fixture
def instrumented(spool: Path) -> Iterator[Path]:
    instrumentor = PyTritonInstrumentor()
    instrumentor.instrument()
    yield spool
    instrumentor.uninstrument()


def handler(function: Callable[..., Any], name: str = "m", max_batch_size: int = 8) -> Any:
    """An InferenceHandler for ``function`` bound as ``name`` the way ``Triton.bind`` binds it."""
    context = TritonContext()
    context.model_configs[function] = TritonModelConfig(model_name=name, max_batch_size=max_batch_size,
                                                        batching=max_batch_size > 0)
    _inject_triton_context(context, function)
    return inference.InferenceHandler(function, mock.Mock(), mock.Mock())


def run(handler: Any, requests: list[Request], stop_after: int | None = None) -> list[Any]:
    """Drive the handler's callable as ``_handle_requests`` does; ``stop_after`` abandons it early (what a
    failed validation does)."""

    async def drive() -> list[Any]:
        answers = []
        generator = handler._model_callable(requests)
        async for responses in generator:
            answers.append(responses)
            if stop_after is not None and len(answers) >= stop_after:
                await generator.aclose()
                break
        return answers

    return asyncio.run(drive())


def outcome_counts(model: str) -> dict[str, int]:
    active = runtime.active()
    assert active is not None
    state = next(state for state in active.recorder.states() if state.name == model)
    return {outcome: stats.requests for outcome, stats in state.stats.outcomes.items()}


def profiles(spool: Path) -> dict[tuple[str, str], Any]:
    assert flush(10.0)
    return {(profile.model, profile.signal): profile for _, profile in read_spool(spool)}


def test_a_batch_decorated_function_reports_the_batch_triton_formed(instrumented: Path) -> None:
    @batch
    def double(x: np.ndarray) -> dict[str, np.ndarray]:
        return {"y": x * 2}

    bound = handler(double, "double")
    answers = run(bound, [Request({"x": np.ones((3, 2), np.float32)}), Request({"x": np.zeros((2, 2), np.float32)})])
    assert answers[0][0]["y"].shape == (3, 2)
    assert outcome_counts("double") == {"ok": 2, "error": 0}
    state = next(state for state in runtime.active().recorder.states() if state.name == "double")  # type: ignore[union-attr]
    assert state.stats.outcomes["ok"].batch_size.sum == 5                 # rows of both requests
    assert state.framework == "pytriton"
    found = profiles(instrumented)
    assert found[("double", "input")].rows == 5 and sorted(found[("double", "input")].columns) == ["x.0", "x.1"]
    assert found[("double", "prediction")].rows == 5


def test_methods_callable_objects_coroutines_and_generators(instrumented: Path) -> None:
    class Model:
        def infer(self, requests: list[Request]) -> list[dict[str, np.ndarray]]:
            return [{"y": request["x"] + 1} for request in requests]

        def __call__(self, requests: list[Request]) -> list[dict[str, np.ndarray]]:
            return self.infer(requests)

    async def coroutine(requests: list[Request]) -> list[dict[str, np.ndarray]]:
        return [{"y": request["x"]} for request in requests]

    def stream(requests: list[Request]) -> Iterator[list[dict[str, np.ndarray]]]:
        for token in range(3):                                            # a decoupled model: three answers
            yield [{"y": np.full((1, 1), token, np.float32)} for _ in requests]

    model = Model()
    for function, name in ((model.infer, "method"), (Model(), "object"), (coroutine, "coroutine"), (stream, "stream")):
        answers = run(handler(function, name), [Request({"x": np.ones((1, 2), np.float32)})])
        assert answers, name
        assert outcome_counts(name) == {"ok": 1, "error": 0}, name
    found = profiles(instrumented)
    assert found[("stream", "prediction")].rows == 3                       # every streamed answer
    assert found[("method", "input")].rows == 1


def test_failures_keep_their_exception_and_count_as_errors(instrumented: Path) -> None:
    def broken(requests: list[Request]) -> list[dict[str, np.ndarray]]:
        raise ZeroDivisionError("model bug")

    with pytest.raises(ZeroDivisionError, match="model bug"):
        run(handler(broken, "broken"), [Request({"x": np.ones((2, 2))})])
    assert outcome_counts("broken") == {"ok": 0, "error": 1}

    def answers_wrongly(requests: list[Request]) -> list[dict[str, np.ndarray]]:
        return [{"y": np.ones((1, 1))} for _ in requests]

    run(handler(answers_wrongly, "refused"), [Request({"x": np.ones((1, 2))})], stop_after=1)   # validation failed
    assert outcome_counts("refused") == {"ok": 0, "error": 1}
    assert errors.counts() == {}


def test_odd_tensors_are_counted_never_raised(instrumented: Path) -> None:
    def echo(requests: list[Request]) -> list[dict[str, np.ndarray]]:
        return [{"y": request["x"]} for request in requests]

    bound = handler(echo, "odd")
    nan = np.array([[np.nan, 1.0], [2.0, np.inf]], np.float32)
    run(bound, [Request({"x": nan})])
    words = np.array([[b"spam"], [b"eggs \xff"]], dtype=object)
    run(bound, [Request({"x": words})])
    run(bound, [Request({"x": np.ones((1, 2))}), Request({"x": np.ones((1, 3))})])   # tensors that do not line up
    run(bound, [])
    assert outcome_counts("odd") == {"ok": 4, "error": 0}
    found = profiles(instrumented)
    assert found[("odd", "input")].columns["x.0"].missing >= 1
    assert errors.counts() == {}


def test_a_callable_bound_without_pytriton_context_is_left_alone(instrumented: Path) -> None:
    def orphan(requests: list[Request]) -> list[dict[str, np.ndarray]]:
        return []

    bound = inference.InferenceHandler(orphan, mock.Mock(), mock.Mock())
    assert run(bound, []) == [[]]
    assert errors.counts().get("pytriton.bind") == 1


def test_uninstrument_stops_reporting_from_handlers_created_before(spool: Path) -> None:
    instrumentor = PyTritonInstrumentor()
    instrumentor.instrument()

    def echo(requests: list[Request]) -> list[dict[str, np.ndarray]]:
        return [{"y": request["x"]} for request in requests]

    bound = handler(echo, "before")
    run(bound, [Request({"x": np.ones((1, 2))})])
    instrumentor.uninstrument()
    assert run(bound, [Request({"x": np.ones((1, 2))})])[0][0]["y"].shape == (1, 2)
    assert outcome_counts("before") == {"ok": 1, "error": 0}
