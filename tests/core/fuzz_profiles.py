"""A fuzz loop over Profile.from_bytes: only ProfileError may come out, and the interpreter must survive.

Run as a script (the test runs it in a subprocess, so a segfault fails the test with the case that caused it):

    python tests/core/fuzz_profiles.py CASES SEED WORKDIR

Each case mutates a valid encoded profile: truncation, bit flips anywhere, bit flips aimed at a sketch's
header (KLL, frequent-items, HLL), random bytes, splices and duplicated chunks, or, as well-formed protobuf, a
field the decoder range-checks set to a value at or past its limit (rows, counts, sequence, interval ends,
names and keys, hollow frequent-items sketches). Every profile that decodes is then used (quantiles,
iteration, merging) as the detector would use it, checked against the limits, and encoded again: the
encoder must accept whatever the decoder accepts. The case being decoded is written to WORKDIR/case.bin
first, so a crash leaves it behind.
"""

from __future__ import annotations

import os
import random
import sys
from collections import Counter

import datasketches as ds
import numpy as np
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from servewatch import Profile, ProfileError
from servewatch.errors import PROFILE_REASONS
from servewatch.wire import Limits

LIMITS = Limits()
INTEGERS = (-2**63, -1, 0, 1, 2**31, LIMITS.max_count - 1, LIMITS.max_count, LIMITS.max_count + 1, 2**62, 2**63 - 1)
SECONDS = (-1.0, 0.0, 1.7e9, LIMITS.max_time - 1, LIMITS.max_time, 1.8446744e10, 1e11, 1e300, float("inf"),
           float("nan"))


def seeds() -> list[tuple[bytes, list[tuple[int, int]]]]:
    """Encoded profiles with the (offset, length) of each sketch inside them."""
    rng = np.random.default_rng(0)
    profiles = [
        Profile("m").update({"x": rng.normal(size=20000), "c": rng.choice(list("abcdefgh"), 20000)}),
        Profile("m").update({"x": [1.5], "c": ["only"]}),
        Profile("m").update({"x": rng.integers(0, 3, 300).astype(float)}),
        Profile("m", "prediction").update({"c": [str(i) for i in range(3000)]}),
    ]
    result = []
    for profile in profiles:
        data = profile.to_bytes()
        spans = []
        for column in profile.columns.values():
            parts = [column.sketch.serialize()] if column.sketch is not None else \
                [column.frequent.serialize(), column.distinct.serialize_compact()]
            for part in parts:
                spans.append((data.index(part), len(part)))
        result.append((data, spans))
    return result


def mutate_field(rng: random.Random, data: bytes) -> bytes:
    """A well-formed request with one range-checked field set to a value near or past its limit."""
    request = ExportLogsServiceRequest.FromString(data)
    record = request.resource_logs[0].scope_logs[0].log_records[0]
    attributes = {kv.key: kv.value for kv in record.attributes}
    body = {kv.key: kv.value for kv in record.body.kvlist_value.values}
    columns = [kv.value.kvlist_value for kv in body["columns"].kvlist_value.values]
    choice = rng.randrange(6)
    if choice == 0:
        body["rows"].int_value = rng.choice(INTEGERS)
    elif choice == 1 and columns:
        column = rng.choice(columns)
        key = rng.choice(("count", "missing", "non_finite", "invalid", "below_min", "above_max", "not_allowed"))
        found = next((kv.value for kv in column.values if kv.key == key), None)
        (found if found is not None else column.values.add(key=key).value).int_value = rng.choice(INTEGERS)
    elif choice == 2:
        attributes["servewatch.sequence"].int_value = rng.choice(INTEGERS)
    elif choice == 3:
        key = rng.choice(("servewatch.interval.start", "servewatch.interval.end"))
        attributes[key].double_value = rng.choice(SECONDS)
    elif choice == 4:
        length = rng.choice((0, 1, LIMITS.max_name_length, LIMITS.max_name_length + 1, 4096))
        target = rng.randrange(3)
        if target == 0:
            attributes["servewatch.model"].string_value = "m" * length
        elif target == 1:
            producer = attributes.get("servewatch.producer") or record.attributes.add(key="servewatch.producer").value
            producer.string_value = "p" * length
        else:
            record.body.kvlist_value.values.add(key="k" * length).value.int_value = 1
    else:
        categorical = [column for column in columns if any(kv.key == "frequent" for kv in column.values)]
        if categorical:
            frequent = next(kv.value for kv in rng.choice(categorical).values if kv.key == "frequent")
            sketch = ds.frequent_strings_sketch(10)
            sketch.update("a", rng.choice((1, 2000, 20000)))
            raw = sketch.serialize()
            frequent.bytes_value = raw[:8] + (0).to_bytes(4, "little") + raw[12:32]   # hollow: a weight, no items
    return request.SerializeToString()


