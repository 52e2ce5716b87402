"""OpenTelemetry names and units to Prometheus metric and label names (the OTel compatibility spec).

Usage::

    from servewatch.detectors.service.prometheus_names import label_name, metric_name, prometheus_unit

    metric_name("servewatch.inference.duration", "s", "histogram")   # 'servewatch_inference_duration_seconds'
    metric_name("servewatch.inference.requests", "{request}", "counter")  # 'servewatch_inference_requests'
    metric_name("hw.gpu.utilization", "1", "gauge")                  # 'hw_gpu_utilization_ratio'
    label_name("ml.model.name")                                     # 'ml_model_name'
    label_value(any_value)                  # an OTLP AnyValue as label text: strings as they are, others as JSON
    target_labels(resource, cut=1024)       # {"job": "namespace/name", "instance": "<service.instance.id>"}

The rules: characters outside ``[a-zA-Z0-9_:]`` become ``_`` and runs of ``_`` collapse to one; a leading
digit gets a ``_`` in front (label names: ``key_``). The unit is translated (``s`` -> ``seconds``, ``ms`` ->
``milliseconds``, ``By`` -> ``bytes``, ``KiBy`` -> ``kibibytes``, ``%`` -> ``percent``, ``m/s`` ->
``meters_per_second``, ...), ``{annotations}`` are dropped, ``1`` becomes ``ratio`` for gauges (a counter or
histogram of unit 1 is a plain count and gets no suffix), and the unit is appended unless the name already
ends with it. :func:`metric_name` returns the family name *without* the type suffix: counters get ``_total`` and
histograms ``_bucket``/``_sum``/``_count`` when they are written out (a name already ending in ``_total`` is
not given a second one).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from prometheus_client.utils import floatToGoString

__all__ = ["label_name", "label_value", "metric_name", "prometheus_unit", "sanitize", "target_labels"]

_INVALID_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_UNDERSCORES = re.compile(r"__+")
_ANNOTATION = re.compile(r"\{[^}]*\}")

_UNITS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds",
    "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes",
    "TiBy": "tebibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams", "Cel": "celsius",
    "Hz": "hertz", "%": "percent", "bit": "bits", "Bi": "bits",
}
_PER_UNITS = {"s": "second", "m": "minute", "min": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month",
              "y": "year"}


def sanitize(name: str) -> str:
    """``name`` with invalid characters replaced and ``_`` runs collapsed (a metric name)."""
    text = _UNDERSCORES.sub("_", _INVALID_NAME.sub("_", name))
    if text[:1].isdigit():
        text = "_" + text
    return text or "_"


def label_name(key: str) -> str:
    """A Prometheus label name for attribute ``key`` (``ml.model.name`` -> ``ml_model_name``)."""
    text = _UNDERSCORES.sub("_", _INVALID_LABEL.sub("_", key))
    if text[:1].isdigit():
        text = "key_" + text
    return text or "key_"


def prometheus_unit(unit: str, kind: str) -> str:
    """The Prometheus unit word for an OTel (UCUM) ``unit`` of a metric of ``kind`` ('' for none)."""
    unit = _ANNOTATION.sub("", unit or "").strip()
    if not unit:
        return ""
    if unit == "1":
        return "ratio" if kind == "gauge" else ""
    if unit in _UNITS:
        return _UNITS[unit]
    if "/" in unit:
        top, bottom = (part.strip() for part in unit.split("/", 1))
        bottom_word = _PER_UNITS.get(bottom, _UNITS.get(bottom, _clean(bottom)))
        top_word = "" if top == "1" else _UNITS.get(top, _clean(top))
        if bottom_word:
            return f"{top_word}_per_{bottom_word}" if top_word else f"per_{bottom_word}"
        return top_word
    return _clean(unit)


def metric_name(name: str, unit: str, kind: str) -> str:
    """The Prometheus family name of OTel metric ``name`` with ``unit``; ``kind`` is ``counter``,
    ``gauge``, ``histogram`` or ``summary`` (see the module docstring)."""
    base = sanitize(name).strip("_") or "_"
    if kind == "counter" and base.endswith("_total"):
        base = base[: -len("_total")] or "_"
    word = prometheus_unit(unit, kind)
    if word and not base.endswith(f"_{word}") and base != word:
        base = f"{base}_{word}"
    if base[:1].isdigit():
        base = "_" + base
    return base


def target_labels(resource: dict[str, Any], cut: int) -> dict[str, str]:
    """``job`` (``service.namespace/service.name``) and ``instance`` (``service.instance.id``), cut at ``cut``."""
    name = label_value(resource["service.name"]) if "service.name" in resource else ""
    namespace = label_value(resource["service.namespace"]) if "service.namespace" in resource else ""
    job = f"{namespace}/{name}" if namespace and name else name
    instance = label_value(resource["service.instance.id"]) if "service.instance.id" in resource else ""
    return {"job": job[:cut], "instance": instance[:cut]}


def label_value(value: Any) -> str:
    """An OTLP ``AnyValue`` as label text (strings as they are, other types as JSON)."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "int_value":
        return str(value.int_value)
    if which == "double_value":
        number = value.double_value
        return repr(number) if math.isfinite(number) else floatToGoString(number)
    if which == "bytes_value":
        import base64

        return base64.b64encode(value.bytes_value).decode()
    if which == "array_value":
        return json.dumps([label_value(item) for item in value.array_value.values])
    if which == "kvlist_value":
        return json.dumps({kv.key: label_value(kv.value) for kv in value.kvlist_value.values})
    return ""


def _clean(text: str) -> str:
    return _UNDERSCORES.sub("_", _INVALID_LABEL.sub("_", text)).strip("_")
