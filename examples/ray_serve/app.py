"""A fraud scorer served by Ray Serve twice: a plain deployment and one that batches with ``@serve.batch``.

Usage::

    serve run config.yaml                                   # both applications, HTTP on 127.0.0.1:8000
    opentelemetry-instrument serve run config.yaml          # ... reporting to servewatch (see README.md)
    curl -d '{"amount": 120.5, "age": 41, "country": "DE"}' 127.0.0.1:8000/fraud
    curl -d '[{"amount": 80, "age": 30, "country": "US"}, {"amount": 300, "age": 22, "country": "FR"}]' \\
        127.0.0.1:8000/fraud

A request body is one transaction (a JSON object) or several (a list); the answer is ``{"score": p}`` per
transaction, ``p`` the probability of fraud from a small logistic model. ``fraud`` scores each request as it
comes; ``fraud_batched`` gathers concurrent transactions into batches of up to 16 (waiting at most 10 ms) and
scores them together, as a GPU model would.
"""

from __future__ import annotations

import math
from typing import Any

from ray import serve
from starlette.requests import Request

COUNTRY_RISK = {"US": 0.0, "DE": -0.3, "FR": 0.2, "GB": 0.1}


def fraud_probability(transaction: dict[str, Any]) -> float:
    """The model: logistic in the amount (log scale), the customer's age and the country's risk."""
    amount = max(float(transaction["amount"]), 0.0)
    logit = 1.6 * (math.log1p(amount) - 4.6) - 0.04 * (float(transaction["age"]) - 40.0)
    logit += COUNTRY_RISK.get(str(transaction.get("country")), 0.5) - 1.0
    return 1.0 / (1.0 + math.exp(-logit))


@serve.deployment(name="fraud", ray_actor_options={"num_cpus": 0.1})
class FraudScorer:
    async def __call__(self, request: Request) -> Any:
        body = await request.json()
        transactions = body if isinstance(body, list) else [body]
        scores = [{"score": fraud_probability(transaction)} for transaction in transactions]
        return scores if isinstance(body, list) else scores[0]


@serve.deployment(name="fraud_batched", ray_actor_options={"num_cpus": 0.1}, max_ongoing_requests=64)
class BatchedFraudScorer:
    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def score(self, transactions: list[dict[str, Any]]) -> list[dict[str, float]]:
        return [{"score": fraud_probability(transaction)} for transaction in transactions]

    async def __call__(self, request: Request) -> Any:
        return await self.score(await request.json())


scorer = FraudScorer.bind()
batched = BatchedFraudScorer.bind()
