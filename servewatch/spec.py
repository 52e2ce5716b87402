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

The types live in :mod:`servewatch.spec_types` and the validating reader in :mod:`servewatch.spec_parser`;
import both from here.
"""

from __future__ import annotations

import os
from typing import Any

from .errors import SpecError
from .spec_parser import SpecParser
from .spec_types import (
    CATEGORICAL_STATISTICS,
    DEFAULT_MIN_SAMPLES,
    DEFAULT_THRESHOLDS,
    NUMERIC_STATISTICS,
    Column,
    DetectorSettings,
    ModelSpec,
    Reference,
    Rules,
    Source,
    Spec,
    Threshold,
    Volume,
    Window,
)

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
    return SpecParser(path or "<spec>").spec(document)