def mutate(rng: random.Random, data: bytes, spans: list[tuple[int, int]]) -> bytes:
    buffer = bytearray(data)
    mode = rng.randrange(9)
    if mode >= 7:
        return mutate_field(rng, data)
    if mode == 0:
        return bytes(buffer[: rng.randrange(len(buffer))])
    if mode in (1, 2):  # flips aimed at a sketch header (the dangerous case), then anywhere in the sketch
        offset, length = rng.choice(spans)
        reach = min(length, 64 if mode == 1 else length)
        for _ in range(rng.randint(1, 3)):
            buffer[offset + rng.randrange(reach)] ^= 1 << rng.randrange(8)
        return bytes(buffer)
    if mode == 3:
        for _ in range(rng.randint(1, 8)):
            buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)
        return bytes(buffer)
    if mode == 4:
        return rng.randbytes(rng.randrange(1, 2048))
    if mode == 5:
        start = rng.randrange(len(buffer))
        return bytes(buffer[:start] + rng.randbytes(rng.randrange(1, 32)) + buffer[start:])
    start = rng.randrange(len(buffer))
    end = min(len(buffer), start + rng.randrange(1, 256))
    return bytes(buffer[:end] + buffer[start:end] + buffer[end:])


def exercise(profile: Profile) -> None:
    """Use every decoded sketch the way the detector will (a corrupt one would crash here)."""
    for column in profile.columns.values():
        if column.sketch is not None and not column.sketch.is_empty():
            column.sketch.get_quantiles([0.1, 0.5, 0.9])
            list(column.sketch)
        elif column.frequent is not None:
            column.categories()
            column.distinct.get_estimate()
    assert 0 <= profile.rows <= LIMITS.max_count, profile.rows
    assert 0 <= profile.sequence <= LIMITS.max_sequence and 0 <= profile.start <= profile.end < LIMITS.max_time
    for column in profile.columns.values():
        assert 0 <= column.valid <= column.count <= LIMITS.max_count, column
    Profile.from_bytes(profile.to_bytes())   # the encoder accepts what the decoder accepted
    profile.copy().merge(profile)


def main() -> int:
    cases, seed, workdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    rng = random.Random(seed)
    corpus = seeds()
    decoded = 0
    reasons: Counter[str] = Counter()
    path = os.path.join(workdir, "case.bin")
    for _ in range(cases):
        data, spans = rng.choice(corpus)
        case = mutate(rng, data, spans)
        with open(path, "wb") as handle:
            handle.write(case)
        try:
            profile = Profile.from_bytes(case)
            exercise(profile)
            decoded += 1
        except ProfileError as error:
            if error.reason not in PROFILE_REASONS:
                print(f"unknown reason {error.reason!r}: {error}", file=sys.stderr)
                return 1
            reasons[error.reason] += 1
        except Exception as error:  # anything but ProfileError is a bug
            print(f"unexpected {type(error).__name__}: {error}", file=sys.stderr)
            return 1
    print(f"{cases} cases: {sum(reasons.values())} rejected with ProfileError, {decoded} decoded")
    print("rejected by reason: " + ", ".join(f"{reason}={count}" for reason, count in sorted(reasons.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
