"""Deployments the Ray Serve integration tests run next to the example's (imported by ``serve run``).

- ``twin`` (two replicas): doubles ``x``; raises ``ValueError`` when the body says ``{"fail": true}``.
- ``gateway``: a FastAPI ingress that passes each transaction to ``echo`` through a deployment handle, the
  amount positionally and the country by keyword, and answers what ``echo`` returned.

No ``from __future__ import annotations`` here: FastAPI must see ``Transaction`` itself, not a string, to
read it from the body.
"""

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request


@serve.deployment(name="twin", num_replicas=2, ray_actor_options={"num_cpus": 0.1})
class Twin:
    async def __call__(self, request: Request) -> dict[str, Any]:
        body = await request.json()
        if body.get("fail"):
            raise ValueError("asked to fail")
        return {"y": 2 * float(body["x"])}


@serve.deployment(name="echo", ray_actor_options={"num_cpus": 0.1})
class Echo:
    def risk(self, amount: float, country: str) -> dict[str, Any]:
        return {"risk": amount / 1000.0, "country": country}


class Transaction(BaseModel):
    amount: float
    country: str


api = FastAPI()


@serve.deployment(name="gateway", ray_actor_options={"num_cpus": 0.1})
@serve.ingress(api)
class Gateway:
    def __init__(self, echo: DeploymentHandle) -> None:
        self.echo = echo

    @api.post("/")
    async def assess(self, transaction: Transaction) -> dict[str, Any]:
        return await self.echo.risk.remote(transaction.amount, country=transaction.country)


twin = Twin.bind()
gateway = Gateway.bind(Echo.bind())
