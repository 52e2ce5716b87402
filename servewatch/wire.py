"""The wire form of profiles: one OTLP log record per profile, event name ``servewatch.profile``.

Usage::

    from servewatch.wire import decode_profiles, encode_profiles

    data = encode_profiles([inputs, predictions])     # serialized ExportLogsServiceRequest: POST to /v1/logs
    profiles = decode_profiles(data)                  # strict; ProfileError names what is wrong

    attributes, body = profile_record(profile)        # what the instrumentation hands to an OTel Logger.emit
    decoded = decode_request(request)                 # per record, for a receiver: profiles, rejects, ignored

The record::

    event_name  "servewatch.profile"
    attributes  servewatch.profile.version (int, 1)   servewatch.model     servewatch.signal (input|prediction)
                servewatch.interval.start / .end (Unix seconds, double)   servewatch.producer   servewatch.sequence
    body        kvlist {rows: int, columns: kvlist {<name>: kvlist {
                    type: "numeric" | "categorical", count, missing, non_finite, invalid, below_min, above_max,
                    not_allowed (ints), kll (bytes, numeric) | frequent, distinct (bytes, categorical)}}}

The producer defaults to the resource's ``service.instance.id``. Reference files and spool files hold the
same bytes, so one decoder serves the network, the spool and references. Decoding checks sizes, version,
types, counts against sketches, and the KLL layout (:mod:`servewatch.kll_layout`) before any sketch bytes reach
the C++ library.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import datasketches as ds
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from .column import ColumnProfile
from .errors import ProfileError
from .kll_layout import check_kll
from .profile import SIGNALS, Profile

__all__ = [
    "Decoded",
    "EVENT_NAME",
    "Limits",
    "WIRE_VERSION",
    "decode_profiles",
    "decode_request",
    "encode_profiles",
    "parse_request",
    "profile_from_record",
    "profile_record",
]

EVENT_NAME = "servewatch.profile"
WIRE_VERSION = 1
_COUNTS = ("count", "missing", "non_finite", "invalid", "below_min", "above_max", "not_allowed")
_MAX_COUNT = 2**62


@dataclass(frozen=True)
class Limits:
    """What a decoder accepts at most."""

    max_bytes: int = 64 * 2**20
    max_columns: int = 4096
    max_name_length: int = 256
    max_sketch_bytes: int = 2**20


DEFAULT_LIMITS = Limits()


@dataclass
class Decoded:
    """The outcome of decoding one request record by record."""

    profiles: list[Profile] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    """One reason per rejected ``servewatch.profile`` record."""
    ignored: int = 0
    """Log records that are not ``servewatch.profile`` events."""


# -- encoding ---------------------------------------------------------------------------------------------

def profile_record(profile: Profile) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(attributes, body)`` of the log record carrying ``profile`` (plain Python values; bytes for sketches)."""
    attributes: dict[str, Any] = {
        "servewatch.profile.version": WIRE_VERSION,
        "servewatch.model": profile.model,
        "servewatch.signal": profile.signal,
        "servewatch.interval.start": float(profile.start),
        "servewatch.interval.end": float(profile.end if profile.end is not None else profile.start),
        "servewatch.sequence": int(profile.sequence),
    }
    if profile.producer:
        attributes["servewatch.producer"] = profile.producer
    columns: dict[str, Any] = {}
    for name, column in profile.columns.items():
        entry: dict[str, Any] = {"type": column.kind}
        entry.update((key, getattr(column, key)) for key in _COUNTS if getattr(column, key))
        if column.sketch is not None:
            entry["kll"] = column.sketch.serialize()
        else:
            entry["frequent"] = column.frequent.serialize()  # type: ignore[union-attr]
            entry["distinct"] = column.distinct.serialize_compact()  # type: ignore[union-attr]
        columns[name] = entry
    return attributes, {"rows": profile.rows, "columns": columns}


def encode_profiles(profiles: Iterable[Profile], resource: Mapping[str, Any] | None = None) -> bytes:
    """A serialized ``ExportLogsServiceRequest`` with one record per profile."""
    records = []
    for profile in profiles:
        attributes, body = profile_record(profile)
        end_ns = int(attributes["servewatch.interval.end"] * 1e9)
        records.append(LogRecord(time_unix_nano=end_ns, observed_time_unix_nano=end_ns, event_name=EVENT_NAME,
                                 body=_any(body), attributes=_key_values(attributes)))
    request = ExportLogsServiceRequest(resource_logs=[ResourceLogs(
        resource=Resource(attributes=_key_values(resource or {})),
        scope_logs=[ScopeLogs(scope=InstrumentationScope(name="servewatch"), log_records=records)],
    )])
    return request.SerializeToString()


