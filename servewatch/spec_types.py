"""The parts of a monitoring spec (:class:`Spec`, :class:`ModelSpec`, :class:`Column`, :class:`Threshold`, ...)
and the statistics it may name: plain frozen dataclasses, built by :mod:`servewatch.spec_parser`.

Usage::

    from servewatch.spec import ModelSpec, Spec, Threshold   # the public home; this module is where they live

    Spec()                                        # valid as it is: automatic columns and every default
    Threshold(warning=0.1, critical=0.2)

What each key of the file means, and how to read one, is in :mod:`servewatch.spec`; the reader that validates a
document into these types is :mod:`servewatch.spec_parser`, so neither of those two modules needs the other's
insides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .duration import format_duration, parse_duration
from .metrics import CATEGORICAL_STATISTICS, NUMERIC_STATISTICS, STATISTICS  # the names' one home

__all__ = [
    "CATEGORICAL_STATISTICS",
    "Column",
    "DEFAULT_MIN_SAMPLES",
    "DEFAULT_THRESHOLDS",
    "DetectorSettings",
    "ModelSpec",
    "NUMERIC_STATISTICS",
    "Reference",
    "Rules",
    "STATISTICS",
    "Source",
    "Spec",
    "Threshold",
    "Volume",
    "Window",
]



@dataclass(frozen=True)
class Threshold:
    """Warning and critical levels of one statistic (an effect size; ``None`` = no such tier)."""

    warning: float | None = None
    critical: float | None = None

    def severity(self, value: float | None) -> str:
        """``"critical"``, ``"warning"`` or ``"ok"`` for ``value`` (``"ok"`` when value is None)."""
        if value is None:
            return "ok"
        if self.critical is not None and value >= self.critical:
            return "critical"
        if self.warning is not None and value >= self.warning:
            return "warning"
        return "ok"


DEFAULT_THRESHOLDS: Mapping[str, Threshold] = {
    "ks": Threshold(0.1, 0.2),
    "d1": Threshold(0.2, 0.4),
    "psi": Threshold(0.1, 0.25),
    "linf": Threshold(0.1, 0.2),
}
"""Thresholds used where the spec names none: KS and L-infinity 0.1/0.2, D1 0.2/0.4, PSI 0.1/0.25 (the usual
PSI bands). Other statistics are computed and exported but decide no severity unless the spec gives levels."""

DEFAULT_MIN_SAMPLES = 100
"""Below this many values in either the reference or the window, drift statistics are not computed."""


@dataclass(frozen=True)
class Source:
    """Where a column comes from in what the model receives (or returns).

    ``index``: column i of a 2-D array/tensor or item i of a list; ``key``: field of a dict row, or the whole
    tensor of that name; ``key`` + ``index``: column i of the tensor or list named key; ``path``: a dotted
    path into nested JSON (``"a.b.0"``).
    """

    index: int | None = None
    key: str | None = None
    path: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Rules:
    """Data-quality rules of one column. Ratios are of the column's values in a window.

    ``min``/``max`` bound numeric values (``max_out_of_range_ratio`` of them may fall outside, default 0);
    ``allowed`` lists categorical values (``max_not_allowed_ratio``, default 0); ``max_missing_ratio`` bounds
    None/NaN; ``max_invalid_ratio`` bounds values of the wrong type (default 0); ``max_new_category_ratio``
    bounds categories the reference never saw; ``not_constant`` flags a column that became constant.
    """

    min: float | None = None
    max: float | None = None
    allowed: frozenset[str] | None = None
    max_missing_ratio: float | None = None
    max_invalid_ratio: float | None = 0.0
    max_out_of_range_ratio: float = 0.0
    max_not_allowed_ratio: float = 0.0
    max_new_category_ratio: float | None = None
    not_constant: bool = True


@dataclass(frozen=True)
class Column:
    """One monitored feature or prediction. ``type``: ``numeric`` or ``categorical`` (``identifier`` and
    ``timestamp`` columns are never profiled: they sit in :attr:`ModelSpec.skipped`)."""

    name: str
    type: str = "numeric"
    source: Source | None = None
    rules: Rules = field(default_factory=Rules)
    thresholds: Mapping[str, Threshold] = field(default_factory=dict)

    @property
    def is_numeric(self) -> bool:
        return self.type == "numeric"


@dataclass(frozen=True)
class Window:
    """A sliding evaluation window (``name`` as written, e.g. ``"5m"``; ``seconds``)."""

    name: str
    seconds: float

    @classmethod
    def parse(cls, text: str | float) -> Window:
        seconds = parse_duration(text)
        return cls(format_duration(seconds), seconds)


@dataclass(frozen=True)
class Reference:
    """What a window is compared against.

    ``kind`` is one of ``file`` (a profile built with ``servewatch reference``; ``path``), ``range`` (a
    pinned time range of the detector's own history; ``start``/``end`` as Unix seconds), ``offset`` (the
    same window one ``offset`` back, for seasonal traffic) or ``warmup`` (the first ``warmup`` seconds of
    traffic the detector saw; the default, one hour).
    """

    kind: str = "warmup"
    path: str | None = None
    start: float | None = None
    end: float | None = None
    offset: float | None = None
    warmup: float = 3600.0


@dataclass(frozen=True)
class Volume:
    """Bounds on how many rows a model receives per ``per`` seconds (checked on every window)."""

    min: float | None = None
    max: float | None = None
    per: float = 60.0


@dataclass(frozen=True)
class ModelSpec:
    """Everything servewatch knows about one model."""

    name: str
    features: tuple[Column, ...] = ()
    predictions: tuple[Column, ...] = ()
    reference: Reference = field(default_factory=Reference)
    windows: tuple[Window, ...] = (Window("5m", 300.0), Window("1h", 3600.0), Window("1d", 86400.0))
    thresholds: Mapping[str, Threshold] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    min_samples: int = DEFAULT_MIN_SAMPLES
    volume: Volume = field(default_factory=Volume)
    k: int = 200
    skipped: tuple[Column, ...] = ()
    """Columns the spec marks ``type: identifier`` or ``type: timestamp``: a different value in every row, so
    never profiled (no drift, no rules); listed so the columns after them keep their positions."""

    def columns(self, signal: str) -> tuple[Column, ...]:
        """The columns of ``signal`` (``"input"`` or ``"prediction"``)."""
        return self.features if signal == "input" else self.predictions

    def column(self, signal: str, name: str) -> Column | None:
        """The spec of column ``name`` of ``signal``, or None when the spec does not list it."""
        for column in self.columns(signal):
            if column.name == name:
                return column
        return None

    def thresholds_for(self, column: Column | None) -> Mapping[str, Threshold]:
        """The model's thresholds overridden by the column's own."""
        if column is None or not column.thresholds:
            return self.thresholds
        return {**self.thresholds, **column.thresholds}


@dataclass(frozen=True)
class DetectorSettings:
    """Settings of ``servewatch detect`` that belong with the spec (flags override them)."""

    bucket: float = 60.0
    interval: float = 15.0
    retention: float = 8 * 86400.0


@dataclass(frozen=True)
class Spec:
    """A whole monitoring spec. ``Spec()`` is the empty spec: defaults everywhere."""

    models: tuple[ModelSpec, ...] = ()
    detector: DetectorSettings = field(default_factory=DetectorSettings)
    defaults: ModelSpec = field(default_factory=lambda: ModelSpec(name="*"))
    path: str | None = None

    def model(self, name: str) -> ModelSpec:
        """The spec of model ``name``; a model the file does not list gets the defaults (automatic columns)."""
        for model in self.models:
            if model.name == name:
                return model
        return replace(self.defaults, name=name)

    def has_model(self, name: str) -> bool:
        return any(model.name == name for model in self.models)
