"""Named tensors of the requests of one Triton execution, as one batch per tensor name.

Usage::

    from servewatch.instrumentation.triton.tensors import merge_requests

    merge_requests([{"x": a}, {"x": b}], batched=True)     # {"x": concatenate([a, b])}: rows of both requests
    merge_requests([{"x": a}, {"x": b}], batched=False)    # {"x": stack([a, b])}: one row per request

Triton hands a model the requests it batched together, each a mapping of input name -> array. For a model
with ``max_batch_size > 0`` every request's arrays carry their own batch dimension first, so the batch the
model sees is their concatenation; for a model without batching each request is one sample, and the batch is
their stack. A single request is returned as it is (no copy: the recorder copies what it keeps). A name
missing from some requests, or arrays that do not line up, are left out of the batch rather than guessed.

numpy is imported on the first call, not with this module: the PyTriton entry point loads the hooks in every
process ``opentelemetry-instrument`` starts, and numpy alone costs about 0.1 s of CPU there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["merge_requests", "rows"]


def merge_requests(requests: Sequence[Mapping[str, Any]], *, batched: bool) -> dict[str, Any]:
    """One array per tensor name over ``requests`` (see the module docstring)."""
    if not requests:
        return {}
    import numpy as np

    if len(requests) == 1:
        single = requests[0]
        if batched:
            return dict(single)
        return {name: np.expand_dims(np.asarray(value), 0) for name, value in single.items()}
    merged: dict[str, Any] = {}
    for name in requests[0]:
        try:
            parts = [np.asarray(request[name]) for request in requests]
        except KeyError:
            continue
        if batched:
            if all(part.ndim >= 1 and part.shape[1:] == parts[0].shape[1:] for part in parts):
                merged[name] = np.concatenate(parts)
        elif all(part.shape == parts[0].shape for part in parts):
            merged[name] = np.stack(parts)
    return merged


def rows(tensors: Mapping[str, Any]) -> int | None:
    """Rows of a merged batch: the first dimension of its first array (None when there is none)."""
    for value in tensors.values():
        shape = getattr(value, "shape", None)
        if shape:
            return int(shape[0])
    return None
