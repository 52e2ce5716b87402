"""The detectors library: drift statistics and data-quality rules between profiles, usable in any pipeline.

Usage::

    from servewatch import Profile
    from servewatch.detectors import compare, ks, psi

    reference = Profile.from_data(training_rows, model="fraud")
    current = Profile.from_data(todays_rows, model="fraud")

    ks(reference.columns["amount"], current.columns["amount"])   # Statistic(name='ks', value=0.21, bound=0.027)
    report = compare(reference, current)                          # every statistic + rule, with severities
    print(report.table())

Numeric statistics: :func:`ks` (with its sketch error bound), :func:`d1`, :func:`psi`, :func:`js`,
:func:`hellinger`, :func:`wasserstein`. Categorical: :func:`linf`, :func:`d1`, :func:`psi`, :func:`js`,
:func:`hellinger`, :func:`chi2`, :func:`cramers_v`, :func:`new_category_ratio`. Rules: :func:`check_rules`,
:func:`check_volume`. Streaming: :class:`Detector`. The detector *service* (``servewatch detect``) lives in
:mod:`servewatch.detectors.service`; ``servewatch compare`` and ``servewatch report`` in :mod:`.command`.

Each statistic lives in the module named after what it reads: :mod:`.numeric` the whole distribution of a numeric
column (KS, Wasserstein), :mod:`.categorical` the categories (L-infinity, chi-square, Cramer's V, new
categories), :mod:`.binned` the shares per bin of either kind of column (D1, PSI, Jensen-Shannon, Hellinger).
"""

from __future__ import annotations

from .binned import DEFAULT_BINS, d1, hellinger, js, psi
from .categorical import chi2, cramers_v, linf, new_category_ratio
from .detector import Detector
from .distribution import Categories, Distribution
from .numeric import ks, wasserstein
from .report import SEVERITIES, ColumnReport, Report, compare, worst_severity
from .rules import RuleResult, check_rules, check_volume, quality_ratios
from .statistic import Statistic

__all__ = [
    "Categories",
    "ColumnReport",
    "DEFAULT_BINS",
    "Detector",
    "Distribution",
    "Report",
    "RuleResult",
    "SEVERITIES",
    "Statistic",
    "check_rules",
    "check_volume",
    "chi2",
    "compare",
    "cramers_v",
    "d1",
    "hellinger",
    "js",
    "ks",
    "linf",
    "new_category_ratio",
    "psi",
    "quality_ratios",
    "wasserstein",
    "worst_severity",
]
