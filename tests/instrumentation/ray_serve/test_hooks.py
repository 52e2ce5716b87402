"""The request hooks on their own, with Ray's real ``RequestMetadata`` and stand-ins for the replica (the
integration tests run them inside a real Ray Serve)."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from servewatch.instrumentation import NOTHING, errors
from servewatch.instrumentation.ray_serve import hooks, replica

pytest.importorskip("ray.serve", reason="the ray extra is not installed")

from ray.serve._private.common import RequestMetadata, RequestProtocol  # noqa: E402


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def record(model: str, inputs: Any = NOTHING, outputs: Any = NOTHING, **options: Any) -> None:
        calls.append({"model": model, "inputs": inputs, "outputs": outputs, **options})

    monkeypatch.setattr(hooks, "record", record)
    replica._current = replica.ReplicaInfo(model="scorer", application="app", replica_id="r1", batched=False)
    yield calls
    replica.detach()
    hooks._exchanges.clear()


def metadata(request_id: str = "r-1", protocol: RequestProtocol = RequestProtocol.HTTP,
             route: str = "/score") -> RequestMetadata:
    return RequestMetadata(request_id=request_id, internal_request_id=request_id, call_method="score",
                           route=route, _request_protocol=protocol)


class Receive:
    def __init__(self, body: bytes) -> None:
        self.messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def __call__(self) -> dict[str, Any]:
        return self.messages.pop(0)


def http_request(body: bytes, answer: bytes, status: int, request: RequestMetadata) -> None:
    """What Ray does for one HTTP request: call_http_entrypoint, whose user code reads the body and answers
    through send, then _record_errors_and_metrics."""
    sent: list[dict[str, Any]] = []
    pristine = pickle.dumps(request)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def user_code(method_info: Any, scope: Any, receive: Any, send: Any) -> None:
        # Ray pickles the RequestMetadata into each call to the proxy for more body: nothing of ours rides along
        assert pickle.dumps(request) == pristine
        assert (await receive())["body"] == body
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": answer, "more_body": False})

    def entrypoint(request: Any, callback: Any, scope: Any, receive: Any) -> Any:
        return hooks.call_http_inner(user_code, None, (None, scope, receive, send), {})

    asyncio.run(hooks.call_http_entrypoint(entrypoint, None, (request, None, {"type": "http"}, Receive(body)), {}))
    assert [message.get("status") or message.get("body") for message in sent] == [status, answer]
    exception = ValueError("boom") if status == 500 else None
    hooks.record_errors_and_metrics(lambda *args: None, None, (exception, str(status), 4.0, request), {})


def test_an_http_request_is_recorded_once_with_its_bodies(recorded: list[dict[str, Any]]) -> None:
    http_request(b'{"amount": 3.5}', b'{"score": 0.1}', 200, metadata())
    assert recorded == [{"model": "scorer", "inputs": {"amount": 3.5}, "outputs": {"score": 0.1}, "duration": 0.004,
                         "outcome": "ok", "framework": "ray_serve", "route": "/score"}]
    assert not hooks._exchanges


def test_only_http_requests_carry_their_route(recorded: list[dict[str, Any]]) -> None:
    # a handle call made while serving an HTTP request inherits that request's route in its metadata
    handle_call(metadata("r-1", protocol=RequestProtocol.UNDEFINED, route="/gateway"), (1.0,), {}, 2.0)
    http_request(b'{"amount": 2}', b'{"score": 2}', 200, metadata("r-2", route=""))   # Ray's "no route"
    http_request(b'{"amount": 2}', b'{"score": 2}', 200, metadata("r-3", route="/items/{item_id}"))
    assert [call["route"] for call in recorded] == [None, None, "/items/{item_id}"]


@pytest.mark.parametrize(("status", "outcome", "answered"), [(500, "error", False), (422, "error", False),
                                                             (307, "ok", False), (201, "ok", True)])
def test_outcomes_and_which_answers_are_predictions(recorded: list[dict[str, Any]], status: int, outcome: str,
                                                   answered: bool) -> None:
    http_request(b'{"amount": 1}', b'{"detail": "x"}', status, metadata())
    assert recorded[0]["outcome"] == outcome and recorded[0]["inputs"] == {"amount": 1}
    assert (recorded[0]["outputs"] == {"detail": "x"}) is answered


class Wrapper:
    """Stands for Ray's UserCallableWrapper."""

    _local_testing_mode = False

    def get_user_method_info(self, name: str) -> Any:
        def score(amount: float, country: str) -> float:
            return amount
        return SimpleNamespace(callable=score)


def handle_call(request: RequestMetadata, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any) -> Any:
    async def call_user_method(request: Any, args: Any, kwargs: Any) -> Any:
        return result

    async def main() -> Any:
        return await hooks.call_user_method(call_user_method, Wrapper(), (request, args, kwargs), {})

    answer = asyncio.run(main())
    hooks.record_errors_and_metrics(lambda *args: None, None, (None, None, 2.0, request), {})
    return answer


def test_a_handle_call_records_its_arguments_and_result(recorded: list[dict[str, Any]]) -> None:
    assert handle_call(metadata(protocol=RequestProtocol.UNDEFINED), (3.5,), {"country": "DE"}, [0.7]) == [0.7]
    assert recorded[0]["inputs"] == {"amount": 3.5, "country": "DE"} and recorded[0]["outputs"] == [0.7]


def test_requests_to_a_batched_deployment_only_count(recorded: list[dict[str, Any]]) -> None:
    replica._current = replica.ReplicaInfo(model="scorer", application="app", replica_id="r1", batched=True)
    handle_call(metadata(protocol=RequestProtocol.UNDEFINED), ({"amount": 1},), {}, {"score": 1})
    http_request(b'{"amount": 2}', b'{"score": 2}', 200, metadata("r-2"))
    assert [(call["inputs"], call["outputs"]) for call in recorded] == [(NOTHING, NOTHING)] * 2
    assert not hooks._exchanges


def test_outside_a_replica_nothing_is_kept_or_recorded(recorded: list[dict[str, Any]]) -> None:
    replica.detach()
    handle_call(metadata(protocol=RequestProtocol.UNDEFINED), (1.0,), {}, 2.0)
    assert not recorded and not hooks._exchanges


def test_exchanges_of_requests_never_recorded_are_bounded(recorded: list[dict[str, Any]],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hooks, "MAX_IN_FLIGHT", 3)
    before = errors.counts().get("ray_serve.in_flight", 0)
    for i in range(4):
        hooks._open_exchange(metadata(f"lost-{i}"))
    assert list(hooks._exchanges) == ["lost-3"]
    assert errors.counts()["ray_serve.in_flight"] == before + 3
