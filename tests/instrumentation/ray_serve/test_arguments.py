"""The model input read from handle-call arguments and from Ray's own batch items."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from servewatch.instrumentation import NOTHING
from servewatch.instrumentation.ray_serve.arguments import batch_inputs, call_inputs
from servewatch.instrumentation.ray_serve.replica import ReplicaInfo

pytest.importorskip("ray.serve", reason="the ray extra is not installed")

from ray._common.signature import extract_signature, flatten_args  # noqa: E402
from ray.serve.batching import _SingleRequest  # noqa: E402
from starlette.requests import Request  # noqa: E402


@pytest.fixture
def info() -> ReplicaInfo:
    return ReplicaInfo(model="scorer", application="app", replica_id="r1", batched=False)


class Scorer:
    def score(self, amount: float, country: str = "US") -> float:
        return amount

    async def batch(self, amounts: list[float], countries: list[str]) -> list[float]:
        return amounts

    def anything(self, *values: Any) -> None:
        pass


def test_one_argument_is_the_input_as_it_is(info: ReplicaInfo) -> None:
    rows = [{"amount": 1.0}]
    assert call_inputs(info, Scorer().score, (rows,), {}) is rows
    assert call_inputs(info, Scorer().score, (), {}) is NOTHING


def test_several_arguments_are_named_by_the_signature(info: ReplicaInfo) -> None:
    assert call_inputs(info, Scorer().score, (3.5, "DE"), {}) == {"amount": 3.5, "country": "DE"}
    assert call_inputs(info, Scorer().score, (3.5,), {"country": "DE"}) == {"amount": 3.5, "country": "DE"}
    assert call_inputs(info, Scorer().score, (), {"amount": 2.0}) == {"amount": 2.0}
    assert call_inputs(info, Scorer().anything, (1, 2), {}) == {"arg0": 1, "arg1": 2}
    assert call_inputs(info, None, (1, 2), {}) == {"arg0": 1, "arg1": 2}


def test_signatures_are_read_once_per_method(info: ReplicaInfo) -> None:
    method = Scorer.score
    call_inputs(info, method, (None, 3.5, "DE"), {})
    assert info.signatures == {(method, False): ("self", "amount", "country")}


def requests(function: Any, calls: list[tuple[tuple[Any, ...], dict[str, Any]]], owner: Any = None,
             ) -> list[_SingleRequest]:
    """Ray's batch items for ``calls`` of ``function``, flattened as ``@serve.batch`` does."""
    parameters = extract_signature(function)
    loop = asyncio.new_event_loop()
    try:
        return [_SingleRequest(self_arg=owner, flattened_args=flatten_args(parameters, args, kwargs),
                               future=loop.create_future(), request_context=None, trace_context=None)
                for args, kwargs in calls]
    finally:
        loop.close()


def test_a_batch_of_one_argument_is_the_list_the_method_receives(info: ReplicaInfo) -> None:
    async def predict(rows: list[dict[str, float]]) -> list[float]:
        return []

    batch = requests(predict, [(({"a": float(i)},), {}) for i in range(4)])
    assert batch_inputs(info, predict, batch) == [{"a": 0.0}, {"a": 1.0}, {"a": 2.0}, {"a": 3.0}]


def test_a_batch_of_several_arguments_is_named_columns(info: ReplicaInfo) -> None:
    scorer = Scorer()
    batch = requests(Scorer.batch, [((scorer, 1.0), {"countries": "DE"}), ((scorer, 2.0), {"countries": "US"})],
                     owner=scorer)
    for request in batch:  # serve.batch keeps self apart from the arguments
        request.flattened_args = request.flattened_args[2:]
    assert batch_inputs(info, Scorer.batch, batch) == {"amounts": [1.0, 2.0], "countries": ["DE", "US"]}


def test_starlette_requests_in_a_batch_stand_for_their_bodies(info: ReplicaInfo) -> None:
    async def handle(requests: list[Request]) -> list[int]:
        return []

    def request(body: bytes | None) -> Request:
        made = Request({"type": "http", "method": "POST", "headers": [], "query_string": b""})
        if body is not None:
            made._body = body  # what starlette keeps once the batch method has read it
        return made

    batch = requests(handle, [((request(b'{"a": 1}'),), {}), ((request(b'{"a": 2}'),), {})])
    assert batch_inputs(info, handle, batch) == [{"a": 1}, {"a": 2}]
    partly = requests(handle, [((request(b'{"a": 1}'),), {}), ((request(None),), {})])
    assert batch_inputs(info, handle, partly) == [{"a": 1}]
    unread = requests(handle, [((request(None),), {})])
    assert batch_inputs(info, handle, unread) is NOTHING
