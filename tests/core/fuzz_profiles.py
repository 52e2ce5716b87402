"""A fuzz loop over Profile.from_bytes: only ProfileError may come out, and the interpreter must survive.

Run as a script (the test runs it in a subprocess, so a segfault fails the test with the case that caused it):

    python tests/core/fuzz_profiles.py CASES SEED WORKDIR

Each case mutates a valid encoded profile: truncation, bit flips anywhere, bit flips aimed at a sketch's
header (KLL, frequent-items, HLL), random bytes, splices and duplicated chunks. Every profile that decodes
is then used (quantiles, iteration, merging) as the detector would use it. The case being decoded is
written to WORKDIR/case.bin first, so a crash leaves it behind.
"""

from __future__ import annotations

import os
import random
import sys

import numpy as np

from servewatch import Profile, ProfileError


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


def mutate(rng: random.Random, data: bytes, spans: list[tuple[int, int]]) -> bytes:
    buffer = bytearray(data)
    mode = rng.randrange(7)
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
    profile.copy().merge(profile)


def main() -> int:
    cases, seed, workdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    rng = random.Random(seed)
    corpus = seeds()
    decoded = rejected = 0
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
        except ProfileError:
            rejected += 1
        except Exception as error:  # anything but ProfileError is a bug
            print(f"unexpected {type(error).__name__}: {error}", file=sys.stderr)
            return 1
    print(f"{cases} cases: {rejected} rejected with ProfileError, {decoded} decoded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
