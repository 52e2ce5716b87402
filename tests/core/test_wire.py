"""The wire form: round trips, the OTel SDK path, and strict decoding of anything malformed."""

from __future__ import annotations

import re

import datasketches as ds
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from servewatch import Profile, ProfileError
from servewatch.detectors import Categories
from servewatch.errors import PROFILE_REASONS
from servewatch.wire import EVENT_NAME, Limits, decode_profiles, decode_request, encode_profiles, profile_record


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


def _hollow(weight: int) -> bytes:
    """A frequent-items sketch claiming ``weight`` with no items and no error (what the decoder must refuse)."""
    sketch = ds.frequent_strings_sketch(10)
    sketch.update("a", weight)
    data = sketch.serialize()
    return data[:8] + (0).to_bytes(4, "little") + data[12:32]   # no active items; weight and offset kept


def _set(value: AnyValue, **field: object) -> None:
    for name, content in field.items():
        setattr(value, name, content)


@pytest.mark.parametrize("change, message, code", [
    (lambda r: _set(_attribute(r, "servewatch.profile.version"), int_value=2), "version 2 is not supported", "version"),
    (lambda r: _set(_attribute(r, "servewatch.model"), string_value=""), "servewatch.model must be", "name_length"),
    (lambda r: _set(_attribute(r, "servewatch.model"), string_value="m" * 257), "1 to 256 characters, got 257",
     "name_length"),
    (lambda r: _set(_attribute(r, "servewatch.producer"), string_value="p" * 300), "servewatch.producer must be",
     "name_length"),
    (lambda r: _set(_attribute(r, "servewatch.model"), int_value=5), "servewatch.model must be a string", "malformed"),
    (lambda r: _set(_attribute(r, "servewatch.signal"), string_value="output"), "servewatch.signal must be",
     "malformed"),
    (lambda r: _set(_attribute(r, "servewatch.interval.end"), double_value=1.0), "end is before", "interval"),
    (lambda r: _set(_attribute(r, "servewatch.interval.start"), double_value=float("nan")), "plausible", "interval"),
    (lambda r: _set(_attribute(r, "servewatch.interval.end"), double_value=2e10), "plausible", "interval"),
    (lambda r: _set(_attribute(r, "servewatch.interval.start"), int_value=-5), "plausible", "interval"),
    (lambda r: _set(_attribute(r, "servewatch.sequence"), string_value="7"), "sequence must be an integer",
     "malformed"),
    (lambda r: _set(_attribute(r, "servewatch.sequence"), int_value=-1), "sequence -1 outside [0, 2**63-1]",
     "sequence_range"),
    (lambda r: r.body.__setattr__("string_value", "x"), "body must be a key-value list", "malformed"),
    (lambda r: _set(next(kv.value for kv in r.body.kvlist_value.values if kv.key == "rows"), int_value=2**63 - 1),
     "body.rows 9223372036854775807 outside [0, 2**48]", "rows_range"),
    (lambda r: _set(next(kv.value for kv in r.body.kvlist_value.values if kv.key == "rows"), int_value=-3),
     "body.rows -3 outside", "rows_range"),
    (lambda r: r.body.kvlist_value.values.add(key="k" * 300).value.__setattr__("int_value", 1), "key of 300 characters",
     "name_length"),
    (lambda r: _set(_field(r, "amount", "count"), int_value=0), "exceed count", "count_range"),
    (lambda r: _set(_field(r, "amount", "count"), int_value=-1), "count -1 outside", "count_range"),
    (lambda r: _set(_field(r, "amount", "count"), int_value=2**62), "count 4611686018427387904 outside [0, 2**48]",
     "count_range"),
    (lambda r: _set(_field(r, "amount", "missing"), int_value=0), "sketch holds 5000 values, counts say 5001",
     "sketch_mismatch"),
    (lambda r: _set(_field(r, "amount", "type"), string_value="text"), "type must be numeric or categorical",
     "malformed"),
    (lambda r: _set(_field(r, "amount", "kll"), bytes_value=b"\x05\x01\x0f"), "shorter than the 8-byte",
     "corrupt_sketch"),
    (lambda r: _set(_field(r, "amount", "kll"), string_value="x"), "kll must be bytes", "malformed"),
    (lambda r: _set(_field(r, "country", "frequent"), bytes_value=b"garbage!"), "corrupt sketch", "corrupt_sketch"),
    (lambda r: _set(_field(r, "country", "frequent"), bytes_value=_hollow(5000)), "weighs 5000 but holds no items",
     "hollow_sketch"),
    (lambda r: _set(_field(r, "country", "distinct"), bytes_value=ds.hll_sketch(12).serialize_compact()),
     "distinct-count sketch is empty, counts say 5000 values", "sketch_mismatch"),
    (lambda r: _column(r, "country").kvlist_value.values.add(key="not_allowed").value.__setattr__("int_value", 10**9),
     "not_allowed exceeds", "count_range"),
    (lambda r: _column(r, "amount").kvlist_value.values.add(key="count").value.__setattr__("int_value", 1),
     "appears twice", "malformed"),
])
def test_strict_decoding_names_the_problem_and_its_reason(change, message: str, code: str) -> None:
    with pytest.raises(ProfileError, match=re.escape(message)) as raised:
        Profile.from_bytes(_mutated(change))
    assert raised.value.reason == code
    assert code in PROFILE_REASONS


