"""Which deployments batch, and the replica's names on the resource of everything it sends."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from servewatch.instrumentation.ray_serve import replica

pytest.importorskip("ray.serve", reason="the ray extra is not installed")

from ray import serve  # noqa: E402
from ray.serve._private.common import DeploymentID, ReplicaID  # noqa: E402


class Plain:
    async def __call__(self, request: Any) -> Any:
        return request


class Batched:
    @serve.batch(max_batch_size=8)
    async def predict(self, rows: list[Any]) -> list[Any]:
        return rows


class Inherited(Batched):
    pass


@serve.batch
async def batched_function(rows: list[Any]) -> list[Any]:
    return rows


def plain_function(x: Any) -> Any:
    return x


def test_serve_batch_methods_are_recognised() -> None:
    assert replica.has_batch_method(Batched) and replica.has_batch_method(Inherited)
    assert replica.has_batch_method(batched_function)
    assert not replica.has_batch_method(Plain) and not replica.has_batch_method(plain_function)


@pytest.fixture
def attached(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "")  # restored (unset) afterwards; attach() writes it
    yield
    replica.detach()


def fake_replica(deployment: str, app: str, unique_id: str) -> Any:
    deployment_id = DeploymentID(name=deployment, app_name=app)
    return SimpleNamespace(_deployment_id=deployment_id,
                           _replica_id=ReplicaID(unique_id=unique_id, deployment_id=deployment_id))


def test_a_replica_reports_as_its_deployment_with_its_names_on_the_resource(attached: None) -> None:
    target = fake_replica("fraud", "payments, EU", "abc123")
    info = replica.attach(target, Batched)
    assert replica.current() is info
    assert (info.model, info.application, info.replica_id, info.batched) == ("fraud", "payments, EU", "abc123", True)
    attributes = Resource.create({}).attributes  # what the runtime's resource will read
    assert attributes["ray.serve.application"] == "payments, EU"  # percent-encoded on the way, decoded by the SDK
    assert attributes["ray.serve.deployment"] == "fraud" and attributes["ray.serve.replica.id"] == "abc123"


def test_resource_attributes_the_user_set_win(attached: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod,ray.serve.deployment=scorer-v2")
    replica.attach(fake_replica("scorer", "default", "r9"), Plain)
    attributes = Resource.create({}).attributes
    assert attributes["deployment.environment"] == "prod" and attributes["ray.serve.deployment"] == "scorer-v2"
    assert attributes["ray.serve.application"] == "default" and attributes["ray.serve.replica.id"] == "r9"
