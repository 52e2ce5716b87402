"""Request and response bodies copied on their way through ASGI, and how they are decoded."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from servewatch.instrumentation import NOTHING, errors
from servewatch.instrumentation.ray_serve.exchange import MAX_BODY, Exchange, decode_body, request_value

pytest.importorskip("ray.serve", reason="the ray extra is not installed")

from starlette.requests import Request  # noqa: E402


class Receive:
    """An ASGI receive returning ``messages`` in turn, then disconnects; with Ray's extra method."""

    def __init__(self, *messages: dict[str, Any]) -> None:
        self.messages = list(messages)
        self.fetched = False

    async def __call__(self) -> dict[str, Any]:
        return self.messages.pop(0) if self.messages else {"type": "http.disconnect"}

    async def fetch_until_disconnect(self) -> None:
        self.fetched = True


def chunks(body: bytes, size: int) -> list[dict[str, Any]]:
    parts = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    return [{"type": "http.request", "body": part, "more_body": i < len(parts) - 1} for i, part in enumerate(parts)]


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_the_application_reads_the_body_it_would_read_without_us() -> None:
    body = json.dumps([{"amount": 3.5, "country": "DE"}, {"amount": 7.0, "country": "US"}]).encode()
    exchange = Exchange()
    inner = Receive(*chunks(body, 10))
    receive = exchange.tee_receive(inner)
    request = Request({"type": "http", "method": "POST", "headers": []}, receive)

    assert run(request.json()) == json.loads(body)  # starlette consumed every chunk through the tee
    assert exchange.values() == ([{"amount": 3.5, "country": "DE"}, {"amount": 7.0, "country": "US"}], NOTHING)
    run(receive.fetch_until_disconnect())  # Ray's receive proxy keeps its own methods
    assert inner.fetched


def test_a_body_the_application_does_not_read_is_not_read_for_it() -> None:
    exchange = Exchange()
    inner = Receive(*chunks(b'{"amount": 1}', 4))
    exchange.tee_receive(inner)
    assert len(inner.messages) == 4 and exchange.values() == (NOTHING, NOTHING)


def test_a_body_read_in_part_is_not_profiled() -> None:
    exchange = Exchange()
    receive = exchange.tee_receive(Receive(*chunks(b'{"amount": 12345}', 5)))
    run(receive())
    assert exchange.values() == (NOTHING, NOTHING)


def test_the_response_body_is_copied_as_it_is_sent() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    exchange = Exchange()
    tee = exchange.tee_send(send)
    messages = [{"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]},
                {"type": "http.response.body", "body": b'{"score": ', "more_body": True},
                {"type": "http.response.body", "body": b"0.25}", "more_body": False}]
    for message in messages:
        run(tee(message))
    assert sent == messages
    assert exchange.values() == (NOTHING, {"score": 0.25})


def test_bodies_over_the_limit_are_given_up_and_still_delivered() -> None:
    body = b"[" + b"1," * (MAX_BODY // 2) + b"1]"
    exchange = Exchange()
    receive = exchange.tee_receive(Receive(*chunks(body, 65536)))
    received = b""
    while True:
        message = run(receive())
        received += message["body"]
        if not message["more_body"]:
            break
    assert received == body
    assert exchange.values() == (NOTHING, NOTHING)


def test_objects_set_directly_win_over_bodies() -> None:
    exchange = Exchange()
    exchange.inputs, exchange.outputs = [1.0, 2.0], {"y": 3}
    assert exchange.values() == ([1.0, 2.0], {"y": 3})


def test_a_failing_observation_is_counted_and_the_message_still_passes() -> None:
    exchange = Exchange()
    receive = exchange.tee_receive(Receive({"type": "http.request", "body": 42}))  # not bytes: cannot be copied
    before = errors.counts().get("ray_serve.http", 0)
    assert run(receive()) == {"type": "http.request", "body": 42}
    assert errors.counts()["ray_serve.http"] == before + 1


def test_decoding_json_then_text_then_bytes() -> None:
    assert decode_body(b'{"a": [1, 2]}') == {"a": [1, 2]}
    assert decode_body(b"7.5") == 7.5
    assert decode_body("déjà vu".encode()) == "déjà vu"
    assert decode_body(b"\xff\xd8\xff\xe0 jpeg") == b"\xff\xd8\xff\xe0 jpeg"
    assert decode_body(b"") is NOTHING
    assert decode_body(b"NaN") != decode_body(b"NaN")  # JSON's NaN is a float NaN, a missing value to the profile


def test_a_starlette_request_stands_for_its_body_or_its_query() -> None:
    read = Request({"type": "http", "method": "POST", "headers": []}, Receive(*chunks(b'{"amount": 2}', 100)))
    run(read.body())
    assert request_value(read) == {"amount": 2}
    query = Request({"type": "http", "method": "GET", "headers": [], "query_string": b"amount=2.5&country=DE"})
    assert request_value(query) == {"amount": 2.5, "country": "DE"}
    unread = Request({"type": "http", "method": "POST", "headers": [], "query_string": b""}, Receive())
    assert request_value(unread) is NOTHING
