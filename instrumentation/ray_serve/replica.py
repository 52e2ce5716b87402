"""The replica this process hosts: which model it reports as, and whether it batches.

Usage (inside the hooks)::

    from servewatch.instrumentation.ray_serve import replica

    info = replica.attach(replica_object, deployment_def)   # from Replica.__init__, once per replica
    replica.current()                                        # the process's replica (None outside Serve)
    info.model, info.application, info.batched

A Ray Serve replica is an actor with a worker process of its own, so a process hosts at most one replica;
``current()`` is None in the driver, the controller, the proxy and Ray's agents, and the hooks do nothing
there. ``ml.model.name`` is the deployment name (Ray's ``deployment`` label; the name a spec uses).

``attach`` also adds ``ray.serve.application``, ``ray.serve.deployment`` and ``ray.serve.replica.id`` to
``OTEL_RESOURCE_ATTRIBUTES`` of the replica process (keys the user already set win) before the servewatch
runtime starts (the ``Replica.__init__`` hook starts it right after): they become resource attributes of
everything the replica sends (Prometheus shows them on ``target_info``, next to the ``instance`` label that
tells replicas apart).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

__all__ = ["ReplicaInfo", "attach", "current", "has_batch_method", "resource_attributes"]

_current: ReplicaInfo | None = None


@dataclass
class ReplicaInfo:
    """One replica: its names, and whether its deployment has a ``@serve.batch`` method."""

    model: str
    application: str
    replica_id: str
    batched: bool
    signatures: dict[Any, tuple[str, ...] | None] = field(default_factory=dict)
    """Parameter names of the user methods seen so far (cache of :func:`parameter_names`)."""

    def parameter_names(self, function: Callable[..., Any], skip_first: bool) -> tuple[str, ...] | None:
        """The positional parameter names of ``function``, without the first when ``skip_first`` (the ``self``
        a caller passes separately); None when it takes ``*args`` or has no signature. Cached per function."""
        key = (function, skip_first)
        try:
            return self.signatures[key]
        except KeyError:
            names = self.signatures[key] = _parameter_names(function, skip_first)
            return names
        except TypeError:  # an unhashable callable
            return _parameter_names(function, skip_first)


def current() -> ReplicaInfo | None:
    """The replica hosted by this process, None where no replica was created."""
    return _current


def attach(replica: Any, deployment_def: Any) -> ReplicaInfo:
    """Describe the replica ``replica`` (a ``ray.serve._private.replica.Replica``) serving ``deployment_def``
    and make it this process's :func:`current` replica."""
    global _current
    deployment_id = replica._deployment_id
    info = ReplicaInfo(model=str(deployment_id.name) or "default",
                       application=str(deployment_id.app_name or ""),
                       replica_id=str(replica._replica_id.unique_id),
                       batched=has_batch_method(deployment_def))
    _add_resource_attributes(resource_attributes(info))
    _current = info
    return info


def detach() -> None:
    """Forget the process's replica (uninstrumenting; tests)."""
    global _current
    _current = None


def has_batch_method(deployment_def: Any) -> bool:
    """True when ``deployment_def`` (a deployment's class or function) is or has a ``@serve.batch`` method."""
    if inspect.isclass(deployment_def):
        candidates = [value for klass in inspect.getmro(deployment_def) for value in vars(klass).values()]
    else:
        candidates = [deployment_def]
    return any(_is_batch_wrapper(candidate) for candidate in candidates)


def _is_batch_wrapper(value: Any) -> bool:
    # serve.batch gives its wrapper these two functions (ray/serve/batching.py, _batch_decorator)
    return callable(value) and hasattr(value, "set_max_batch_size") and hasattr(value, "_get_max_batch_size")


def resource_attributes(info: ReplicaInfo) -> dict[str, str]:
    """The resource attributes naming ``info``'s replica."""
    return {"ray.serve.application": info.application, "ray.serve.deployment": info.model,
            "ray.serve.replica.id": info.replica_id}


def _add_resource_attributes(attributes: dict[str, str]) -> None:
    present = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").strip()
    keys = {part.split("=", 1)[0].strip() for part in present.split(",") if "=" in part}
    added = [f"{key}={quote(value, safe='')}" for key, value in attributes.items()
             if value and key not in keys]
    if added:
        os.environ["OTEL_RESOURCE_ATTRIBUTES"] = ",".join(([present] if present else []) + added)


def _parameter_names(function: Callable[..., Any], skip_first: bool) -> tuple[str, ...] | None:
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return None
    if skip_first:
        parameters = parameters[1:]
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return None
    return tuple(p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