def _any(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, Mapping):
        return AnyValue(kvlist_value=KeyValueList(values=_key_values(value)))
    raise TypeError(f"cannot encode {type(value).__name__}")


def _key_values(mapping: Mapping[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=str(key), value=_any(value)) for key, value in mapping.items()]


# -- decoding ---------------------------------------------------------------------------------------------

def decode_profiles(data: bytes, limits: Limits = DEFAULT_LIMITS) -> list[Profile]:
    """Every profile in serialized request ``data``; the first bad record raises :class:`ProfileError`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProfileError(f"expected bytes, got {type(data).__name__}")
    if len(data) > limits.max_bytes:
        raise ProfileError(f"{len(data)} bytes is over the {limits.max_bytes}-byte limit")
    request = parse_request(bytes(data))
    decoded = decode_request(request, limits)
    if decoded.rejected:
        raise ProfileError(decoded.rejected[0])
    return decoded.profiles


def parse_request(data: bytes) -> ExportLogsServiceRequest:
    """Parse protobuf bytes into a request; ProfileError when they are not one."""
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as error:
        raise ProfileError(f"not an OTLP ExportLogsServiceRequest: {error}") from None
    return request


def decode_request(request: ExportLogsServiceRequest, limits: Limits = DEFAULT_LIMITS) -> Decoded:
    """Decode each record of ``request`` on its own: good ones become profiles, bad ones a reason each."""
    decoded = Decoded()
    for resource_logs in request.resource_logs:
        resource = {kv.key: kv.value for kv in resource_logs.resource.attributes}
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                if not _is_profile(record):
                    decoded.ignored += 1
                    continue
                try:
                    decoded.profiles.append(profile_from_record(record, resource, limits))
                except ProfileError as error:
                    decoded.rejected.append(str(error))
    return decoded


def _is_profile(record: LogRecord) -> bool:
    if record.event_name == EVENT_NAME:
        return True
    return any(kv.key == "event.name" and kv.value.string_value == EVENT_NAME for kv in record.attributes)


def profile_from_record(record: LogRecord, resource: Mapping[str, AnyValue] | None = None,
                        limits: Limits = DEFAULT_LIMITS) -> Profile:
    """The profile one log record carries; ProfileError with the reason if anything about it is wrong."""
    attributes = {kv.key: kv.value for kv in record.attributes}
    version = _int(attributes.get("servewatch.profile.version"), "servewatch.profile.version")
    if version != WIRE_VERSION:
        raise ProfileError(f"profile version {version} is not supported (this decoder reads {WIRE_VERSION})")
    model = _text(attributes.get("servewatch.model"), "servewatch.model", limits, required=True)
    signal = _text(attributes.get("servewatch.signal"), "servewatch.signal", limits, required=True)
    if signal not in SIGNALS:
        raise ProfileError(f"servewatch.signal must be one of {', '.join(SIGNALS)}, got {signal!r}")
    start = _seconds(attributes.get("servewatch.interval.start"), "servewatch.interval.start")
    end = _seconds(attributes.get("servewatch.interval.end"), "servewatch.interval.end")
    if end < start:
        raise ProfileError("servewatch.interval.end is before servewatch.interval.start")
    producer = _text(attributes.get("servewatch.producer"), "servewatch.producer", limits, required=False)
    if not producer and resource is not None:
        producer = _text(resource.get("service.instance.id"), "service.instance.id", limits, required=False)
    sequence = _int(attributes.get("servewatch.sequence", AnyValue(int_value=0)), "servewatch.sequence")
    body = _fields(record.body, "body")
    rows = _int(body.get("rows", AnyValue(int_value=0)), "body.rows")
    columns = _fields(body.get("columns", AnyValue(kvlist_value=KeyValueList())), "body.columns")
    if len(columns) > limits.max_columns:
        raise ProfileError(f"{len(columns)} columns is over the limit of {limits.max_columns}")
    profile = Profile(model, signal, start=start, end=end, producer=producer, sequence=sequence)
    profile.rows = rows
    decoded = profile._columns
    for name, value in columns.items():
        if not name or len(name) > limits.max_name_length:
            raise ProfileError(f"column name of length {len(name)} outside [1, {limits.max_name_length}]")
        decoded[name] = _column(name, _fields(value, f"column {name!r}"), limits)
    return profile


def _column(name: str, fields: Mapping[str, AnyValue], limits: Limits) -> ColumnProfile:
    where = f"column {name!r}"
    kind = _text(fields.get("type"), f"{where} type", limits, required=True)
    if kind not in ("numeric", "categorical"):
        raise ProfileError(f"{where}: type must be numeric or categorical, got {kind!r}")
    counts = {key: _int(fields.get(key, AnyValue(int_value=0)), f"{where} {key}") for key in _COUNTS}
    if any(not 0 <= value <= _MAX_COUNT for value in counts.values()):
        raise ProfileError(f"{where}: counts must be in [0, 2**62]")
    valid = counts["count"] - counts["missing"] - counts["non_finite"] - counts["invalid"]
    if valid < 0:
        raise ProfileError(f"{where}: missing + non_finite + invalid exceed count")
    if kind == "numeric":
        data = _sketch_bytes(fields.get("kll"), f"{where} kll", limits)
        check_kll(data)
        sketch = _deserialize(ds.kll_doubles_sketch, data, where)
        if sketch.n != valid:
            raise ProfileError(f"{where}: sketch holds {sketch.n} values, counts say {valid}")
        if counts["below_min"] + counts["above_max"] > valid:
            raise ProfileError(f"{where}: out-of-range counts exceed the values")
        return ColumnProfile.from_parts(name, kind, counts, sketch=sketch)
    else:
        frequent = _deserialize(ds.frequent_strings_sketch, _sketch_bytes(fields.get("frequent"), f"{where} frequent",
                                                                          limits), where)
        distinct = _deserialize(ds.hll_sketch, _sketch_bytes(fields.get("distinct"), f"{where} distinct", limits), where)
        try:  # item strings must decode (a corrupt one raises std::bad_cast only when read)
            frequent.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES)
        except Exception as error:
            raise ProfileError(f"{where}: corrupt frequent-items sketch: {error}") from None
        if not 4 <= distinct.lg_config_k <= 21:
            raise ProfileError(f"{where}: distinct-count sketch has lg_k {distinct.lg_config_k} outside [4, 21]")
        if frequent.total_weight != valid:
            raise ProfileError(f"{where}: sketch holds weight {frequent.total_weight}, counts say {valid}")
        if counts["not_allowed"] > valid:
            raise ProfileError(f"{where}: not_allowed exceeds the values")
    return ColumnProfile.from_parts(name, kind, counts, frequent=frequent, distinct=distinct)


def _deserialize(kind: Any, data: bytes, where: str) -> Any:
    try:
        return kind.deserialize(data)
    except Exception as error:  # the bindings raise RuntimeError, ValueError, IndexError, ...
        raise ProfileError(f"{where}: corrupt sketch: {error}") from None


def _fields(value: AnyValue | None, where: str) -> dict[str, AnyValue]:
    if value is None or value.WhichOneof("value") != "kvlist_value":
        raise ProfileError(f"{where} must be a key-value list")
    fields: dict[str, AnyValue] = {}
    for kv in value.kvlist_value.values:
        if kv.key in fields:
            raise ProfileError(f"{where}: key {kv.key!r} appears twice")
        fields[kv.key] = kv.value
    return fields


def _int(value: AnyValue | None, where: str) -> int:
    if value is None or value.WhichOneof("value") != "int_value":
        raise ProfileError(f"{where} must be an integer")
    return int(value.int_value)


def _seconds(value: AnyValue | None, where: str) -> float:
    kind = value.WhichOneof("value") if value is not None else None
    if kind == "double_value":
        seconds = value.double_value  # type: ignore[union-attr]
    elif kind == "int_value":
        seconds = float(value.int_value)  # type: ignore[union-attr]
    else:
        raise ProfileError(f"{where} must be a number of seconds")
    if not math.isfinite(seconds) or not 0 <= seconds < 1e11:
        raise ProfileError(f"{where} {seconds!r} is not a plausible Unix time")
    return seconds


def _text(value: AnyValue | None, where: str, limits: Limits, *, required: bool) -> str:
    if value is None:
        if required:
            raise ProfileError(f"{where} is missing")
        return ""
    if value.WhichOneof("value") != "string_value":
        raise ProfileError(f"{where} must be a string")
    text = value.string_value
    if len(text) > limits.max_name_length or (required and not text):
        raise ProfileError(f"{where} must be 1 to {limits.max_name_length} characters")
    return text


def _sketch_bytes(value: AnyValue | None, where: str, limits: Limits) -> bytes:
    if value is None or value.WhichOneof("value") != "bytes_value":
        raise ProfileError(f"{where} must be bytes")
    data = value.bytes_value
    if len(data) > limits.max_sketch_bytes:
        raise ProfileError(f"{where}: {len(data)} bytes is over the {limits.max_sketch_bytes}-byte limit")
    return data
