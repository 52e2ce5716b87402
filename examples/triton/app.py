"""A PyTriton app serving two models: ``churn`` (a logistic score) and ``iris`` (class probabilities).

Usage::

    opentelemetry-instrument python app.py [--http-port 8000 --grpc-port 8001 --metrics-port 8002]

Nothing in it mentions servewatch: run under ``opentelemetry-instrument`` with ``servewatch[triton]``
installed, every bound model reports latency, requests, batch sizes, inputs and outputs by tensor name, and
Triton's queue and compute time (see README.md). Prints ``serving`` once both models are ready.
"""

from __future__ import annotations

import argparse
import logging

import numpy as np
from churn import FEATURES, score
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

_IRIS = np.array([[0.4, 1.0, -2.2, -1.0], [0.4, -1.5, 0.5, -1.2], [-0.8, -1.2, 2.3, 2.2]], dtype=np.float32)


@batch
def churn(features: np.ndarray) -> dict[str, np.ndarray]:
    return {"score": score(features)}


@batch
def iris(measurements: np.ndarray) -> dict[str, np.ndarray]:
    logits = measurements @ _IRIS.T
    odds = np.exp(logits - logits.max(axis=1, keepdims=True))
    return {"probabilities": (odds / odds.sum(axis=1, keepdims=True)).astype(np.float32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--host", default="127.0.0.1", help="address the three endpoints bind (default %(default)s)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("pytriton").setLevel(logging.WARNING)
    config = TritonConfig(http_port=args.http_port, grpc_port=args.grpc_port, metrics_port=args.metrics_port,
                          http_address=args.host, grpc_address=args.host, metrics_address=args.host)
    batching = DynamicBatcher(max_queue_delay_microseconds=2000)
    with Triton(config=config) as triton:
        triton.bind("churn", churn, inputs=[Tensor(name="features", dtype=np.float32, shape=(len(FEATURES),))],
                    outputs=[Tensor(name="score", dtype=np.float32, shape=(1,))],
                    config=ModelConfig(max_batch_size=64, batcher=batching))
        triton.bind("iris", iris, inputs=[Tensor(name="measurements", dtype=np.float32, shape=(4,))],
                    outputs=[Tensor(name="probabilities", dtype=np.float32, shape=(3,))],
                    config=ModelConfig(max_batch_size=64, batcher=batching))
        print("serving", flush=True)
        triton.serve()


if __name__ == "__main__":
    main()
