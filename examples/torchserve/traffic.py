"""Send the example's churn model rows drawn from its training distribution, optionally with one feature shifted.

Usage::

    python traffic.py --seconds 60                                    # reference traffic
    python traffic.py --seconds 60 --shift support_calls=2            # support_calls moved by 2 standard deviations
    python traffic.py --seconds 10 --malformed 5                      # and 5 requests the handler rejects (503)

Each feature is standard normal (the model was trained on standardised inputs); ``--shift NAME=DELTA`` adds
DELTA to one of them. Requests go to ``--url`` (default http://127.0.0.1:8080/predictions/churn) from
``--clients`` threads; it prints how many were answered with each status.
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

FEATURES = ("tenure", "monthly_charges", "support_calls")


def post(url: str, row: list[float]) -> int:
    request = urllib.request.Request(url, json.dumps(row).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080/predictions/churn")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--shift", action="append", default=[], metavar="NAME=DELTA")
    parser.add_argument("--malformed", type=int, default=0, help="requests with two features instead of three")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    shift = [0.0] * len(FEATURES)
    for item in args.shift:
        name, _, delta = item.partition("=")
        if name not in FEATURES:
            parser.error(f"--shift: unknown feature {name!r}; one of {', '.join(FEATURES)}")
        shift[FEATURES.index(name)] = float(delta)
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            status = post(args.url, [rng.gauss(0.0, 1.0) + delta for delta in shift])
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=client, args=(args.seed * 1000 + i,)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _ in range(args.malformed):
        statuses[post(args.url, [0.0, 0.0])] += 1
    print(" ".join(f"{status}: {count}" for status, count in sorted(statuses.items())))


if __name__ == "__main__":
    main()
