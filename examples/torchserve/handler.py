"""TorchServe handler of the example churn model: one JSON request = one row of three numbers.

A request body is ``[tenure, monthly_charges, support_calls]`` or ``{"features": [...]}``; the answer is
``{"stays": p0, "churns": p1}``. A row that is not three finite numbers makes ``preprocess`` raise, so
TorchServe answers 503 for the batch (servewatch counts it as an error). With batching on, the rows of a batch
are stacked into one ``(N, 3)`` tensor: that tensor is what servewatch profiles as the model's input, and the
``(N, 2)`` probabilities as its prediction.
"""

from __future__ import annotations

import json
import math
from typing import Any

import torch
from ts.torch_handler.base_handler import BaseHandler

FEATURES = 3


class ChurnHandler(BaseHandler):
    """BaseHandler's TorchScript loading and inference; JSON rows in, probabilities out."""

    def preprocess(self, data: list[dict[str, Any]]) -> torch.Tensor:
        rows = []
        for request in data:
            body = request.get("data") or request.get("body")
            if isinstance(body, (bytes, bytearray)):
                body = json.loads(body)
            if isinstance(body, dict):
                body = body.get("features")
            if (not isinstance(body, list) or len(body) != FEATURES
                    or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in body)):
                raise ValueError(f"expected a list of {FEATURES} finite numbers, got {str(body)[:80]}")
            rows.append(body)
        return torch.tensor(rows, dtype=torch.float32, device=self.device)

    def postprocess(self, data: torch.Tensor) -> list[dict[str, float]]:
        return [{"stays": row[0], "churns": row[1]} for row in data.tolist()]
