"""The samples of a framework's Prometheus text exposition (TorchServe's metrics API, Triton's :8002), read
with ``prometheus_client.parser``.

Usage::

    from servewatch.instrumentation.exposition import samples

    for name, labels, value in samples(text, {"nv_inference_count", "nv_gpu_utilization"}):
        ...                                       # ("nv_inference_count", {"model": "resnet", ...}, 400.0)

As lenient as a bridge must be: when the text does not parse as a whole, it is read line by line and a line
the parser cannot read is skipped (and handed to ``skipped``), so one bad line loses only itself. ``names`` are
family names as exposed, without a ``_total`` suffix (the parser adds one to a ``counter``'s samples).
``prometheus_client`` loads on the first call, not with this module (the frameworks import their bridges in
every worker).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import Metric

__all__ = ["samples"]


def samples(text: str, names: Collection[str], skipped: Callable[[str], None] | None = None,
            ) -> Iterator[tuple[str, dict[str, str], float]]:
    """``(family name, labels, value)`` of each sample of the families in ``names``, in the order of ``text``."""
    for family in _families(text, skipped):
        if family.name in names:
            for sample in family.samples:
                if sample.name in (family.name, family.name + "_total"):
                    yield family.name, sample.labels, float(sample.value)


def _families(text: str, skipped: Callable[[str], None] | None) -> list[Metric]:
    from prometheus_client.parser import text_string_to_metric_families

    try:
        return list(text_string_to_metric_families(text))
    except Exception:  # noqa: BLE001 - a line it cannot read: read the lines one by one
        pass
    families: list[Metric] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            families += text_string_to_metric_families(line)
        except Exception:  # noqa: BLE001 - skipped, as documented
            if skipped is not None:
                skipped(line)
    return families
