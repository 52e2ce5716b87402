"""Statistics between two numeric columns that need the whole CDF: KS and Wasserstein.

Usage::

    from servewatch.detectors import ks, wasserstein

    stat = ks(reference.columns["amount"], current.columns["amount"])
    stat.value, stat.bound            # the KS statistic of the two sketched CDFs, and its error bound

``ks`` is exact over the union of the two sketches' retained items: it is the largest gap between their
step CDFs. The sketches themselves approximate the data's CDF within their normalized rank error
(1.33% at k=200, 99th percentile); ``bound`` is the sum of the two (0 for a sketch still holding every
value), so the KS of the raw data lies within ``value +- bound``.

``wasserstein`` is the earth mover's distance between the two CDFs, divided by the reference's standard
deviation so that it reads in reference spreads (0.1 = a tenth of a standard deviation of mass moved).

Each statistic carries its ``noise`` (:mod:`servewatch.detectors.noise`). For ``ks`` it is the two-sample
Kolmogorov quantile at the false-alarm rate plus ``bound``. For ``wasserstein`` it is a Gaussian bound:
undrifted, the CDF gap is ``sqrt(s)`` times a Brownian bridge ``B(F(x))``, whose L1 norm has mean
``sqrt(2/pi) L`` and (Borell-TIS) exceeds ``L (sqrt(2/pi) + sqrt(2 ln(1/alpha)))`` with probability at most
alpha, where ``L`` = the integral of ``sqrt(F (1 - F))`` over the reference's CDF; the sketches' rank errors
count into ``s`` as extra variance.
"""

from __future__ import annotations

import math

import numpy as np

from ..column import ColumnProfile
from ..spec import DEFAULT_MIN_SAMPLES
from .distribution import Distribution
from .noise import DEFAULT_ALPHA, ks_noise, spread
from .statistic import Statistic, too_few

__all__ = ["ks", "wasserstein"]


def ks(reference: ColumnProfile, current: ColumnProfile, *, min_samples: int = DEFAULT_MIN_SAMPLES,
       alpha: float = DEFAULT_ALPHA) -> Statistic:
    """The two-sample Kolmogorov-Smirnov statistic between two numeric columns, with its sketch error bound
    and its noise level at false-alarm rate ``alpha``."""
    _require_numeric("ks", reference)
    refused = too_few("ks", reference, current, min_samples)
    if refused is not None:
        return refused
    ref, cur = Distribution.of(reference), Distribution.of(current)
    # both CDFs are right-continuous steps: the largest gap sits at one of either side's items
    value = max(float(np.abs(ref.cdf - cur.cdf_at(ref.items)).max()),
                float(np.abs(ref.cdf_at(cur.items) - cur.cdf).max()))
    bound = ref.rank_error + cur.rank_error
    return Statistic("ks", value, bound=bound, noise=ks_noise(reference.valid, current.valid, bound, alpha))


def wasserstein(reference: ColumnProfile, current: ColumnProfile, *,
                min_samples: int = DEFAULT_MIN_SAMPLES, alpha: float = DEFAULT_ALPHA) -> Statistic:
    """Wasserstein-1 distance between two numeric columns, in units of the reference's standard deviation."""
    _require_numeric("wasserstein", reference)
    refused = too_few("wasserstein", reference, current, min_samples)
    if refused is not None:
        return refused
    ref, cur = Distribution.of(reference), Distribution.of(current)
    _mean, deviation = ref.mean_std()
    if deviation <= 0:
        return Statistic("wasserstein", None, reason="reference is constant (standard deviation 0)")
    points = np.union1d(ref.items, cur.items)
    gaps = np.abs(ref.cdf_at(points[:-1]) - cur.cdf_at(points[:-1]))
    width = float(np.dot(np.sqrt(ref.cdf[:-1] * (1.0 - ref.cdf[:-1])), np.diff(ref.items)))  # L
    scale = math.sqrt(spread(reference.valid, current.valid, ref.rank_error, cur.rank_error))
    noise = scale * width * (math.sqrt(2 / math.pi) + math.sqrt(2 * math.log(1 / alpha))) / deviation
    return Statistic("wasserstein", float(np.dot(gaps, np.diff(points)) / deviation), noise=noise)


def _require_numeric(name: str, column: ColumnProfile) -> None:
    if not column.is_numeric:
        raise TypeError(f"{name} needs numeric columns; {column.name!r} is categorical")
