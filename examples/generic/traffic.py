"""Traffic for examples/generic/app.py, with a switch that shifts a feature, and the training data it resembles.

Usage::

    python examples/generic/traffic.py --write-csv /tmp/sw-generic/train.csv    # 5000 training rows, then exit
    python examples/generic/traffic.py --seconds 20                             # like the training data
    python examples/generic/traffic.py --seconds 40 --shift amount=3            # amount 3 sd higher
    python examples/generic/traffic.py --shift country=FR --shift age=-1.5      # every row FR, age 1.5 sd lower

Rows: ``amount`` ~ N(120, 30), ``age`` ~ N(40, 10) within 18..90, ``country`` US 50%, DE 30%, FR 20%. A numeric
shift moves the feature by that many standard deviations; a categorical one gives every row that value. Each
tick (``--rate`` per second) sends ``--batch`` rows to ``/fraud`` and three to ``/churn``. It waits up to 30 s
for the server to answer, then prints one line of what it sent.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

COUNTRIES = (("US", 0.5), ("DE", 0.3), ("FR", 0.2))
NUMERIC = {"amount": (120.0, 30.0), "age": (40.0, 10.0)}


def rows(rng: random.Random, count: int, shifts: dict[str, str]) -> list[dict[str, Any]]:
    """``count`` fraud rows, with ``shifts`` applied (feature -> sd for numbers, or the one category)."""
    out = []
    for _ in range(count):
        row: dict[str, Any] = {}
        for name, (mean, sd) in NUMERIC.items():
            value = rng.gauss(mean + float(shifts.get(name, 0.0)) * sd, sd)
            row[name] = round(min(max(value, 18.0), 90.0) if name == "age" else max(value, 0.0), 2)
        row["country"] = shifts.get("country") or rng.choices([c for c, _ in COUNTRIES],
                                                              [p for _, p in COUNTRIES])[0]
        out.append(row)
    return out


def write_csv(path: Path, count: int, seed: int) -> None:
    """Training data: ``count`` rows and the model's score for each (so the reference has predictions too)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from app import fraud_model  # the same model the server runs

    data = rows(random.Random(seed), count, {})
    scores = fraud_model.predict(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["amount", "age", "country", "score"])
        writer.writeheader()
        for row, score in zip(data, scores):
            writer.writerow({**row, "score": round(float(score), 6)})
    print(f"wrote {count} rows to {path}")


def post(url: str, payload: object) -> None:
    request = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            post(url + "/fraud", rows(random.Random(0), 1, {}))
            return
        except (urllib.error.URLError, ConnectionError) as error:
            if time.monotonic() > deadline:
                raise SystemExit(f"traffic.py: {url} does not answer: {error}") from None
            time.sleep(0.5)


def parse_shift(items: list[str]) -> dict[str, str]:
    shifts = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in (*NUMERIC, "country") or not value:
            raise SystemExit(f"traffic.py: --shift {item!r}: expected amount=SD, age=SD or country=VALUE")
        if name in NUMERIC:
            try:
                float(value)
            except ValueError:
                raise SystemExit(f"traffic.py: --shift {item!r}: {value!r} is not a number") from None
        shifts[name] = value
    return shifts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the example server (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to send (default %(default)s)")
    parser.add_argument("--rate", type=float, default=20.0, help="ticks per second (default %(default)s)")
    parser.add_argument("--batch", type=int, default=10, help="fraud rows per tick (default %(default)s)")
    parser.add_argument("--shift", action="append", default=[], metavar="FEATURE=AMOUNT",
                        help="amount=SD or age=SD (standard deviations), or country=VALUE; repeatable")
    parser.add_argument("--write-csv", type=Path, metavar="PATH", help="write training rows to PATH and exit")
    parser.add_argument("--rows", type=int, default=5000, help="rows of --write-csv (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    shifts = parse_shift(args.shift)
    if args.write_csv is not None:
        write_csv(args.write_csv, args.rows, args.seed)
        return
    url = args.url.rstrip("/")
    wait_for(url, 30.0)
    rng = random.Random(args.seed)
    sent = 0
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < args.seconds:
        post(url + "/fraud", rows(rng, args.batch, shifts))
        post(url + "/churn", [[rng.gauss(0.0, 1.0) for _ in range(3)] for _ in range(3)])
        sent += 1
        time.sleep(max(0.0, sent / args.rate - (time.monotonic() - started)))
    described = ", ".join(f"{name} {value if name == 'country' else f'{float(value):+g} sd'}"
                          for name, value in shifts.items()) or "none"
    print(f"sent {sent} ticks ({sent * args.batch} fraud rows) in {elapsed:.0f}s; shift: {described}")


if __name__ == "__main__":
    main()
