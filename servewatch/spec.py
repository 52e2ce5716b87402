"""The monitoring spec: which models to watch, their features and predictions, rules, references, windows
and thresholds. One YAML file drives the detector, the dashboards, the alert rules and the instrumentation's
feature mapping.

Usage::

    from servewatch.spec import load_spec

    spec = load_spec("servewatch.yaml")          # raises SpecError listing every problem
    fraud = spec.model("fraud")                  # a ModelSpec; an unknown name gets the defaults
    for feature in fraud.features:
        print(feature.name, feature.type, feature.source, feature.rules.max)
    fraud.thresholds["ks"].warning               # 0.1 unless the spec says otherwise

The file::

    detector: {bucket: 1m, interval: 15s, retention: 8d}      # optional, settings of `servewatch detect`
    defaults: {windows: [5m, 1h, 1d], min_samples: 100}        # optional, applied to every model
    models:
      - name: fraud
        features:
          - {name: amount, type: numeric, source: {index: 0}, rules: {min: 0, max: 1e5, max_missing_ratio: 0.01}}
          - {name: country, type: categorical, source: {key: country}, rules: {allowed: [US, DE, FR]}}
          - {name: order_id, type: identifier}   # or type: timestamp: named so positions hold, never profiled
        predictions:
          - {name: score, type: numeric, source: {index: 1}}
        reference: refs/fraud.pb          # or {file: ...}, {range: {start, end}}, {offset: 7d}, {warmup: 1h}
        windows: [5m, 1h, 1d]
        thresholds: {ks: {warning: 0.1, critical: 0.2}, d1: {warning: 0.2, critical: 0.4}}
        volume: {min: 1, max: 100000, per: 1m}

Everything has a default, so ``Spec()`` (no file at all) is a valid spec: every model gets automatic
columns, the default windows and thresholds, and its first hour of traffic as reference.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .duration import format_duration, parse_duration
from .errors import SpecError
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
    "Source",
    "Spec",
    "Threshold",
    "Volume",
    "Window",
    "load_spec",
    "parse_spec",
]

_STATISTICS = STATISTICS


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


def load_spec(path: str | os.PathLike[str]) -> Spec:
    """Read and validate the spec at ``path``. Raises :class:`SpecError` listing every problem found."""
    import yaml

    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise SpecError([f"{path}: cannot read: {error.strerror or error}"]) from None
    except UnicodeDecodeError as error:
        raise SpecError([f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset "
                         f"{error.start}); a spec is a UTF-8 YAML file"]) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise SpecError([f"{path}: {where}not valid YAML: {problem}"]) from None
    if document is None:
        raise SpecError([f"{path}: the file is empty; a spec lists models: (or leave out --spec for defaults)"])
    return parse_spec(document, path=path)


def parse_spec(document: Any, *, path: str | None = None) -> Spec:
    """Validate an already-parsed YAML/JSON document (``dict``) into a :class:`Spec`."""
    from .spec_parser import SpecParser

    return SpecParser(path or "<spec>").spec(document)
