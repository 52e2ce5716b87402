"""The result of one statistic between a reference and a current column.

    >>> stat = ks(reference_column, current_column)
    >>> stat.value, stat.bound        # 0.137, 0.0266: the sketched KS and its sketch error bound
    >>> short = ks(reference_column, tiny_column)
    >>> short.value, short.reason     # None, 'too few values in current (12 < 100)'
"""

from __future__ import annotations

from dataclasses import dataclass

from ..column import ColumnProfile

__all__ = ["Statistic", "too_few"]


@dataclass(frozen=True)
class Statistic:
    """``value`` of statistic ``name``, or ``None`` with a ``reason`` when it could not be computed.

    ``bound`` is the error the sketches may add to ``value`` (for ``ks``: the sum of the two sketches'
    normalized rank errors, 0 where a sketch is still exact); ``None`` where no bound is known.
    """

    name: str
    value: float | None
    bound: float | None = None
    reason: str | None = None
    noise: float | None = None

    @property
    def available(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict[str, float | str | None]:
        result: dict[str, float | str | None] = {"value": self.value}
        if self.bound is not None:
            result["bound"] = self.bound
        if self.reason is not None:
            result["reason"] = self.reason
        if self.noise is not None:
            result["noise"] = self.noise
        return result


def too_few(name: str, reference: ColumnProfile, current: ColumnProfile, min_samples: int) -> Statistic | None:
    """A value-less Statistic saying why ``name`` cannot be computed on these columns, or None when it can."""
    if reference.kind != current.kind:
        return Statistic(name, None, reason=f"reference is {reference.kind}, current is {current.kind}")
    for side, column in (("reference", reference), ("current", current)):
        if column.valid < min_samples:
            return Statistic(name, None, reason=f"too few values in {side} ({column.valid} < {min_samples})")
    return None
