"""The wire form: round trips, the OTel SDK path, and strict decoding of anything malformed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from servewatch import Profile, ProfileError
from servewatch.wire import EVENT_NAME, decode_profiles, decode_request, encode_profiles, profile_record


def sample_profile() -> Profile:
    rng = np.random.default_rng(0)
    profile = Profile("fraud", "input", start=1_700_000_000.0, end=1_700_000_060.0, producer="pod-1", sequence=7)
    profile.update({"amount": rng.lognormal(3, 1, 5000), "country": rng.choice(["US", "DE", "FR"], 5000)})
    profile.update_row({"amount": None, "country": None})
    return profile


def test_round_trip_keeps_everything() -> None:
    profile = sample_profile()
    decoded = Profile.from_bytes(profile.to_bytes())
    assert (decoded.model, decoded.signal, decoded.start, decoded.end, decoded.producer, decoded.sequence) == \
        ("fraud", "input", 1_700_000_000.0, 1_700_000_060.0, "pod-1", 7)
    assert decoded.rows == 5001
    for name, column in profile.columns.items():
        twin = decoded.columns[name]
        assert (twin.kind, twin.count, twin.missing, twin.valid) == (column.kind, column.count, column.missing, column.valid)
    assert decoded.columns["amount"].sketch.get_quantile(0.5) == profile.columns["amount"].sketch.get_quantile(0.5)
    assert decoded.columns["country"].categories() == profile.columns["country"].categories()
    assert decoded.to_bytes() == profile.to_bytes()


def test_empty_profile_and_empty_columns_round_trip() -> None:
    empty = Profile("m", "prediction", start=1.0, end=2.0)
    assert Profile.from_bytes(empty.to_bytes()).columns == {}
    nothing_valid = Profile("m", start=1.0).update([[None, "x"]])
    decoded = Profile.from_bytes(nothing_valid.to_bytes())
    assert decoded.columns["f0"].missing == 1 and decoded.columns["f1"].kind == "categorical"


def test_several_profiles_in_one_request() -> None:
    inputs, predictions = sample_profile(), Profile.from_data(np.ones((3, 1)), model="fraud", signal="prediction")
    decoded = decode_profiles(encode_profiles([inputs, predictions], resource={"service.instance.id": "abc"}))
    assert [p.signal for p in decoded] == ["input", "prediction"]
    assert decoded[1].producer == "abc"  # falls back to the resource's service.instance.id
    with pytest.raises(ProfileError, match="exactly one profile"):
        Profile.from_bytes(encode_profiles([inputs, predictions]))


def test_opentelemetry_sdk_log_path_decodes() -> None:
    """What the instrumentation emits through an OTel LoggerProvider is what the decoder reads."""
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.instance.id": "worker-3"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    attributes, body = profile_record(sample_profile())
    provider.get_logger("servewatch").emit(event_name=EVENT_NAME, attributes=attributes, body=body)
    provider.shutdown()
    data = encode_logs(exporter.get_finished_logs()).SerializeToString()
    decoded = Profile.from_bytes(data)
    assert decoded.producer == "pod-1" and decoded.columns["amount"].valid == 5000


def test_non_profile_records_are_ignored() -> None:
    request = ExportLogsServiceRequest.FromString(sample_profile().to_bytes())
    other = request.resource_logs[0].scope_logs[0].log_records.add()
    other.body.string_value = "an ordinary log line"
    decoded = decode_request(request)
    assert len(decoded.profiles) == 1 and decoded.ignored == 1 and decoded.rejected == []


def _mutated(change) -> bytes:
    request = ExportLogsServiceRequest.FromString(sample_profile().to_bytes())
    record = request.resource_logs[0].scope_logs[0].log_records[0]
    change(record)
    return request.SerializeToString()


def _attribute(record, key: str) -> AnyValue:
    return next(kv.value for kv in record.attributes if kv.key == key)


def _column(record, name: str):
    columns = next(kv.value for kv in record.body.kvlist_value.values if kv.key == "columns")
    return next(kv.value for kv in columns.kvlist_value.values if kv.key == name)


def _field(record, column: str, key: str) -> AnyValue:
    return next(kv.value for kv in _column(record, column).kvlist_value.values if kv.key == key)


@pytest.mark.parametrize("change, reason", [
    (lambda r: _attribute(r, "servewatch.profile.version").__setattr__("int_value", 2), "version 2 is not supported"),
    (lambda r: _attribute(r, "servewatch.model").__setattr__("string_value", ""), "servewatch.model must be"),
    (lambda r: _attribute(r, "servewatch.model").__setattr__("int_value", 5), "servewatch.model must be a string"),
    (lambda r: _attribute(r, "servewatch.signal").__setattr__("string_value", "output"), "servewatch.signal must be"),
    (lambda r: _attribute(r, "servewatch.interval.end").__setattr__("double_value", 1.0), "end is before"),
    (lambda r: _attribute(r, "servewatch.interval.start").__setattr__("double_value", float("nan")), "plausible"),
    (lambda r: _attribute(r, "servewatch.sequence").__setattr__("string_value", "7"), "sequence must be an integer"),
    (lambda r: r.body.__setattr__("string_value", "x"), "body must be a key-value list"),
    (lambda r: _field(r, "amount", "count").__setattr__("int_value", 0), "exceed count"),
    (lambda r: _field(r, "amount", "count").__setattr__("int_value", -1), "counts must be"),
    (lambda r: _field(r, "amount", "missing").__setattr__("int_value", 0), "sketch holds 5000 values, counts say 5001"),
    (lambda r: _field(r, "amount", "type").__setattr__("string_value", "text"), "type must be numeric or categorical"),
    (lambda r: _field(r, "amount", "kll").__setattr__("bytes_value", b"\x05\x01\x0f"), "shorter than the 8-byte"),
    (lambda r: _field(r, "amount", "kll").__setattr__("string_value", "x"), "kll must be bytes"),
    (lambda r: _field(r, "country", "frequent").__setattr__("bytes_value", b"garbage!"), "corrupt sketch"),
    (lambda r: _column(r, "country").kvlist_value.values.add(key="not_allowed").value.__setattr__("int_value", 10**9),
     "not_allowed exceeds"),
    (lambda r: _column(r, "amount").kvlist_value.values.add(key="count").value.__setattr__("int_value", 1),
     "appears twice"),
])
def test_strict_decoding_names_the_problem(change, reason: str) -> None:
    with pytest.raises(ProfileError, match=reason):
        Profile.from_bytes(_mutated(change))


def test_limits() -> None:
    with pytest.raises(ProfileError, match="over the"):
        decode_profiles(b"\x00" * (64 * 2**20 + 1))
    wide = Profile.from_data(np.zeros((1, 5000)), model="m", max_columns=5000)
    with pytest.raises(ProfileError, match="5000 columns is over the limit"):
        Profile.from_bytes(wide.to_bytes())
    with pytest.raises(ProfileError, match="column name of length"):
        Profile.from_bytes(Profile.from_data({"x" * 300: [1.0]}, model="m").to_bytes())
    with pytest.raises(ProfileError, match="expected bytes"):
        decode_profiles("text")  # type: ignore[arg-type]


def test_bit_flips_in_every_kll_header_byte_raise_cleanly() -> None:
    """datasketches would SIGSEGV on some of these; the layout check must catch each one first."""
    profile = sample_profile()
    base = profile.to_bytes()
    kll = profile.columns["amount"].sketch.serialize()
    offset = base.index(kll)
    for byte in range(0, 20 + 4 * 8):
        for bit in range(8):
            data = bytearray(base)
            data[offset + byte] ^= 1 << bit
            try:
                Profile.from_bytes(bytes(data))
            except ProfileError:
                pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_hostile_bytes_only_raise_profile_error(data: st.DataObject) -> None:
    base = bytearray(sample_profile().to_bytes())
    mode = data.draw(st.sampled_from(["truncate", "flip", "random", "splice"]))
    if mode == "truncate":
        payload = bytes(base[: data.draw(st.integers(0, len(base) - 1))])
    elif mode == "flip":
        for _ in range(data.draw(st.integers(1, 8))):
            index = data.draw(st.integers(0, len(base) - 1))
            base[index] ^= 1 << data.draw(st.integers(0, 7))
        payload = bytes(base)
    elif mode == "random":
        payload = data.draw(st.binary(max_size=4096))
    else:
        start = data.draw(st.integers(0, len(base) - 1))
        payload = bytes(base[:start] + data.draw(st.binary(max_size=64)) + base[start:])
    try:
        Profile.from_bytes(payload)
    except ProfileError:
        pass
