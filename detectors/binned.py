"""Distances between binned distributions: D1, PSI, Jensen-Shannon and Hellinger, for both column kinds.

Usage::

    from servewatch.detectors import d1, psi

    d1(reference.columns["amount"], current.columns["amount"]).value       # 0 (same) .. 2 (disjoint)
    psi(reference.columns["country"], current.columns["country"]).value

Bins. Numeric columns use ``bins`` (default 10) bins between the reference's minimum and maximum, whose
inner edges are the reference's quantiles at 1/10, 2/10, ... 9/10 from its sketch (ties merge edges, so a
discrete column can have fewer), each bin (previous edge, edge] and the first closed at the minimum; plus
two more for values below the reference's minimum and above its maximum, where the reference has no mass:
values outside the training range count in full. So 12 bins by default, and two columns with disjoint
ranges are at the maximum of each distance. Categorical columns use one bin per category plus one for the
weight the sketches no longer attribute to a tracked category.

The formulas, with p the reference's and q the current's share per bin:

- ``d1``: the L1 distance sum |p - q|, from 0 (same) to 2 (disjoint);
- ``psi``: sum (q - p) ln(q / p), shares floored at 1e-4 so an empty bin stays finite (0.1 moderate,
  0.25 large by the usual reading);
- ``js``: the Jensen-Shannon distance (square root of the divergence, base 2), from 0 to 1;
- ``hellinger``: sqrt(1 - sum sqrt(p q)), from 0 to 1.

Each comes with its ``noise``: the level it reaches on undrifted data at these counts and bins (the sketches'
error included), at the false-alarm rate ``alpha``; see :mod:`servewatch.detectors.noise`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from ..column import ColumnProfile
from ..spec import DEFAULT_MIN_SAMPLES
from .categorical import category_shares
from .distribution import Distribution
from .noise import DEFAULT_ALPHA, PSI_FLOOR, pair_noise
from .statistic import Statistic, too_few

__all__ = ["DEFAULT_BINS", "PSI_FLOOR", "d1", "hellinger", "js", "psi", "shares"]

DEFAULT_BINS = 10


def shares(reference: ColumnProfile, current: ColumnProfile, bins: int = DEFAULT_BINS) -> tuple[np.ndarray, np.ndarray]:
    """Aligned bin shares (p, q) of two columns of the same kind, as described in the module docstring."""
    if not reference.is_numeric:
        return category_shares(reference, current)
    ref, cur = Distribution.of(reference), Distribution.of(current)
    if ref.low is None or ref.high is None:
        raise ValueError(f"column {reference.name!r}: an empty reference has no bins")
    inner = ref.quantiles(_ranks(bins))  # ascending
    edges = np.append(inner[inner < ref.high], ref.high)
    if edges.size > 1:  # ties merge edges
        edges = edges[np.append(True, edges[1:] != edges[:-1])]
    p = np.zeros(edges.size + 3)  # cumulative: 0, below the reference's minimum, at each edge, 1
    q = np.zeros(edges.size + 3)
    p[2:-1] = ref.cdf_at(edges)
    q[1] = cur.cdf_below(ref.low)
    q[2:-1] = cur.cdf_at(edges)
    p[-1] = q[-1] = 1.0
    return np.diff(p), np.diff(q)


@functools.lru_cache(maxsize=16)
def _ranks(bins: int) -> np.ndarray:
    return np.arange(1, bins) / bins


def _d1(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.sum(np.abs(p - q)))


def _psi(p: np.ndarray, q: np.ndarray) -> float:
    p, q = np.maximum(p, PSI_FLOOR), np.maximum(q, PSI_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def _js(p: np.ndarray, q: np.ndarray) -> float:
    m = (p + q) / 2

    def part(x: np.ndarray) -> float:
        mask = x > 0
        return float(np.sum(x[mask] * np.log2(x[mask] / m[mask])))

    return float(np.sqrt(max((part(p) + part(q)) / 2, 0.0)))


def _hellinger(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.sqrt(max(1.0 - np.sum(np.sqrt(p * q)), 0.0)))


FORMULAS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "d1": _d1, "psi": _psi, "js": _js, "hellinger": _hellinger,
}
"""Each binned statistic's formula over aligned shares (p, q)."""


def _binned(name: str, reference: ColumnProfile, current: ColumnProfile, bins: int, min_samples: int,
            alpha: float) -> Statistic:
    refused = too_few(name, reference, current, min_samples)
    if refused is not None:
        return refused
    p, q = shares(reference, current, bins)
    return Statistic(name, FORMULAS[name](p, q), noise=pair_noise(reference, current, p, alpha)[name])


def d1(reference: ColumnProfile, current: ColumnProfile, *, bins: int = DEFAULT_BINS,
       min_samples: int = DEFAULT_MIN_SAMPLES, alpha: float = DEFAULT_ALPHA) -> Statistic:
    """L1 distance between the binned distributions of two columns (0..2)."""
    return _binned("d1", reference, current, bins, min_samples, alpha)


def psi(reference: ColumnProfile, current: ColumnProfile, *, bins: int = DEFAULT_BINS,
        min_samples: int = DEFAULT_MIN_SAMPLES, alpha: float = DEFAULT_ALPHA) -> Statistic:
    """Population stability index between the binned distributions of two columns."""
    return _binned("psi", reference, current, bins, min_samples, alpha)


def js(reference: ColumnProfile, current: ColumnProfile, *, bins: int = DEFAULT_BINS,
       min_samples: int = DEFAULT_MIN_SAMPLES, alpha: float = DEFAULT_ALPHA) -> Statistic:
    """Jensen-Shannon distance (base 2) between the binned distributions of two columns (0..1)."""
    return _binned("js", reference, current, bins, min_samples, alpha)


def hellinger(reference: ColumnProfile, current: ColumnProfile, *, bins: int = DEFAULT_BINS,
              min_samples: int = DEFAULT_MIN_SAMPLES, alpha: float = DEFAULT_ALPHA) -> Statistic:
    """Hellinger distance between the binned distributions of two columns (0..1)."""
    return _binned("hellinger", reference, current, bins, min_samples, alpha)
