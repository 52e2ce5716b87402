"""OTLP/HTTP bodies: encodings with limits, protobuf and OTLP JSON (hex ids ignored), error answers."""

from __future__ import annotations

import base64
import gzip
import json
import zlib

import pytest
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from servewatch.detectors.service.otlp import RequestError, answer, decompress, failure, media_type, parse

from servewatch.profile import Profile
from servewatch.wire import decode_request, encode_profiles


def test_encodings_round_trip_and_unknown_ones_are_415() -> None:
    body = b"x" * 1000
    assert decompress(body, None, 2000) == body
    assert decompress(gzip.compress(body), "gzip", 2000) == body
    assert decompress(gzip.compress(body[:500]) + gzip.compress(body[500:]), "gzip", 2000) == body  # two members
    assert decompress(zlib.compress(body), "deflate", 2000) == body
    raw = zlib.compressobj(wbits=-15)
    assert decompress(raw.compress(body) + raw.flush(), "deflate", 2000) == body
    with pytest.raises(RequestError) as error:
        decompress(body, "br", 2000)
    assert error.value.status == 415


def test_a_gzip_bomb_is_refused_without_inflating_it() -> None:
    bomb = gzip.compress(b"\0" * (64 * 2**20))
    assert len(bomb) < 100_000
    with pytest.raises(RequestError) as error:
        decompress(bomb, "gzip", 2**20)
    assert error.value.status == 413


@pytest.mark.parametrize("body", [gzip.compress(b"abc")[:-5], b"not gzip at all", gzip.compress(b"abc") + b"junk"])
def test_broken_compressed_bodies_are_400(body: bytes) -> None:
    with pytest.raises(RequestError) as error:
        decompress(body, "gzip", 2**20)
    assert error.value.status == 400


def test_media_types() -> None:
    assert media_type("application/x-protobuf") == media_type("application/protobuf") == "protobuf"
    assert media_type("application/json; charset=utf-8") == "json"
    assert media_type("text/plain") is None and media_type(None) is None


def test_otlp_json_with_hex_ids_and_base64_bytes_decodes_to_the_same_profile() -> None:
    profile = Profile("fraud", "input", start=1.0, end=2.0, producer="p", sequence=3).update({"a": [1.0, 2.0, 3.0]})
    request = ExportLogsServiceRequest.FromString(encode_profiles([profile]))
    from google.protobuf import json_format

    document = json_format.MessageToDict(request)
    record = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    record["traceId"] = "5b8efff798038103d269b633813fc60c"   # hex, as OTLP JSON writes ids
    record["spanId"] = "eee19b7ec3c1b174"
    record["someFutureField"] = {"x": 1}                      # unknown fields are ignored
    parsed = parse(ExportLogsServiceRequest, "application/json", json.dumps(document).encode())
    decoded = decode_request(parsed)
    assert not decoded.rejected and decoded.profiles[0].columns["a"].sketch.n == 3
    kll = record["body"]["kvlistValue"]["values"][1]["value"]["kvlistValue"]["values"][0]["value"]["kvlistValue"]
    assert any("bytesValue" in kv["value"] and base64.b64decode(kv["value"]["bytesValue"]) for kv in kll["values"])


@pytest.mark.parametrize("content_type,body", [
    ("application/x-protobuf", b"\xff\xff\xff\xff"),
    ("application/json", b"{not json"),
    ("application/json", b"[1, 2]"),
    ("application/json", b'{"resourceLogs": 5}'),
    ("application/json", b"\xff\xfe"),
    ("application/json", b"[" * 100_000 + b"]" * 100_000),
])
def test_malformed_bodies_are_400(content_type: str, body: bytes) -> None:
    with pytest.raises(RequestError) as error:
        parse(ExportLogsServiceRequest, content_type, body)
    assert error.value.status == 400 and error.value.reason


def test_answers_follow_the_request_encoding() -> None:
    response = ExportLogsServiceResponse()
    response.partial_success.rejected_log_records = 2
    response.partial_success.error_message = "why"
    body, kind = answer(response, as_json=False)
    assert kind == "application/x-protobuf" and ExportLogsServiceResponse.FromString(body) == response
    body, kind = answer(response, as_json=True)
    assert kind == "application/json" and json.loads(body)["partialSuccess"]["rejectedLogRecords"] == "2"
    body, kind = failure(400, "bad body", as_json=False)
    assert Status.FromString(body).message == "bad body" and Status.FromString(body).code == 3
