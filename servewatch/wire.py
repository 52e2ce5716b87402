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

Limits. :class:`Limits` (defined in :mod:`servewatch.wire_limits`, with the checks) is the one home of what a profile
may hold: names and keys, rows and counts, sequence numbers, interval ends, columns, sketch and request bytes. The
encoder refuses what the decoder would reject, with the same :class:`~servewatch.ProfileError` and its ``reason`` code
(:data:`servewatch.errors.PROFILE_REASONS`). Counts must also agree with each other and with the sketches: a numeric
column's KLL holds exactly its valid values; a categorical column's frequent-items sketch weighs exactly its valid
values, and the items it holds account for that weight up to the error the sketch records (a sketch with a weight, no
items and no error is *hollow* and rejected). The one exception is what datasketches itself writes for a sketch that
purged every item (each value distinct, say): an empty sketch, its weight lost; the column's counts keep the values,
read as categories no longer tracked (:class:`~servewatch.detectors.Categories` counts them as "other").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
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
from .profile import Profile
from .wire_limits import (
    DEFAULT_LIMITS,
    Limits,
    check_counts,
    check_identity,
    check_interval,
    check_name,
    check_range,
    check_width,
)

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


@dataclass
class Decoded:
    """The outcome of decoding one request record by record."""

    profiles: list[Profile] = field(default_factory=list)
    rejected: list[ProfileError] = field(default_factory=list)
    """Why each rejected ``servewatch.profile`` record was rejected (``str(error)``, ``error.reason``)."""
    ignored: int = 0
    """Log records that are not ``servewatch.profile`` events."""


# -- encoding ---------------------------------------------------------------------------------------------

