"""OTLP/HTTP request and response bodies, as the OTLP specification describes them.

Usage::

    data = decompress(body, headers.get("Content-Encoding"), limit=64 * 2**20)   # RequestError on failure
    request = parse(ExportLogsServiceRequest, headers.get("Content-Type"), data)
    body, content_type = answer(ExportLogsServiceResponse(), as_json)
    body, content_type = failure(400, "not an OTLP request: ...", as_json)      # a google.rpc.Status

Bodies are protobuf (``application/x-protobuf``) or OTLP JSON (``application/json``: the protobuf JSON
mapping with lowerCamelCase keys, bytes in base64, 64-bit integers as numbers or strings; ``traceId`` and
``spanId``, which OTLP JSON writes in hex, are ignored: the detector has no use for them). Unknown JSON
fields are ignored, as OTLP asks of receivers. ``Content-Encoding`` may be ``gzip``, ``deflate`` or absent;
a body that inflates beyond the limit is refused (413) before it is fully inflated. Answers use the
request's encoding; errors carry a ``google.rpc.Status`` with the reason.
"""

from __future__ import annotations

import json
import zlib
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc.status_pb2 import Status

__all__ = ["JSON", "PROTOBUF", "RequestError", "answer", "decompress", "failure", "grpc_code", "media_type", "parse"]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_PROTOBUF_TYPES = {PROTOBUF, "application/protobuf"}
_IGNORED_JSON_KEYS = {"traceId", "spanId", "trace_id", "span_id"}
_GRPC_CODES = {400: 3, 401: 16, 404: 5, 405: 12, 411: 3, 413: 8, 415: 3, 429: 8, 500: 13, 503: 14}
_M = TypeVar("_M", bound=Message)


class RequestError(Exception):
    """A request that gets an error answer: ``status`` and a one-line ``reason``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def media_type(content_type: str | None) -> str | None:
    """``"protobuf"``, ``"json"`` or None (unsupported) for a Content-Type header."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in _PROTOBUF_TYPES:
        return "protobuf"
    if kind == JSON:
        return "json"
    return None


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """``body`` decoded from its Content-Encoding, at most ``limit`` bytes once inflated."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise RequestError(415, f"Content-Encoding {encoding!r} is not supported: use gzip, deflate or none")
    if encoding == "deflate" and body[:1] and (body[0] & 0x0F != 8 or int.from_bytes(body[:2], "big") % 31):
        wbits = -zlib.MAX_WBITS  # raw deflate, without the zlib header some clients leave out
    else:
        wbits = zlib.MAX_WBITS | (16 if encoding != "deflate" else 0)
    out = bytearray()
    data = body
    try:
        while True:
            inflater = zlib.decompressobj(wbits)
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit or inflater.unconsumed_tail:
                raise RequestError(413, f"body inflates beyond the {limit}-byte limit")
            if not inflater.eof:
                raise RequestError(400, f"truncated {encoding} body")
            data = inflater.unused_data
            if not data or wbits != zlib.MAX_WBITS | 16:  # only gzip allows several members
                break
    except zlib.error as error:
        raise RequestError(400, f"body is not valid {encoding}: {error}") from None
    if data and wbits != zlib.MAX_WBITS | 16:
        raise RequestError(400, f"trailing bytes after the {encoding} body")
    return bytes(out)


def parse(kind: type[_M], content_type: str | None, data: bytes) -> _M:
    """Parse ``data`` as a ``kind`` message (e.g. ``ExportLogsServiceRequest``) in the request's encoding."""
    media = media_type(content_type)
    message = kind()
    if media == "protobuf":
        try:
            message.ParseFromString(data)
        except (DecodeError, RuntimeError, ValueError) as error:
            raise RequestError(400, f"body is not a protobuf {kind.__name__}: {error}") from None
        return message
    if media == "json":
        try:
            document = json.loads(data.decode("utf-8"))
            if not isinstance(document, dict):
                raise ValueError("the top level must be an object")
            json_format.ParseDict(_without_ids(document), message, ignore_unknown_fields=True)
        except RecursionError:
            raise RequestError(400, "JSON body nests too deeply") from None
        except Exception as error:  # json, unicode and json_format errors of every kind
            raise RequestError(400, f"body is not an OTLP JSON {kind.__name__}: {_first_line(error)}") from None
        return message
    raise RequestError(415, f"Content-Type {content_type!r} is not supported: use {PROTOBUF} or {JSON}")


def answer(message: Message, as_json: bool) -> tuple[bytes, str]:
    """A 200 answer body in the request's encoding."""
    if as_json:
        return json_format.MessageToJson(message, indent=None).encode(), JSON
    return message.SerializeToString(), PROTOBUF


def failure(status: int, reason: str, as_json: bool) -> tuple[bytes, str]:
    """An error answer body: a ``google.rpc.Status`` carrying ``reason``."""
    return answer(Status(code=grpc_code(status), message=reason), as_json)


def grpc_code(status: int) -> int:
    """The gRPC status code that stands for HTTP ``status`` (OTLP's mapping; 2, UNKNOWN, for others)."""
    return _GRPC_CODES.get(status, 2)


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_ids(item) for key, item in value.items() if key not in _IGNORED_JSON_KEYS}
    if isinstance(value, list):
        return [_without_ids(item) for item in value]
    return value


def _first_line(error: Exception) -> str:
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:300]
