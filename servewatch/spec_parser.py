"""The validating reader behind :func:`servewatch.spec.parse_spec`: one walk over the document that collects
every problem with its path (``models[0].features[2].rules.max``) and raises them together as a SpecError.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from datetime import datetime
from typing import Any

from .category import category
from .duration import format_duration, parse_duration
from .errors import SpecError
from .spec_types import (
    STATISTICS,
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

__all__ = ["SpecParser"]


class SpecParser:
    """Walks the document once, collecting every problem with its path, then raises them together."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.base = os.path.dirname(os.path.abspath(file)) if file != "<spec>" else os.getcwd()
        self.problems: list[str] = []

    # -- reporting ------------------------------------------------------------------------------------------

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.file}: {where or '<top>'}: {message}")

    def mapping(self, value: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any] | None:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(where, f"expected a mapping, got {_kind(value)}")
            return None
        for key in value:
            if key not in allowed:
                self.problem(_join(where, str(key)), f"unknown key; expected one of: {', '.join(allowed)}")
        return value

    def number(self, value: Any, where: str, *, low: float | None = None, high: float | None = None) -> float | None:
        if value is None:
            return None
        number: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML reads 1e5 (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                number = None
        if number is None or not math.isfinite(number):
            self.problem(where, f"expected a number, got {value!r}")
            return None
        if low is not None and number < low:
            self.problem(where, f"must be >= {low:g}, got {number:g}")
            return None
        if high is not None and number > high:
            self.problem(where, f"must be <= {high:g}, got {number:g}")
            return None
        return number

    def integer(self, value: Any, where: str, *, low: int, high: int) -> int | None:
        number = self.number(value, where, low=low, high=high)
        if number is None:
            return None
        if not number.is_integer():
            self.problem(where, f"expected a whole number, got {value!r}")
            return None
        return int(number)

    def duration(self, value: Any, where: str) -> float | None:
        if value is None:
            return None
        try:
            return parse_duration(value)
        except ValueError as error:
            self.problem(where, str(error))
            return None

    def text(self, value: Any, where: str) -> str | None:
        if value is None:
            return None
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value)
        self.problem(where, f"expected a non-empty string, got {_kind(value)}")
        return None

    # -- the document --------------------------------------------------------------------------------------

    def spec(self, document: Any) -> Spec:
        if document is None:
            document = {}
        root = self.mapping(document, "", ("models", "detector", "defaults"))
        if root is None:
            raise SpecError(self.problems)
        detector = self.detector(root.get("detector"), "detector")
        defaults = self.model(root.get("defaults"), "defaults", ModelSpec(name="*"), require_name=False)
        models: list[ModelSpec] = []
        raw_models = root.get("models")
        if raw_models is None:
            raw_models = []
        if not isinstance(raw_models, list):
            self.problem("models", f"expected a list of models, got {_kind(raw_models)}")
            raw_models = []
        seen: set[str] = set()
        for i, raw in enumerate(raw_models):
            model = self.model(raw, f"models[{i}]", defaults, require_name=True)
            if model is None:
                continue
            if model.name and model.name in seen:
                self.problem(f"models[{i}].name", f"model {model.name!r} is listed twice")
            seen.add(model.name)
            models.append(model)
        if self.problems:
            raise SpecError(self.problems)
        return Spec(models=tuple(models), detector=detector, defaults=defaults, path=self.file)

    def detector(self, raw: Any, where: str) -> DetectorSettings:
        block = self.mapping(raw, where, ("bucket", "interval", "retention"))
        if not block:
            return DetectorSettings()
        settings = DetectorSettings()
        values = {key: self.duration(block.get(key), _join(where, key)) for key in ("bucket", "interval", "retention")}
        return replace(settings, **{key: value for key, value in values.items() if value is not None})

    def model(self, raw: Any, where: str, base: ModelSpec, *, require_name: bool) -> ModelSpec:
        keys = ("name", "features", "predictions", "reference", "windows", "thresholds", "min_samples", "volume",
                "sketch")
        block = self.mapping(raw, where, keys if require_name else keys[3:])
        if block is None:
            return base
        name = base.name
        if require_name:
            raw_name = block.get("name")
            if raw_name is None or (isinstance(raw_name, str) and not raw_name.strip()):
                self.problem(_join(where, "name"), f"{'missing' if raw_name is None else 'empty'}; every model "
                             "needs the name the server reports")
                name = ""
            else:
                name = self.text(raw_name, _join(where, "name")) or ""
        features = self.columns(block.get("features"), _join(where, "features"))
        predictions = self.columns(block.get("predictions"), _join(where, "predictions"))
        names = [column.name for column in features]
        for i, column_name in enumerate(names):
            if column_name in names[:i]:
                self.problem(f"{where}.features[{i}].name", f"feature {column_name!r} is listed twice")
        features, skipped_features = _unprofiled(features)
        predictions, skipped_predictions = _unprofiled(predictions)
        changes: dict[str, Any] = {"name": name, "features": features, "predictions": predictions}
        if "features" in block or "predictions" in block:
            changes["skipped"] = skipped_features + skipped_predictions
        if "reference" in block:
            changes["reference"] = self.reference(block["reference"], _join(where, "reference"))
        if "windows" in block:
            changes["windows"] = self.windows(block["windows"], _join(where, "windows"))
        if "thresholds" in block:
            changes["thresholds"] = {**base.thresholds, **self.thresholds(block["thresholds"], _join(where, "thresholds"))}
        if "min_samples" in block:
            changes["min_samples"] = self.integer(block["min_samples"], _join(where, "min_samples"), low=1, high=10**12)
        if "volume" in block:
            changes["volume"] = self.volume(block["volume"], _join(where, "volume"))
        if "sketch" in block:
            sketch = self.mapping(block["sketch"], _join(where, "sketch"), ("k",)) or {}
            if "k" in sketch:
                changes["k"] = self.integer(sketch["k"], _join(where, "sketch.k"), low=8, high=65535)
        return replace(base, **{key: value for key, value in changes.items() if value is not None})

    def columns(self, raw: Any, where: str) -> tuple[Column, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.problem(where, f"expected a list of columns, got {_kind(raw)}")
            return ()
        columns = []
        for i, item in enumerate(raw):
            column = self.column(item, f"{where}[{i}]")
            if column is not None:
                columns.append(column)
        return tuple(columns)

    def column(self, raw: Any, where: str) -> Column | None:
        block = self.mapping(raw, where, ("name", "type", "source", "rules", "thresholds"))
        if block is None:
            return None
        name = self.text(block.get("name"), _join(where, "name"))
        if "name" not in block:
            self.problem(_join(where, "name"), "missing")
        kind = block.get("type", "numeric")
        if kind not in _COLUMN_TYPES:
            self.problem(_join(where, "type"), f"must be one of {', '.join(_COLUMN_TYPES)}, got {kind!r}")
            kind = "numeric"
        source = self.source(block.get("source"), _join(where, "source"))
        if kind in _UNPROFILED:
            for key in ("rules", "thresholds"):
                if block.get(key):
                    self.problem(_join(where, key), f"type {kind}: never profiled, so it takes no {key}")
            block = {key: value for key, value in block.items() if key not in ("rules", "thresholds")}
        rules = self.rules(block.get("rules"), _join(where, "rules"), kind)
        thresholds = self.thresholds(block.get("thresholds"), _join(where, "thresholds"))
        if name is None:
            return None
        return Column(name=name, type=kind, source=source, rules=rules, thresholds=thresholds)

    def source(self, raw: Any, where: str) -> Source | None:
        if raw is None:
            return None
        block = self.mapping(raw, where, ("index", "key", "path"))
        if not block:
            if block is not None:
                self.problem(where, "give at least one of index, key, path")
            return None
        index = self.integer(block["index"], _join(where, "index"), low=0, high=2**31) if "index" in block else None
        key = self.text(block.get("key"), _join(where, "key"))
        path = None
        if "path" in block:
            text = self.text(block["path"], _join(where, "path"))
            if text is not None:
                path = tuple(part for part in text.split("."))
                if any(not part for part in path):
                    self.problem(_join(where, "path"), f"empty segment in dotted path {text!r}")
        if path is not None and (index is not None or key is not None):
            self.problem(where, "path cannot be combined with index or key")
        return Source(index=index, key=key, path=path)

    def rules(self, raw: Any, where: str, kind: str) -> Rules:
        keys = ("min", "max", "allowed", "max_missing_ratio", "max_invalid_ratio", "max_out_of_range_ratio",
                "max_not_allowed_ratio", "max_new_category_ratio", "not_constant")
        block = self.mapping(raw, where, keys)
        if not block:
            return Rules()
        values: dict[str, Any] = {}
        for key in ("min", "max"):
            if key in block:
                values[key] = self.number(block[key], _join(where, key))
                if kind != "numeric":
                    self.problem(_join(where, key), "min/max apply to numeric columns; use allowed for categorical")
        if values.get("min") is not None and values.get("max") is not None and values["min"] > values["max"]:
            self.problem(_join(where, "max"), f"max ({values['max']:g}) is below min ({values['min']:g})")
        for key in keys[3:8]:
            if key in block:
                values[key] = self.number(block[key], _join(where, key), low=0.0, high=1.0)
        if "allowed" in block:
            allowed = block["allowed"]
            if not isinstance(allowed, list) or not allowed:
                self.problem(_join(where, "allowed"), f"expected a non-empty list of values, got {_kind(allowed)}")
            elif any(isinstance(item, (dict, list)) or item is None for item in allowed):
                self.problem(_join(where, "allowed"), "values must be scalars")
            else:
                values["allowed"] = frozenset(category(item) for item in allowed)
            if kind != "categorical":
                self.problem(_join(where, "allowed"), "allowed applies to categorical columns")
        if "not_constant" in block:
            if not isinstance(block["not_constant"], bool):
                self.problem(_join(where, "not_constant"), f"expected true or false, got {block['not_constant']!r}")
            else:
                values["not_constant"] = block["not_constant"]
        return replace(Rules(), **{key: value for key, value in values.items() if value is not None})

    def thresholds(self, raw: Any, where: str) -> dict[str, Threshold]:
        block = self.mapping(raw, where, STATISTICS)
        if not block:
            return {}
        result = {}
        for name, levels in block.items():
            if name not in STATISTICS:
                continue
            here = _join(where, name)
            level_block = self.mapping(levels, here, ("warning", "critical"))
            if level_block is None:
                continue
            warning = self.number(level_block.get("warning"), _join(here, "warning"), low=0.0)
            critical = self.number(level_block.get("critical"), _join(here, "critical"), low=0.0)
            if warning is None and critical is None:
                self.problem(here, "give warning, critical or both")
                continue
            if warning is not None and critical is not None and critical < warning:
                self.problem(_join(here, "critical"), f"critical ({critical:g}) is below warning ({warning:g})")
            result[name] = Threshold(warning, critical)
        return result

    def windows(self, raw: Any, where: str) -> tuple[Window, ...] | None:
        if not isinstance(raw, list) or not raw:
            self.problem(where, f"expected a non-empty list of durations such as [5m, 1h], got {_kind(raw)}")
            return None
        windows = []
        for i, item in enumerate(raw):
            seconds = self.duration(item, f"{where}[{i}]")
            if seconds is not None:
                window = Window(format_duration(seconds), seconds)
                if window in windows:
                    self.problem(f"{where}[{i}]", f"window {window.name} is listed twice")
                windows.append(window)
        return tuple(windows) or None

    def reference(self, raw: Any, where: str) -> Reference | None:
        if isinstance(raw, str):
            raw = {"file": raw}
        block = self.mapping(raw, where, ("file", "range", "offset", "warmup"))
        if not block:
            if block is not None:
                self.problem(where, "give one of file, range, offset, warmup")
            return None
        if len(block) != 1:
            self.problem(where, f"give exactly one of file, range, offset, warmup (got {', '.join(map(str, block))})")
            return None
        (kind, value), = block.items()
        here = _join(where, str(kind))
        if kind == "file":
            text = self.text(value, here)
            if text is None:
                return None
            path = text if os.path.isabs(text) else os.path.join(self.base, text)
            return Reference(kind="file", path=path)
        if kind == "range":
            span = self.mapping(value, here, ("start", "end"))
            if span is None:
                return None
            start = self.timestamp(span.get("start"), _join(here, "start"))
            end = self.timestamp(span.get("end"), _join(here, "end"))
            if start is None or end is None:
                if "start" not in span or "end" not in span:
                    self.problem(here, "give both start and end")
                return None
            if end <= start:
                self.problem(_join(here, "end"), "end must be after start")
                return None
            return Reference(kind="range", start=start, end=end)
        seconds = self.duration(value, here)
        if seconds is None:
            return None
        if kind == "offset":
            return Reference(kind="offset", offset=seconds)
        return Reference(kind="warmup", warmup=seconds)

    def timestamp(self, value: Any, where: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                pass
        self.problem(where, f"expected an ISO 8601 time or Unix seconds, got {value!r}")
        return None

    def volume(self, raw: Any, where: str) -> Volume | None:
        block = self.mapping(raw, where, ("min", "max", "per"))
        if block is None:
            return None
        low = self.number(block.get("min"), _join(where, "min"), low=0.0)
        high = self.number(block.get("max"), _join(where, "max"), low=0.0)
        per = self.duration(block.get("per"), _join(where, "per")) if "per" in block else 60.0
        if low is not None and high is not None and high < low:
            self.problem(_join(where, "max"), f"max ({high:g}) is below min ({low:g})")
        return Volume(min=low, max=high, per=per or 60.0)


_UNPROFILED = ("identifier", "timestamp")
_COLUMN_TYPES = ("numeric", "categorical", *_UNPROFILED)


def _unprofiled(columns: tuple[Column, ...]) -> tuple[tuple[Column, ...], tuple[Column, ...]]:
    """(profiled, skipped) columns. Columns after a skipped one keep their place in positional inputs: those
    without a source get their position as ``source.index`` (keyed inputs still find them by name)."""
    skipped = tuple(column for column in columns if column.type in _UNPROFILED)
    if not skipped:
        return columns, ()
    profiled = tuple(column if column.source is not None else replace(column, source=Source(index=position))
                     for position, column in enumerate(columns) if column.type not in _UNPROFILED)
    return profiled, skipped


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    kinds: dict[type, str] = {dict: "a mapping", list: "a list", str: f"the string {value!r}"}
    return kinds.get(type(value), f"{type(value).__name__} {value!r}")