def profile_record(profile: Profile, limits: Limits | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(attributes, body)`` of the log record carrying ``profile`` (plain Python values; bytes for sketches).
    Raises :class:`~servewatch.ProfileError` for a profile the decoder would reject (see :class:`Limits`)."""
    limits = limits or DEFAULT_LIMITS
    start = float(profile.start)
    end = float(profile.end if profile.end is not None else profile.start)
    check_identity(profile.model, profile.signal, profile.producer, limits)
    check_interval(start, end, limits)
    check_range(int(profile.sequence), limits.max_sequence, "servewatch.sequence", "sequence_range")
    check_range(profile.rows, limits.max_count, "body.rows", "rows_range")
    columns = profile.columns
    check_width(len(columns), limits)
    attributes: dict[str, Any] = {
        "servewatch.profile.version": WIRE_VERSION,
        "servewatch.model": profile.model,
        "servewatch.signal": profile.signal,
        "servewatch.interval.start": start,
        "servewatch.interval.end": end,
        "servewatch.sequence": int(profile.sequence),
    }
    if profile.producer:
        attributes["servewatch.producer"] = profile.producer
    body_columns: dict[str, Any] = {}
    for name, column in columns.items():
        check_name(name, f"column name {name[:40]!r}", limits, required=True)
        counts = {key: getattr(column, key) for key in _COUNTS}
        check_counts(counts, f"column {name!r}", limits)
        entry: dict[str, Any] = {"type": column.kind}
        entry.update((key, value) for key, value in counts.items() if value)
        if column.sketch is not None:
            entry["kll"] = column.sketch.serialize()
        else:
            # a sketch purged to no items serializes empty (its weight is lost): the counts keep it, untracked
            entry["frequent"] = column.frequent.serialize()  # type: ignore[union-attr]
            entry["distinct"] = column.distinct.serialize_compact()  # type: ignore[union-attr]
        body_columns[name] = entry
    return attributes, {"rows": profile.rows, "columns": body_columns}


def encode_profiles(profiles: Iterable[Profile], resource: Mapping[str, Any] | None = None,
                    limits: Limits | None = None) -> bytes:
    """A serialized ``ExportLogsServiceRequest`` with one record per profile (ProfileError for a profile the
    decoder would reject)."""
    records = []
    for profile in profiles:
        attributes, body = profile_record(profile, limits)
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
        raise ProfileError(f"{len(data)} bytes is over the {limits.max_bytes}-byte limit", "oversized")
    request = parse_request(bytes(data))
    decoded = decode_request(request, limits)
    if decoded.rejected:
        raise decoded.rejected[0]
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
                    decoded.rejected.append(error)
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
        raise ProfileError(f"profile version {version} is not supported (this decoder reads {WIRE_VERSION})",
                           "version")
    model = _text(attributes.get("servewatch.model"), "servewatch.model")
    signal = _text(attributes.get("servewatch.signal"), "servewatch.signal")
    producer = _text(attributes.get("servewatch.producer", AnyValue(string_value="")), "servewatch.producer")
    if not producer and resource is not None:
        producer = _text(resource.get("service.instance.id", AnyValue(string_value="")), "service.instance.id")
    check_identity(model, signal, producer, limits)
    start = _seconds(attributes.get("servewatch.interval.start"), "servewatch.interval.start")
    end = _seconds(attributes.get("servewatch.interval.end"), "servewatch.interval.end")
    check_interval(start, end, limits)
    sequence = _int(attributes.get("servewatch.sequence", AnyValue(int_value=0)), "servewatch.sequence")
    check_range(sequence, limits.max_sequence, "servewatch.sequence", "sequence_range")
    body = _fields(record.body, "body", limits)
    rows = _int(body.get("rows", AnyValue(int_value=0)), "body.rows")
    check_range(rows, limits.max_count, "body.rows", "rows_range")
    columns = _fields(body.get("columns", AnyValue(kvlist_value=KeyValueList())), "body.columns", limits)
    check_width(len(columns), limits)
    decoded: dict[str, ColumnProfile] = {}
    for name, value in columns.items():
        check_name(name, f"column name {name[:40]!r}", limits, required=True)
        decoded[name] = _column(name, _fields(value, f"column {name!r}", limits), limits)
    return Profile.from_columns(model, signal, decoded, rows=rows, start=start, end=end, producer=producer,
                                sequence=sequence)


def _column(name: str, fields: Mapping[str, AnyValue], limits: Limits) -> ColumnProfile:
    where = f"column {name!r}"
    kind = _text(fields.get("type"), f"{where} type")
    if kind not in ("numeric", "categorical"):
        raise ProfileError(f"{where}: type must be numeric or categorical, got {kind[:40]!r}")
    counts = {key: _int(fields.get(key, AnyValue(int_value=0)), f"{where} {key}") for key in _COUNTS}
    valid = check_counts(counts, where, limits)
    if kind == "numeric":
        data = _sketch_bytes(fields.get("kll"), f"{where} kll", limits)
        check_kll(data)
        sketch = _deserialize(ds.kll_doubles_sketch, data, where)
        if sketch.n != valid:
            raise ProfileError(f"{where}: sketch holds {sketch.n} values, counts say {valid}", "sketch_mismatch")
        return ColumnProfile.from_parts(name, kind, counts, sketch=sketch)
    frequent = _deserialize(ds.frequent_strings_sketch, _sketch_bytes(fields.get("frequent"), f"{where} frequent",
                                                                      limits), where)
    distinct = _deserialize(ds.hll_sketch, _sketch_bytes(fields.get("distinct"), f"{where} distinct", limits), where)
    if not 4 <= distinct.lg_config_k <= 21:
        raise ProfileError(f"{where}: distinct-count sketch has lg_k {distinct.lg_config_k} outside [4, 21]",
                           "corrupt_sketch")
    if frequent.total_weight != valid and not frequent.is_empty():  # empty: every value purged, all untracked
        raise ProfileError(f"{where}: sketch holds weight {frequent.total_weight}, counts say {valid}",
                           "sketch_mismatch")
    if distinct.is_empty() != (valid == 0):   # every valid value goes into both sketches
        raise ProfileError(f"{where}: distinct-count sketch is {'' if distinct.is_empty() else 'not '}empty, counts "
                           f"say {valid} values", "sketch_mismatch")
    _check_frequent(frequent, where)
    return ColumnProfile.from_parts(name, kind, counts, frequent=frequent, distinct=distinct)


def _check_frequent(frequent: Any, where: str) -> None:
    """The items account for the weight: exactly while the sketch never purged (its error is 0), and up to
    at least the error once it did (each purge removes at least its error from the weight)."""
    try:  # item strings must decode (a corrupt one raises std::bad_cast only when read)
        items = frequent.get_frequent_items(ds.frequent_items_error_type.NO_FALSE_NEGATIVES)
        error = frequent.get_upper_bound("") - frequent.get_lower_bound("")   # the same for every item
    except Exception as failure:
        raise ProfileError(f"{where}: corrupt frequent-items sketch: {failure}", "corrupt_sketch") from None
    held = sum(map(itemgetter(2), items))   # the lower bounds: what the items surely weigh
    weight = frequent.total_weight
    if error == 0 and not items and weight:
        raise ProfileError(f"{where}: frequent-items sketch weighs {weight} but holds no items", "hollow_sketch")
    if error < 0 or held > weight or (error == 0 and held != weight) or (error > 0 and weight - held < error):
        raise ProfileError(f"{where}: frequent-items sketch items weigh {held} of {weight} with error {error}",
                           "sketch_mismatch")


def _deserialize(kind: Any, data: bytes, where: str) -> Any:
    try:
        return kind.deserialize(data)
    except Exception as error:  # the bindings raise RuntimeError, ValueError, IndexError, ...
        raise ProfileError(f"{where}: corrupt sketch: {error}", "corrupt_sketch") from None


def _fields(value: AnyValue | None, where: str, limits: Limits) -> dict[str, AnyValue]:
    if value is None or value.WhichOneof("value") != "kvlist_value":
        raise ProfileError(f"{where} must be a key-value list")
    fields: dict[str, AnyValue] = {}
    for kv in value.kvlist_value.values:
        if kv.key in fields:
            raise ProfileError(f"{where}: key {kv.key[:40]!r} appears twice")
        if len(kv.key) > limits.max_name_length:
            raise ProfileError(f"{where}: key of {len(kv.key)} characters is over {limits.max_name_length}",
                               "name_length")
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
    return seconds


def _text(value: AnyValue | None, where: str) -> str:
    if value is None:
        raise ProfileError(f"{where} is missing")
    if value.WhichOneof("value") != "string_value":
        raise ProfileError(f"{where} must be a string")
    return value.string_value


def _sketch_bytes(value: AnyValue | None, where: str, limits: Limits) -> bytes:
    if value is None or value.WhichOneof("value") != "bytes_value":
        raise ProfileError(f"{where} must be bytes")
    data = value.bytes_value
    if len(data) > limits.max_sketch_bytes:
        raise ProfileError(f"{where}: {len(data)} bytes is over the {limits.max_sketch_bytes}-byte limit", "oversized")
    return data
