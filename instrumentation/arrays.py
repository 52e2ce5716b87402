"""Values as numpy arrays: numpy itself, torch tensors (recognised by their type, never by importing torch) and
anything array-like.

Usage::

    from servewatch.instrumentation.arrays import as_array, is_tensor_type, stack

    as_array(torch.ones(4, 3))          # a (4, 3) float32 ndarray sharing the tensor's memory (CPU, no grad)
    is_tensor_type(type(value))         # True for torch.Tensor and its subclasses, whether or not torch is loaded
    stack([np.ones(3), np.zeros(3)])    # per-sample arrays as one batch: (2, 3)
    merge_requests([{"x": np.ones((3, 4))}, {"x": np.zeros((3, 4))}])   # per-request tensors: {"x": (6, 4)}

Torch tensors: a CPU tensor that needs no gradient is read in place (``Tensor.numpy()``, half a microsecond);
otherwise it is detached, an image batch (3+ dimensions) is first subsampled on its device so that only the
grid reaches the host (:func:`~servewatch.instrumentation.projections.subsample`), then copied to the host;
dtypes numpy lacks (bfloat16) are widened to float32. Whether a type is torch's is decided once per type from
its module name and cached (:func:`is_tensor_type`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from .projections import subsample

__all__ = ["Unsupported", "as_array", "is_arraylike", "is_tensor_type", "merge_requests", "rectangular", "stack",
           "tensor_array"]


class Unsupported(TypeError):
    """A value of a type the extractor does not know how to read."""


@lru_cache(maxsize=256)
def is_tensor_type(cls: type) -> bool:
    """True when ``cls`` is torch's ``Tensor`` or derives from it (by module name: torch is never imported)."""
    return any(base.__name__ == "Tensor" and base.__module__.partition(".")[0] == "torch" for base in cls.__mro__) \
        and hasattr(cls, "detach")


def tensor_array(tensor: Any) -> np.ndarray:
    """A numpy array of a torch tensor (module docstring)."""
    try:
        if tensor.is_cpu and not tensor.requires_grad:
            return tensor.numpy()
    except (AttributeError, TypeError, RuntimeError):  # a dtype numpy lacks, a tensor subclass of another kind
        pass
    tensor = tensor.detach()
    if tensor.ndim >= 3:
        tensor = subsample(tensor)
    tensor = tensor.cpu()
    try:
        return tensor.numpy()
    except (TypeError, RuntimeError):  # bfloat16 and other dtypes numpy lacks
        return tensor.float().numpy()


def as_array(value: Any) -> np.ndarray:
    """A numpy array of a tensor or array-like value; raises :class:`Unsupported`."""
    if isinstance(value, np.ndarray):
        return value
    cls: type = type(value)
    if is_tensor_type(cls):
        return tensor_array(value)
    if hasattr(value, "__array__") or hasattr(value, "__array_interface__"):
        return np.asarray(value)
    if callable(getattr(value, "numpy", None)):  # TensorFlow eager tensors and the like
        return np.asarray(value.numpy())
    raise Unsupported(f"a value of type {cls.__module__}.{cls.__qualname__}")


def is_arraylike(value: Any) -> bool:
    """A numpy array or a torch tensor."""
    cls: type = type(value)
    return isinstance(value, np.ndarray) or is_tensor_type(cls)


def rectangular(values: Sequence[Any]) -> np.ndarray | None:
    """``values`` as one array when they form one (not ragged), else None."""
    try:
        array = np.asarray(values)
    except (ValueError, TypeError):
        return None
    return array if array.dtype != object else None


def stack(arrays: list[np.ndarray]) -> np.ndarray:
    """One batch from per-sample arrays (stacked) or per-request batches of one row (concatenated)."""
    shapes = {array.shape for array in arrays}
    if len(shapes) == 1:
        stacked = np.stack(arrays)
        return stacked[:, 0] if stacked.ndim >= 3 and arrays[0].shape[0] == 1 else stacked
    if len({array.shape[1:] for array in arrays}) == 1 and arrays[0].ndim >= 1:
        return np.concatenate(arrays)
    raise Unsupported(f"arrays of different shapes {sorted(shapes)[:3]}")


def merge_requests(requests: Sequence[Any]) -> dict[str, np.ndarray]:
    """Per-request mappings of tensors (PyTriton, tritonclient) as one mapping of batches (:func:`concatenate`),
    keyed by the first request's names."""
    return {str(key): concatenate([as_array(request[key]) for request in requests if isinstance(request, Mapping)])
            for key in requests[0]}


def concatenate(arrays: list[np.ndarray]) -> np.ndarray:
    """Per-request arrays as one batch: concatenated along their leading batch dimension (0-D and 1-D ones,
    which have none, are one sample each: stacked)."""
    if arrays[0].ndim < 2:
        return stack(arrays)
    if len({array.shape[1:] for array in arrays}) != 1:
        raise Unsupported(f"requests with tensors of different shapes {sorted({a.shape for a in arrays})[:3]}")
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
