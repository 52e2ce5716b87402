"""What sampling noise alone gives each statistic: its null quantile at a column pair's counts and bins.

Usage::

    from servewatch.detectors.noise import alpha_for, binned_noise, ks_noise

    ks_noise(100_000, 120, bound=0.0133)      # 0.204: an undrifted KS on 120 values stays below this
    binned_noise(p, 100_000, 500, ref_error=0.0133, cur_error=0.0133)["psi"]
    alpha_for(3)                              # the false-alarm rate each of 3 decisions may spend

A statistic decides a severity only where its value exceeds this level (its ``noise``) as well as the spec's
effect-size threshold (:meth:`Statistic.severity <servewatch.detectors.Statistic.severity>`). The level is
the statistic's upper ``alpha`` quantile when reference and window are drawn from one distribution, at the
reference's count ``n``, the window's count ``m`` and the bins, plus what the sketches may add. ``alpha`` is
:data:`FALSE_ALARM_RATE` (per feature evaluation) split evenly over the column's decisions: the statistics
that have thresholds and the ratio rules with a limit above 0 (:func:`alpha_for`), so by the union bound a
feature on undrifted data raises a false warning in at most 0.1% of evaluations.

How each level is derived (``s = 1/n + 1/m``, plus each sketch's share of noise, see below):

- ``ks``: the asymptotic two-sample Kolmogorov quantile ``K(alpha) sqrt((n+m)/(n m))`` (``K`` the inverse
  Kolmogorov distribution: 2.09 at alpha 3.3e-4), plus the sketches' error ``bound``. The finite-sample
  quantile (scipy's ``kstwo`` at ``nm/(n+m)`` values) is only 1.2% lower at 100 values and 0.4% at 500, not
  worth its milliseconds; the asymptotic one is the conservative side, and ties make the true one lower.
- binned statistics, over the ``B`` bins the reference fills: under no drift ``sum (q - p)^2 / p`` is
  ``s chi2(B - 1)`` asymptotically (Pearson; its upper alpha/2 quantile is used, alpha/4 goes to each of the
  two small-count terms below), and from it PSI ~ ``s chi2``, JS distance ~
  ``sqrt(s chi2 / (8 ln 2))``, Hellinger ~ ``sqrt(s chi2 / 8)``; D1 <= ``sqrt(s chi2)`` by Cauchy-Schwarz
  (an upper bound, about 20% above the simulated quantile); L-infinity by a normal bound per bin,
  Bonferroni over the bins; chi-square is ``chi2(B - 1)`` itself and Cramer's V ``sqrt(chi2 / (n + m))``.
- bins the reference leaves empty: numeric columns have one below the reference's minimum and one above its
  maximum; a categorical window can hold categories the reference never saw. Under no drift the window's
  share there is ``C / m`` with ``C`` negative binomial (``r`` = 2 extremes for numeric; for categories 1 +
  the reference's singletons, Good-Turing, + the weight its sketch no longer tracks, all of it rare):
  :func:`outside_share`. Its effect is added to each statistic
  (``2t`` to D1, ``t ln(t / floor)`` to PSI, ``t / 2`` to the JS divergence and to Hellinger squared).
- PSI's floor makes a window that leaves a reference bin empty read ``p ln(p / 1e-4)`` (0.69 for a decile):
  where that is plausible (``B (1 - p)^m`` above alpha/4, e.g. 10 deciles at m = 100) it is added too.
- sketches: a KLL sketch in estimation mode is within its rank error ``e`` with 99% confidence, a standard
  deviation of ``e / 2.576`` on each CDF value: the variance a sample of ``1 / (4 (e / 2.576)^2)`` values
  (9,400 at k = 200) adds at the median. So each sketch adds ``4 (e / 2.576)^2`` to ``s`` (measured: the
  sketches' own ``sum (q - p)^2 / p`` averages 0.6-0.8x of that). A sketch still holding every value adds
  nothing.

These are derivations, checked by simulation (``bench/detection_quality.py`` measures the false-alarm rate
they give): cheap closed forms (a few microseconds per column), so every evaluation can afford them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
from scipy.special import chdtri, kolmogi, nbdtrik, ndtri

from ..column import ColumnProfile
from ..spec import DEFAULT_THRESHOLDS, NUMERIC_STATISTICS
from .distribution import Categories, Distribution

__all__ = ["DEFAULT_ALPHA", "FALSE_ALARM_RATE", "PSI_FLOOR", "alpha_for", "binned_noise", "ks_noise", "outside_share",
           "pair_noise", "spread"]

FALSE_ALARM_RATE = 1e-3
"""The false-warning rate a feature may have on undrifted data, per evaluation, all its decisions together."""

DEFAULT_ALPHA = FALSE_ALARM_RATE / len(set(DEFAULT_THRESHOLDS) & set(NUMERIC_STATISTICS))
"""Each statistic's share when the default thresholds decide (ks, d1, psi; or linf, d1, psi): 3.3e-4."""

PSI_FLOOR = 1e-4
"""The share PSI floors each bin at, so an empty bin stays finite (:func:`servewatch.detectors.psi`)."""
_SKETCH_Z = 2.576  # a sketch's rank error is its 99% bound


