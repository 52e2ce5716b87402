"""The OpenTelemetry resource of one serving process: who is sending.

Usage::

    from servewatch.exporters.resource import process_resource

    resource = process_resource(framework="torchserve")        # a fresh service.instance.id every call
    resource.attributes["service.instance.id"]                  # "4f0c…" (UUID 4)

Attributes, later ones winning: the SDK defaults (``telemetry.sdk.*``), ``OTEL_RESOURCE_ATTRIBUTES``,
``OTEL_SERVICE_NAME``; then ours: ``service.instance.id`` (always a new UUID: one per process, so a forked or
spawned worker never reports under its parent's identity), ``process.pid``, ``ml.framework``. Where neither
variable names the service, ``service.name`` is the framework (``torchserve``, ``triton``, ``ray_serve``,
``python`` for the generic API) rather than the SDK's ``unknown_service``. Prometheus sees ``service.name``
as the ``job`` label and ``service.instance.id`` as ``instance``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from typing import Any

from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, OTELResourceDetector, Resource

__all__ = ["process_resource", "scalar_attributes"]


def process_resource(*, framework: str, instance_id: str | None = None) -> Resource:
    """The resource of this process (see the module docstring); ``instance_id`` defaults to a new UUID."""
    try:
        resource = Resource.create({})
    except RuntimeError:  # interpreter shutdown: the SDK's detector thread pool cannot start; the variables only
        resource = OTELResourceDetector().detect()
    ours: dict[str, Any] = {
        SERVICE_INSTANCE_ID: instance_id or str(uuid.uuid4()),
        "process.pid": os.getpid(),
        "ml.framework": framework,
    }
    if str(resource.attributes.get(SERVICE_NAME, "unknown_service")).startswith("unknown_service"):
        ours[SERVICE_NAME] = framework
    return resource.merge(Resource(ours))


def scalar_attributes(resource: Resource) -> Mapping[str, Any]:
    """The attributes of ``resource`` that are single values (what the profile wire form encodes)."""
    return {key: value for key, value in resource.attributes.items() if isinstance(value, (str, bool, int, float))}