def test_a_frequent_items_sketch_must_account_for_its_weight() -> None:
    """Items weighing less than the total are only possible once the sketch purged (its error then says so)."""
    sketch = ds.frequent_strings_sketch(10)
    sketch.update("a", 3000)
    data = bytearray(sketch.serialize())
    data[16:24] = (5000).to_bytes(8, "little")  # weight 5000, items 3000, error 0
    with pytest.raises(ProfileError, match="items weigh 3000 of 5000 with error 0") as raised:
        Profile.from_bytes(_mutated(lambda r: _set(_field(r, "country", "frequent"), bytes_value=bytes(data))))
    assert raised.value.reason == "sketch_mismatch"
    purged = ds.frequent_strings_sketch(3)   # 6 items at most: 7 distinct values purge every counter away
    for i in range(7):
        purged.update(str(i))
    assert purged.num_active_items == 0 and purged.total_weight == 7
    assert ds.frequent_strings_sketch.deserialize(purged.serialize()).total_weight == 0   # its bytes lose the weight
    profile = Profile("m", start=1.0).update({"c": [str(i) for i in range(7)]})
    profile.columns["c"].frequent = purged
    decoded = Profile.from_bytes(profile.to_bytes())   # nothing lost: the counts keep the 7 values, untracked
    view = Categories.of(decoded.columns["c"])
    assert decoded.columns["c"].valid == 7 and view.n == 7 and view.counts == {} and view.other == 7
    assert not view.exact


def test_the_encoder_refuses_what_the_decoder_rejects() -> None:
    """One rule both sides: the same limits, the same reason codes."""
    cases = [
        (Profile("m", start=1.0, end=2e10), "interval"),                     # nanoseconds would overflow 64 bits
        (Profile("m", start=5.0, end=4.0), "interval"),
        (Profile("m" * 300, start=1.0), "name_length"),
        (Profile("m", start=1.0, producer="p" * 300), "name_length"),
        (Profile("m", start=1.0, sequence=-1), "sequence_range"),
        (Profile.from_data({"x" * 300: [1.0]}, model="m"), "name_length"),
        (Profile.from_data(np.zeros((1, 5000)), model="m", max_columns=5000), "oversized"),
    ]
    huge = Profile("m", start=1.0)
    huge.rows = 2**63 - 1
    cases.append((huge, "rows_range"))
    for profile, code in cases:
        with pytest.raises(ProfileError) as raised:
            encode_profiles([profile])
        assert raised.value.reason == code, profile
    assert decode_profiles(encode_profiles([Profile("m", start=0.0, end=Limits().max_time - 1)]))[0].end == \
        Limits().max_time - 1


def test_limits() -> None:
    with pytest.raises(ProfileError, match="over the") as raised:
        decode_profiles(b"\x00" * (64 * 2**20 + 1))
    assert raised.value.reason == "oversized"
    wide = Profile.from_data(np.zeros((1, 50)), model="m")
    with pytest.raises(ProfileError, match="50 columns is over the limit of 40") as raised:
        decode_profiles(wide.to_bytes(), Limits(max_columns=40))
    assert raised.value.reason == "oversized"
    named = Profile.from_data({"x" * 30: [1.0]}, model="m").to_bytes()
    with pytest.raises(ProfileError, match="key of 30 characters is over 20"):
        decode_profiles(named, Limits(max_name_length=20))
    with pytest.raises(ProfileError, match="expected bytes"):
        decode_profiles("text")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown profile error reason"):
        ProfileError("x", reason="made_up")


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
