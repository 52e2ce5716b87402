"""Send the example's fraud scorers transactions drawn from one distribution, optionally with bigger amounts.

Usage::

    python traffic.py --seconds 60                                   # reference traffic to /fraud
    python traffic.py --seconds 60 --amount-scale 3                  # amounts three times larger: drift
    python traffic.py --url http://127.0.0.1:8000/fraud-batched --clients 16

A transaction is ``{"amount": log-normal around 100, "age": normal around 40, "country": US/DE/FR/GB}``;
``--amount-scale`` multiplies the amounts. Each request carries ``--per-request`` transactions (one object,
or a list of them) and goes to ``--url`` from ``--clients`` threads; it prints how many were answered with
each status.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

COUNTRIES = ("US", "DE", "FR", "GB")
COUNTRY_WEIGHTS = (0.5, 0.2, 0.2, 0.1)


def transaction(rng: random.Random, amount_scale: float = 1.0) -> dict[str, Any]:
    """One transaction of the reference distribution, its amount multiplied by ``amount_scale``."""
    return {"amount": round(rng.lognormvariate(4.6, 0.6) * amount_scale, 2),
            "age": min(max(round(rng.gauss(40.0, 12.0)), 18), 90),
            "country": rng.choices(COUNTRIES, COUNTRY_WEIGHTS)[0]}


def post(url: str, body: Any) -> int:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/fraud")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--per-request", type=int, default=1, help="transactions per request (a list when > 1)")
    parser.add_argument("--amount-scale", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            rows = [transaction(rng, args.amount_scale) for _ in range(args.per_request)]
            status = post(args.url, rows if args.per_request > 1 else rows[0])
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=client, args=(args.seed * 1000 + i,)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(" ".join(f"{status}: {count}" for status, count in sorted(statuses.items())))


if __name__ == "__main__":
    main()
