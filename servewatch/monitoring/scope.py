"""Which models a set of rules covers: each model the spec lists, then every other model under the defaults.

Usage::

    from servewatch.monitoring import scopes, statistics_of

    for scope in scopes(spec):
        scope.model          # the ModelSpec whose thresholds, windows and rules apply
        scope.label          # the `model` matcher: "fraud", or !~"fraud|credit" for the unlisted ones
        scope.listed         # False for the catch-all scope
        statistics_of(scope, "input")   # the statistics with a threshold that apply to its inputs

The detector evaluates a model the spec does not list with the spec's defaults (automatic columns, default
windows and thresholds), so its rules are the catch-all scope's; a spec with no models has only that scope.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..metrics import CATEGORICAL_STATISTICS, NUMERIC_STATISTICS, STATISTICS
from ..spec import Column, ModelSpec, Spec
from .promql import Matcher, none_of

__all__ = ["Scope", "scopes", "statistics_of"]


@dataclass(frozen=True)
class Scope:
    """One listed model, or (``listed`` False) every model the spec does not list."""

    model: ModelSpec
    label: str | Matcher | None
    listed: bool

    @property
    def title(self) -> str:
        return f"model {self.model.name}" if self.listed else "models not listed in the spec"

    @property
    def group(self) -> str:
        """A rule-group name unique within the file."""
        return f"servewatch.model:{self.model.name}" if self.listed else "servewatch.unlisted-models"

    @property
    def labels(self) -> dict[str, str]:
        """Static labels of this scope's rules: a listed model's name (no two rules share name and labels)."""
        return {"model": self.model.name} if self.listed else {}

    def columns(self, signal: str) -> tuple[Column, ...]:
        return self.model.columns(signal) if self.listed else ()


def scopes(spec: Spec) -> list[Scope]:
    """The listed models in spec order, then the catch-all scope."""
    listed = [Scope(model, model.name, True) for model in spec.models]
    names = [model.name for model in spec.models]
    return [*listed, Scope(spec.defaults, none_of(names) if names else None, False)]


def statistics_of(scope: Scope, signal: str) -> list[str]:
    """The statistics with a threshold that apply to a column of ``signal`` (every statistic with a threshold
    when the spec lists no columns: automatic columns may be of either type)."""
    columns = scope.columns(signal)
    named = set(scope.model.thresholds) | {name for column in columns for name in column.thresholds}
    if columns:
        kinds = {column.type for column in columns}
        applicable = set(NUMERIC_STATISTICS if "numeric" in kinds else ()) | set(
            CATEGORICAL_STATISTICS if "categorical" in kinds else ()
        )
        named &= applicable
    return [name for name in STATISTICS if name in named]
