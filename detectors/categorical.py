"""Statistics only categorical columns have: L-infinity, chi-square, Cramer's V and the new-category ratio.

Usage::

    from servewatch.detectors import chi2, linf, new_category_ratio

    linf(reference.columns["country"], current.columns["country"]).value    # largest change of one share

Category shares come from the frequent-items sketches: exact while a sketch tracks every category it saw
(up to 0.75 * 2**lg_max_k of them, 768 by default), estimates beyond that, with the untracked rest pooled
as one "other" category. ``new_category_ratio`` is the share of current values whose category the
reference never saw; when the reference's sketch is no longer exact it counts categories outside the
reference's tracked set, an upper bound.

``linf``, ``chi2`` and ``cramers_v`` carry their ``noise`` (:mod:`servewatch.detectors.noise`): the level
each reaches with no drift at these counts and categories, unseen categories included.
"""

from __future__ import annotations

import numpy as np

from ..column import ColumnProfile
from ..spec import DEFAULT_MIN_SAMPLES
from .distribution import Categories
from .noise import DEFAULT_ALPHA, pair_noise
from .statistic import Statistic, too_few

__all__ = ["category_shares", "chi2", "cramers_v", "linf", "new_category_ratio"]


def category_shares(reference: ColumnProfile, current: ColumnProfile) -> tuple[np.ndarray, np.ndarray]:
    """Aligned category shares (p, q) of the two columns over the union of their categories, plus "other"."""
    ref, cur = Categories.of(reference), Categories.of(current)
    names = list(dict.fromkeys([*ref.counts, *cur.counts]))
    p = np.array([ref.counts.get(name, 0.0) for name in names] + [ref.other], dtype=np.float64)
    q = np.array([cur.counts.get(name, 0.0) for name in names] + [cur.other], dtype=np.float64)
    return p / max(ref.n, 1), q / max(cur.n, 1)


def linf(reference: ColumnProfile, current: ColumnProfile, *, min_samples: int = DEFAULT_MIN_SAMPLES,
         alpha: float = DEFAULT_ALPHA) -> Statistic:
    """The largest absolute change in any one category's share (L-infinity distance)."""
    _require_categorical("linf", reference)
    refused = too_few("linf", reference, current, min_samples)
    if refused is not None:
        return refused
    p, q = category_shares(reference, current)
    return Statistic("linf", float(np.max(np.abs(p - q))), noise=pair_noise(reference, current, p, alpha)["linf"])


def chi2(reference: ColumnProfile, current: ColumnProfile, *, min_samples: int = DEFAULT_MIN_SAMPLES,
         alpha: float = DEFAULT_ALPHA) -> Statistic:
    """Pearson's chi-square statistic of homogeneity between the two category count vectors.

    It grows with sample size: use it to rank, and :func:`cramers_v` (its effect size) for thresholds."""
    _require_categorical("chi2", reference)
    refused = too_few("chi2", reference, current, min_samples)
    if refused is not None:
        return refused
    p, _q = category_shares(reference, current)
    return Statistic("chi2", _chi2(reference, current), noise=pair_noise(reference, current, p, alpha)["chi2"])


def cramers_v(reference: ColumnProfile, current: ColumnProfile, *,
              min_samples: int = DEFAULT_MIN_SAMPLES, alpha: float = DEFAULT_ALPHA) -> Statistic:
    """Cramer's V of the reference-vs-current table: chi-square scaled to [0, 1] (an effect size)."""
    _require_categorical("cramers_v", reference)
    refused = too_few("cramers_v", reference, current, min_samples)
    if refused is not None:
        return refused
    total = reference.valid + current.valid
    p, _q = category_shares(reference, current)
    return Statistic("cramers_v", float(np.sqrt(_chi2(reference, current) / total)),
                     noise=pair_noise(reference, current, p, alpha)["cramers_v"])


def new_category_ratio(reference: ColumnProfile, current: ColumnProfile, *, min_samples: int = 1) -> Statistic:
    """The share of current values in categories the reference never saw."""
    _require_categorical("new_category_ratio", reference)
    refused = too_few("new_category_ratio", reference, current, min_samples)
    if refused is not None:
        return refused
    ref, cur = Categories.of(reference), Categories.of(current)
    unseen = sum(count for name, count in cur.counts.items() if ref.counts.get(name, 0.0) <= 0.0)
    reason = None if ref.exact else "reference tracks only its frequent categories: an upper bound"
    return Statistic("new_category_ratio", float(unseen / max(cur.n, 1)), reason=reason)


def _chi2(reference: ColumnProfile, current: ColumnProfile) -> float:
    p, q = category_shares(reference, current)
    observed = np.vstack([p * reference.valid, q * current.valid])
    observed = observed[:, observed.sum(axis=0) > 0]
    if observed.shape[1] < 2:
        return 0.0
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0, keepdims=True) / observed.sum()
    return float(np.sum((observed - expected) ** 2 / expected))


def _require_categorical(name: str, column: ColumnProfile) -> None:
    if column.is_numeric:
        raise TypeError(f"{name} needs categorical columns; {column.name!r} is numeric")
