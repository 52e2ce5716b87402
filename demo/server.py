"""The demo's model server: a FastAPI app serving the weather model, instrumented with ``monitor``.

Run by ``servewatch demo`` under uvicorn in its own process, as any Python model server would be::

    SERVEWATCH_DEMO_MODEL=demo-out/model.json SERVEWATCH_SPEC=demo-out/servewatch.yaml \\
    SERVEWATCH_PROFILE_INTERVAL=1 OTEL_METRIC_EXPORT_INTERVAL=1000 OTEL_SERVICE_NAME=weather-server \\
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \\
        python -m uvicorn servewatch.demo.server:app --port 8000
    curl -s localhost:8000/predict -H 'content-type: application/json' \\
        -d '[{"precipitation": 10.9, "temp_max": 10.6, "temp_min": 2.8, "wind": 4.5}]'
    # [{"weather":"fog","probability":0.62}]

``POST /predict`` takes a batch of days (JSON rows; a missing measurement is ``null``) and answers the most
likely weather type of each with its probability. The one decorated function is everything servewatch
needs: each call's rows become the ``input`` profile, its answers the ``prediction`` profile, and the call
counts in the request, latency and batch-size metrics; all of it leaves over OTLP/HTTP every
``SERVEWATCH_PROFILE_INTERVAL`` seconds. ``GET /healthz`` answers once the model is loaded.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException

from ..instrumentation import flush, monitor
from .weather import FEATURES, MODEL_VARIABLE, WeatherModel

__all__ = ["app", "predict"]

_model: WeatherModel | None = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    global _model
    path = os.environ.get(MODEL_VARIABLE)
    if not path:
        raise RuntimeError(f"set {MODEL_VARIABLE} to the model file written by `servewatch demo`")
    with open(path, encoding="utf-8") as handle:
        _model = WeatherModel.from_dict(json.load(handle))
    yield
    # uvicorn ends by re-raising SIGTERM, which skips atexit: send the last interval while we still can.
    await asyncio.to_thread(flush)


app = FastAPI(title="servewatch demo: weather model", lifespan=lifespan)


@monitor("weather", inputs="rows")
def predict(rows: list[dict[str, float | None]]) -> list[dict[str, Any]]:
    """The model call servewatch watches: days in, weather types and probabilities out."""
    assert _model is not None
    features = np.array([[np.nan if row.get(name) is None else row[name] for name in FEATURES] for row in rows],
                        dtype=np.float64).reshape(-1, len(FEATURES))
    return _model.predict(features)


@app.post("/predict")
def predict_endpoint(rows: list[dict[str, float | None]]) -> list[dict[str, Any]]:
    if not rows:
        raise HTTPException(status_code=422, detail="send at least one row")
    return predict(rows)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok" if _model is not None else "loading"}
