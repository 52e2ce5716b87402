"""What one request to a replica brought and what it took back, gathered on the way without disturbing it.

Usage (inside the hooks)::

    from servewatch.instrumentation.ray_serve.exchange import Exchange

    exchange = Exchange()                                  # one per request, kept on its RequestMetadata
    receive = exchange.tee_receive(receive)                # HTTP: the ASGI receive the user code reads from
    send = exchange.tee_send(send)                         # HTTP: the ASGI send the answer goes through
    exchange.inputs, exchange.outputs = args[0], result    # handle calls: the Python objects themselves
    inputs, outputs = exchange.values()                    # when the request ends (NOTHING where unknown)

HTTP bodies are copied as the application reads them, never read on its behalf: the user code (a plain
deployment's starlette ``Request``, a FastAPI app, any ASGI app) consumes the same messages it would
without servewatch, and the copy is only decoded when the request is recorded. A body the application does
not read, or reads only in part, is not profiled. Bodies over :data:`MAX_BODY` bytes are not kept (the
request itself is unaffected). Decoding (:func:`decode_body`): JSON when it parses, else UTF-8 text, else
the raw bytes (profiled as their size).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from servewatch.instrumentation import NOTHING, errors

__all__ = ["MAX_BODY", "Exchange", "decode_body", "request_value"]

MAX_BODY = 1 << 20
"""Bytes of a request or response body kept for profiling at most (1 MiB)."""

Message = MutableMapping[str, Any]


class Exchange:
    """The inputs and outputs of one request, as far as they could be seen."""

    __slots__ = ("inputs", "outputs", "_request", "_response", "_request_done", "_response_done")

    def __init__(self) -> None:
        self.inputs: Any = NOTHING
        self.outputs: Any = NOTHING
        self._request: bytearray | None = None
        self._response: bytearray | None = None
        self._request_done = False
        self._response_done = False

    def values(self) -> tuple[Any, Any]:
        """``(inputs, outputs)``: the objects set directly, else the decoded bodies; NOTHING where unknown."""
        inputs, outputs = self.inputs, self.outputs
        if inputs is NOTHING and self._request_done and self._request is not None:
            inputs = decode_body(bytes(self._request))
        if outputs is NOTHING and self._response_done and self._response is not None:
            outputs = decode_body(bytes(self._response))
        return inputs, outputs

    # -- HTTP ------------------------------------------------------------------------------------------------

    def tee_receive(self, receive: Any) -> _TeeReceive:
        """``receive`` (an ASGI receive callable), copying the request body to this exchange."""
        self._request = bytearray()
        return _TeeReceive(receive, self)

    def tee_send(self, send: Callable[[Message], Awaitable[None]]) -> Callable[[Message], Awaitable[None]]:
        """``send`` (an ASGI send callable), copying the response body to this exchange."""
        self._response = bytearray()

        async def tee(message: Message) -> None:
            try:
                if message.get("type") == "http.response.body":
                    self._response = _append(self._response, message)
                    self._response_done = self._response is not None and not message.get("more_body", False)
            except Exception as error:
                errors.report("ray_serve.http", error)
            await send(message)
        return tee

    def _received(self, message: Message) -> None:
        if message.get("type") == "http.request" and not self._request_done:
            self._request = _append(self._request, message)
            self._request_done = self._request is not None and not message.get("more_body", False)


class _TeeReceive:
    """An ASGI receive that copies ``http.request`` bodies; anything else (Ray's ``fetch_until_disconnect``)
    is the wrapped receive's."""

    __slots__ = ("_receive", "_exchange")

    def __init__(self, receive: Any, exchange: Exchange) -> None:
        self._receive = receive
        self._exchange = exchange

    async def __call__(self) -> Message:
        message = await self._receive()
        try:
            self._exchange._received(message)
        except Exception as error:
            errors.report("ray_serve.http", error)
        return message

    def __getattr__(self, name: str) -> Any:
        if name in _TeeReceive.__slots__:  # not set yet (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self._receive, name)


def _append(body: bytearray | None, message: Message) -> bytearray | None:
    """``body`` extended by the message's body; None (given up) past :data:`MAX_BODY` bytes."""
    if body is None:
        return None
    chunk = message.get("body", b"")
    if len(body) + len(chunk) > MAX_BODY:
        return None
    body += chunk
    return body


def decode_body(body: bytes) -> Any:
    """A request or response body as the model saw it: JSON, else text, else the bytes; NOTHING when empty."""
    if not body:
        return NOTHING
    try:
        return json.loads(body)
    except ValueError:
        pass
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body


def request_value(request: Any) -> Any:
    """What a starlette ``Request`` handed to a ``@serve.batch`` method carried, once the method has read it:
    its decoded body, else its query parameters (numbers where they parse), else NOTHING."""
    body = getattr(request, "_body", None)
    if body is not None:
        return decode_body(body)
    params = getattr(request, "query_params", None)
    if params:
        return {key: _number(value) for key, value in params.items()}
    return NOTHING


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text