def alpha_for(decisions: int) -> float:
    """The false-alarm rate each of ``decisions`` decisions on one feature may spend."""
    return FALSE_ALARM_RATE / max(decisions, 1)


def spread(n: int, m: int, ref_error: float = 0.0, cur_error: float = 0.0) -> float:
    """``s``: the variance scale of a share difference, ``1/n + 1/m`` plus each sketch's rank-error variance."""
    return 1.0 / max(n, 1) + 1.0 / max(m, 1) + 4.0 * ((ref_error / _SKETCH_Z) ** 2 + (cur_error / _SKETCH_Z) ** 2)


def ks_noise(n: int, m: int, bound: float = 0.0, alpha: float = DEFAULT_ALPHA) -> float:
    """The KS level undrifted samples of ``n`` and ``m`` values exceed with probability ``alpha``, plus
    the sketches' error ``bound``."""
    return float(kolmogi(alpha)) * math.sqrt((n + m) / (n * m)) + bound


def outside_share(n: int, m: int, alpha: float, r: float = 2.0) -> float:
    """The share of ``m`` window values outside what ``n`` reference values covered, exceeded with
    probability <= ``alpha`` under no drift: ``ceil(C) / m``, ``C`` negative binomial (``r``, n/(n+m))."""
    count = float(nbdtrik(1.0 - alpha, r, n / (n + m)))
    return min(math.ceil(count - 1e-9) / m, 1.0) if math.isfinite(count) else 1.0


def binned_noise(p: np.ndarray, n: int, m: int, *, ref_error: float = 0.0, cur_error: float = 0.0,
                 alpha: float = DEFAULT_ALPHA, unseen: float = 2.0) -> Mapping[str, float]:
    """Null quantiles of every binned statistic for reference shares ``p`` (0 where the reference has no
    mass), ``n`` reference and ``m`` window values: ``d1``, ``psi``, ``js``, ``hellinger``, ``linf``,
    ``chi2``, ``cramers_v``. ``unseen`` is ``r`` of :func:`outside_share` (2 for numeric bins)."""
    filled = [share for share in p.tolist() if share > 0]  # a dozen bins: plain floats beat numpy here
    bins = max(len(filled), 2)
    largest = max(filled, default=1.0)
    empty = 0.0  # the largest share a window of m values may leave empty (B (1 - p)^m above alpha/4)
    if filled and bins * (1.0 - min(filled)) ** m > alpha / 4:
        empty = max(share for share in filled if bins * (1.0 - share) ** m > alpha / 4)
    widest = largest * (1.0 - largest) if largest <= 0.5 else max(share * (1.0 - share) for share in filled)
    return _levels(bins, n, m, ref_error, cur_error, alpha, unseen, empty, widest)


@functools.lru_cache(maxsize=1024)
def _levels(bins: int, n: int, m: int, ref_error: float, cur_error: float, alpha: float, unseen: float,
            empty: float, widest: float) -> Mapping[str, float]:
    """binned_noise from the few numbers it depends on (cached: a model's features share their counts)."""
    s = spread(n, m, ref_error, cur_error)
    quantile = float(chdtri(bins - 1, alpha / 2))  # chi2(B - 1), upper alpha/2
    t = outside_share(n, m, alpha / 4, unseen)
    psi = s * quantile
    for share in (t, empty):  # the window's share outside the reference, a reference bin left empty
        if share > PSI_FLOOR:
            psi += (share - PSI_FLOOR) * math.log(share / PSI_FLOOR)
    chi2 = quantile * s / (1.0 / max(n, 1) + 1.0 / max(m, 1)) + t * n
    return MappingProxyType({
        "d1": math.sqrt(s * quantile) + 2 * t,
        "psi": psi,
        "js": math.sqrt(s * quantile / (8 * math.log(2)) + t / 2),
        "hellinger": math.sqrt(s * quantile / 8 + t / 2),
        "linf": float(-ndtri(alpha / (4 * bins))) * math.sqrt(s * widest) + t,
        "chi2": chi2,
        "cramers_v": math.sqrt(chi2 / max(n + m, 1)),
    })


def pair_noise(reference: ColumnProfile, current: ColumnProfile, p: np.ndarray,
               alpha: float = DEFAULT_ALPHA) -> Mapping[str, float]:
    """:func:`binned_noise` for two columns of one kind, ``p`` the reference's shares from their binning."""
    if reference.is_numeric:
        ref_error, cur_error = Distribution.of(reference).rank_error, Distribution.of(current).rank_error
        unseen = 2.0
    else:
        ref_error, cur_error = _category_error(reference), _category_error(current)
        view = Categories.of(reference)  # Good-Turing: singletons, and the untracked rest, all of it rare
        unseen = 1.0 + sum(1 for count in view.counts.values() if count <= 1.0) + view.other
    return binned_noise(p, reference.valid, current.valid, ref_error=ref_error, cur_error=cur_error, alpha=alpha,
                        unseen=unseen)


def _category_error(column: ColumnProfile) -> float:
    """A frequent-items sketch's count error as a share of its stream (0 while it tracks every category)."""
    if Categories.of(column).exact or column.frequent is None:
        return 0.0
    return float(column.frequent.epsilon)
