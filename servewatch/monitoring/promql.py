"""PromQL text built safely from names that come from a spec: quoted strings, matchers, selectors.

Usage::

    from servewatch.monitoring.promql import selector, one_of

    selector("servewatch_drift_ks", model="fraud", feature=one_of(["amount", "age"]))
    # 'servewatch_drift_ks{feature=~"amount|age",model="fraud"}'
    selector("servewatch_drift_ks", feature=none_of(["a.b"]))
    # 'servewatch_drift_ks{feature!~"a\\\\.b"}'

A keyword value is an equality matcher; :func:`one_of`, :func:`none_of` and :class:`Matcher` give the other
operators. Label values are escaped for PromQL strings and regular-expression metacharacters are escaped in
regex matchers, so a feature called ``a.b`` or ``"x"`` cannot change a query's meaning. Matchers are sorted by
label name so the generated text is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Matcher", "none_of", "one_of", "quote", "regex_escape", "selector"]

_REGEX_SPECIAL = set("\\.+*?()|[]{}^$")


def quote(text: str) -> str:
    """``text`` as a double-quoted PromQL string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def regex_escape(text: str) -> str:
    """``text`` with RE2 metacharacters escaped, so it matches itself only."""
    return "".join(f"\\{char}" if char in _REGEX_SPECIAL else char for char in text)


@dataclass(frozen=True)
class Matcher:
    """One label matcher: ``op`` is ``=``, ``!=``, ``=~`` or ``!~``; ``value`` is used as written."""

    op: str
    value: str

    def render(self, label: str) -> str:
        return f"{label}{self.op}{quote(self.value)}"


def one_of(values: Iterable[str]) -> Matcher:
    """A matcher for any of ``values`` (exactly, not as patterns); a single value becomes ``=``."""
    items = sorted(set(values))
    if not items:
        raise ValueError("one_of needs at least one value")
    if len(items) == 1:
        return Matcher("=", items[0])
    return Matcher("=~", "|".join(regex_escape(item) for item in items))


def none_of(values: Iterable[str]) -> Matcher:
    """A matcher for anything but ``values``; a single value becomes ``!=``."""
    items = sorted(set(values))
    if not items:
        raise ValueError("none_of needs at least one value")
    if len(items) == 1:
        return Matcher("!=", items[0])
    return Matcher("!~", "|".join(regex_escape(item) for item in items))


def selector(metric: str, **labels: str | Matcher | None) -> str:
    """``metric{label="value",...}``; a ``None`` value is left out, a :class:`Matcher` keeps its operator."""
    parts = []
    for label in sorted(labels):
        value = labels[label]
        if value is None:
            continue
        parts.append((value if isinstance(value, Matcher) else Matcher("=", value)).render(label))
    return f"{metric}{{{','.join(parts)}}}" if parts else metric
