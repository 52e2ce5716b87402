"""Projections: a few numbers per row standing in for an input too wide to profile column by column.

Usage::

    from servewatch.instrumentation.projections import image_columns, text_columns, wide_columns, class_columns

    image_columns(batch_nchw, "image.")     # {"image.mean.0": (N,), "image.std.0": (N,), ... per channel}
    text_columns(["a b", "c"], "")          # {"chars": [3, 1], "tokens": [2, 1]}
    wide_columns(embeddings, "")            # {"norm": (N,), "mean": (N,)}   (integers: {"length": non-zeros})
    class_columns(probabilities, "")        # {"class": top class index as text, "score": its value}

Rules and thresholds (:mod:`servewatch.instrumentation.extraction` decides which applies):

- **image**, an array of 3 or more dimensions: channels are an axis of size 1, 3 or 4 in position 1 (NCHW,
  preferred) or last (NHWC); per channel ``mean.<c>`` and ``std.<c>`` over the other axes. Without such an axis,
  ``mean`` and ``std`` over everything but the batch axis. Images with more than :data:`MAX_PIXELS` positions
  per channel are read on a regular strided grid of at most that many (for a GPU tensor the grid is taken on
  the device, so only it is copied to the host): estimates, good to well under a percent on natural images.
- **text**, strings that look like prose (:func:`is_text`): ``chars`` (length in characters) and ``tokens``
  (whitespace-separated words). Short single words are categories instead.
- **wide**, a 2-D array with more columns than ``SERVEWATCH_MAX_COLUMNS`` (embeddings, one-hot or token-id
  rows): floats give ``norm`` (L2) and ``mean``; integers and booleans give ``length`` (non-zero entries: the
  unpadded length of token ids, the number of active one-hot features).
- **classes**, prediction rows of class probabilities or scores: ``class`` (index of the top one, as a
  category) and ``score`` (its value).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["MAX_PIXELS", "ROW_PROJECTIONS", "TEXT_MIN_LENGTH", "class_columns", "image_columns", "is_probabilities", "is_text",
           "subsample", "text_columns", "wide_columns"]

MAX_PIXELS = 4096
"""Positions per channel read from one image at most."""
TEXT_MIN_LENGTH = 33
"""A string this long (or any string with whitespace) makes a batch of strings text rather than categories."""
ROW_PROJECTIONS = frozenset({"class", "score", "norm", "mean", "length"})
"""Names the projections of a 2-D array produce (a spec that keys a column by one of them asks for them)."""


def channel_axis(shape: Sequence[int]) -> int | None:
    """The channel axis of a batch of images of ``shape`` (1 for NCHW, last for NHWC), None when there is none."""
    if len(shape) != 4:
        return None
    if shape[1] in (1, 3, 4):
        return 1
    if shape[3] in (1, 3, 4):
        return 3
    return None


def subsample(array: Any) -> Any:
    """``array`` (numpy or torch, batch first, 3+ dims) read on a strided grid of at most :data:`MAX_PIXELS`
    positions per channel. Basic slicing only, so a torch tensor stays on its device."""
    shape = tuple(array.shape)
    channels = channel_axis(shape)
    spatial = [axis for axis in range(1, len(shape)) if axis != channels]
    positions = math.prod(shape[axis] for axis in spatial)
    if positions <= MAX_PIXELS:
        return array
    stride = math.ceil((positions / MAX_PIXELS) ** (1 / len(spatial)))
    index = tuple(slice(None, None, stride) if axis in spatial else slice(None) for axis in range(len(shape)))
    return array[index]


def image_columns(array: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    """Per-channel (or whole-sample) mean and standard deviation of a batch of images."""
    array = subsample(array)
    channels = channel_axis(array.shape)
    if channels is None:
        flat = array.reshape(array.shape[0], -1)
        return {f"{prefix}mean": flat.mean(axis=1, dtype=np.float64), f"{prefix}std": flat.std(axis=1, dtype=np.float64)}
    axes = tuple(axis for axis in range(1, 4) if axis != channels)
    means = array.mean(axis=axes, dtype=np.float64)
    stds = array.std(axis=axes, dtype=np.float64)
    result: dict[str, np.ndarray] = {}
    for c in range(means.shape[1]):
        result[f"{prefix}mean.{c}"] = means[:, c]
    for c in range(stds.shape[1]):
        result[f"{prefix}std.{c}"] = stds[:, c]
    return result


def is_text(strings: Sequence[Any] | np.ndarray) -> bool:
    """True when the first strings of a batch look like prose: any holds whitespace or is long."""
    for value in strings[:16]:
        if isinstance(value, str) and (len(value) >= TEXT_MIN_LENGTH or any(c.isspace() for c in value)):
            return True
    return False


def text_columns(strings: Sequence[Any] | np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    """Characters and whitespace tokens of each string; anything else (None, numbers) is missing (NaN)."""
    chars = np.fromiter((len(s) if isinstance(s, str) else math.nan for s in strings), np.float64, len(strings))
    tokens = np.fromiter((len(s.split()) if isinstance(s, str) else math.nan for s in strings), np.float64,
                         len(strings))
    return {f"{prefix}chars": chars, f"{prefix}tokens": tokens}


def wide_columns(array: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    """Row summaries of a 2-D array too wide for one column per position."""
    if array.dtype.kind in "biu":
        return {f"{prefix}length": np.count_nonzero(array, axis=1).astype(np.float64)}
    values = array.astype(np.float64, copy=False)
    return {f"{prefix}norm": np.linalg.norm(values, axis=1), f"{prefix}mean": values.mean(axis=1)}


def is_probabilities(array: np.ndarray) -> bool:
    """True when every row of a 2-D float array is a probability distribution (entries in [0, 1], sum 1)."""
    if array.dtype.kind != "f" or array.ndim != 2 or array.shape[1] < 2 or array.size == 0:
        return False
    with np.errstate(invalid="ignore"):
        return bool(((array >= 0) & (array <= 1)).all() and np.allclose(array.sum(axis=1), 1.0, atol=1e-3))


def class_columns(array: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    """The top class of each row (its index, as a category) and its score."""
    top = np.argmax(array, axis=1)
    return {f"{prefix}class": top.astype(str), f"{prefix}score": array[np.arange(len(top)), top].astype(np.float64)}

