"""The example's model: a fixed logistic churn score over four customer features (numpy only).

Usage::

    from churn import FEATURES, score, customers
    x = customers(np.random.default_rng(0), 8)          # (8, 4) float32: tenure, charges, calls, age
    score(x)                                            # (8, 1) float32 in (0, 1)

``score`` refuses a negative tenure (ValueError): the example's way of producing failed requests.
``customers(rng, n, shift)`` draws customers; ``shift`` moves the monthly charges (drift to detect).
"""

from __future__ import annotations

import numpy as np

__all__ = ["FEATURES", "customers", "score"]

FEATURES = ("tenure_months", "monthly_charges", "support_calls", "age")
_WEIGHTS = np.array([-0.06, 0.035, 0.45, -0.01], dtype=np.float32)
_BIAS = np.float32(-1.2)


def score(features: np.ndarray) -> np.ndarray:
    """Churn probability per row of ``features`` (N, 4), as (N, 1) float32."""
    if features.ndim != 2 or features.shape[1] != len(FEATURES):
        raise ValueError(f"expected (N, {len(FEATURES)}) features, got {features.shape}")
    if (features[:, 0] < 0).any():
        raise ValueError("tenure_months must not be negative")
    logits = features.astype(np.float32) @ _WEIGHTS + _BIAS
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32).reshape(-1, 1)


def customers(rng: np.random.Generator, rows: int, shift: float = 0.0) -> np.ndarray:
    """``rows`` customers as (rows, 4) float32; ``shift`` is added to the monthly charges."""
    return np.stack([
        np.clip(rng.normal(30.0, 12.0, rows), 0.0, None),
        rng.normal(70.0 + shift, 20.0, rows),
        rng.poisson(1.5, rows).astype(np.float64),
        rng.normal(45.0, 12.0, rows),
    ], axis=1).astype(np.float32)
