"""Traffic for the example's models through tritonclient: http or grpc; sync, async or asyncio (aio).

Usage::

    opentelemetry-instrument python client.py --url 127.0.0.1:8000 --protocol http --mode sync --requests 200
    python client.py --url 127.0.0.1:8001 --protocol grpc --mode async --shift 25 --errors 5

Each request carries ``--batch`` customers (``churn``; ``iris`` gets flower measurements; any other model
name gets customers under the input name ``features``); ``--shift`` moves their monthly charges, ``--errors``
adds requests with a negative tenure, which the churn model refuses. Under ``opentelemetry-instrument`` with
``servewatch[triton]`` installed, every call is reported client-side. Prints one summary line.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from churn import customers


def flowers(rng: np.random.Generator, rows: int, shift: float = 0.0) -> np.ndarray:
    centre = np.array([5.8, 3.0, 3.8 + shift, 1.2], dtype=np.float32)
    return (centre + rng.normal(0.0, 0.4, (rows, 4))).astype(np.float32)


INPUTS: dict[str, tuple[str, str, Callable[..., np.ndarray]]] = {
    "churn": ("features", "score", customers),
    "iris": ("measurements", "probabilities", flowers),
}


def batches(args: argparse.Namespace) -> list[np.ndarray]:
    rng = np.random.default_rng(args.seed)
    make = INPUTS.get(args.model, ("features", "score", customers))[2]
    good = [make(rng, args.batch, args.shift) for _ in range(args.requests)]
    bad = []
    for _ in range(args.errors):
        rows = customers(rng, args.batch)
        rows[:, 0] = -1.0
        bad.append(rows)
    return good + bad


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="127.0.0.1:8000", help="host:port of the http or grpc endpoint")
    parser.add_argument("--protocol", choices=("http", "grpc"), default="http")
    parser.add_argument("--mode", choices=("sync", "async", "aio"), default="sync")
    parser.add_argument("--model", default="churn")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--batch", type=int, default=8, help="rows per request")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (async and aio modes)")
    parser.add_argument("--shift", type=float, default=0.0, help="added to the monthly charges")
    parser.add_argument("--errors", type=int, default=0, help="extra requests the model refuses")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> list[bool]:
    """Send the requests ``args`` describe; one outcome per request (True: answered)."""
    data = batches(args)
    return asyncio.run(send_aio(args, data)) if args.mode == "aio" else send(args, data)


def main() -> None:
    args = parse_args()
    outcomes = run(args)
    print(f"sent {len(outcomes)} requests to {args.model} over {args.protocol} ({args.mode}): "
          f"{outcomes.count(True)} ok, {outcomes.count(False)} failed", flush=True)


def _module(protocol: str, aio: bool = False) -> Any:
    if protocol == "http":
        import tritonclient.http as http
        import tritonclient.http.aio as http_aio

        return http_aio if aio else http
    import tritonclient.grpc as grpc
    import tritonclient.grpc.aio as grpc_aio

    return grpc_aio if aio else grpc


def _request(module: Any, args: argparse.Namespace, rows: np.ndarray) -> tuple[list[Any], list[Any]]:
    name, output, _ = INPUTS.get(args.model, ("features", "score", None))
    value = module.InferInput(name, list(rows.shape), "FP32")
    value.set_data_from_numpy(rows)
    return [value], [module.InferRequestedOutput(output)]


def send(args: argparse.Namespace, data: list[np.ndarray]) -> list[bool]:
    from tritonclient.utils import InferenceServerException

    module = _module(args.protocol)
    options = {"concurrency": args.concurrency} if args.protocol == "http" else {}
    client = module.InferenceServerClient(args.url, **options)
    outcomes: list[bool] = []
    if args.mode == "sync":
        for rows in data:
            inputs, outputs = _request(module, args, rows)
            try:
                client.infer(args.model, inputs, outputs=outputs)
                outcomes.append(True)
            except InferenceServerException:
                outcomes.append(False)
    elif args.protocol == "http":
        for start in range(0, len(data), args.concurrency):
            handles = []
            for rows in data[start:start + args.concurrency]:
                inputs, outputs = _request(module, args, rows)
                handles.append(client.async_infer(args.model, inputs, outputs=outputs))
            for handle in handles:
                try:
                    handle.get_result()
                    outcomes.append(True)
                except InferenceServerException:
                    outcomes.append(False)
    else:
        done = threading.Semaphore(0)

        def callback(result: Any, error: Any) -> None:
            outcomes.append(error is None)
            done.release()

        for start in range(0, len(data), args.concurrency):
            chunk = data[start:start + args.concurrency]
            for rows in chunk:
                inputs, outputs = _request(module, args, rows)
                client.async_infer(args.model, inputs, callback, outputs=outputs)
            for _ in chunk:
                done.acquire(timeout=60)
    client.close()
    return outcomes


async def send_aio(args: argparse.Namespace, data: list[np.ndarray]) -> list[bool]:
    from tritonclient.utils import InferenceServerException

    module = _module(args.protocol, aio=True)
    client = module.InferenceServerClient(args.url)

    async def one(rows: np.ndarray) -> bool:
        inputs, outputs = _request(module, args, rows)
        try:
            await client.infer(args.model, inputs, outputs=outputs)
            return True
        except InferenceServerException:
            return False

    outcomes: list[bool] = []
    for start in range(0, len(data), args.concurrency):
        outcomes += await asyncio.gather(*(one(rows) for rows in data[start:start + args.concurrency]))
    await client.close()
    return outcomes


if __name__ == "__main__":
    main()
