"""A FastAPI model server instrumented with servewatch's generic API (any Python server works the same way).

Run it against a detector on this machine (README.md has the whole quick start: a reference from training
rows, the detector, this server, traffic with a shift)::

    servewatch detect --spec examples/generic/servewatch.yaml --state /tmp/sw-state &    # OTLP on :4318
    SERVEWATCH_SPEC=examples/generic/servewatch.yaml \\
        uvicorn --app-dir examples/generic app:app --port 8000
    python examples/generic/traffic.py --seconds 20 --shift amount=3
    curl -s localhost:9108/metrics | grep servewatch_

Three ways to say what a model receives and answers:

- ``/fraud``: a decorated sync function (FastAPI runs it in its thread pool);
- ``/fraud/async``: a decorated coroutine (on the event loop);
- ``/churn``: a ``with monitor(...)`` block around code that is not a function of its own.

Nothing else is needed: no provider set-up, no exporter, no background task. Profiles leave every
``SERVEWATCH_PROFILE_INTERVAL`` seconds (default 60) and at exit; the one line of ``lifespan`` is there because
uvicorn ends by re-raising SIGTERM, which kills the process before ``atexit`` would have run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException
from servewatch.instrumentation import flush, monitor


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    # uvicorn ends by re-raising SIGTERM, which skips atexit: send the last interval while we still can.
    await asyncio.to_thread(flush)


app = FastAPI(title="servewatch generic example", lifespan=lifespan)


class FraudModel:
    """A stand-in for a real model: a logistic score of the amount and the age."""

    def predict(self, rows: list[dict[str, Any]]) -> np.ndarray:
        amount = np.array([float(row["amount"]) for row in rows])
        age = np.array([float(row["age"]) for row in rows])
        return 1.0 / (1.0 + np.exp(-((amount - 100.0) / 50.0 - (age - 40.0) / 20.0)))


class ChurnModel:
    """Class probabilities (stay, leave) from three numeric features."""

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        leave = 1.0 / (1.0 + np.exp(-(features @ np.array([0.8, -0.5, 0.1]))))
        return np.stack([1.0 - leave, leave], axis=1)


fraud_model = FraudModel()
churn_model = ChurnModel()


@monitor("fraud", inputs="rows")
def score(rows: list[dict[str, Any]]) -> np.ndarray:
    return fraud_model.predict(rows)


@monitor("fraud", inputs="rows")
async def score_async(rows: list[dict[str, Any]]) -> np.ndarray:
    await asyncio.sleep(0)                     # e.g. a call to a remote feature store
    return fraud_model.predict(rows)


@app.post("/fraud")
def fraud(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    try:
        return {"scores": score(rows).tolist()}
    except (KeyError, TypeError, ValueError) as error:     # a row without amount or age: the model fails
        raise HTTPException(status_code=422, detail=f"bad row: {error}") from None


@app.post("/fraud/async")
async def fraud_async(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    return {"scores": (await score_async(rows)).tolist()}


@app.post("/churn")
def churn(features: list[list[float]]) -> dict[str, list[int]]:
    with monitor("churn") as call:
        call.inputs = batch = np.asarray(features, dtype=np.float64)
        call.outputs = probabilities = churn_model.predict_proba(batch)
    return {"leave": probabilities.argmax(axis=1).tolist()}
