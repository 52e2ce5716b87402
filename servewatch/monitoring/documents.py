"""YAML documents as Prometheus, Alertmanager and Grafana read them: deterministic, so generated files diff
cleanly.

Usage::

    from servewatch.monitoring import dump_yaml

    open("alertmanager.yml", "w").write(dump_yaml({"route": {"receiver": "tickets"}}))

Keys keep their insertion order, every collection is block style, multi-line strings (long PromQL) are ``|``
literals, nothing is aliased and no line is wrapped.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["dump_yaml"]


class _Dumper(yaml.SafeDumper):
    """Block style everywhere; multi-line strings as ``|`` literals; no aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def dump_yaml(document: Any) -> str:
    """``document`` as deterministic block-style YAML (insertion order kept, no line wrapping)."""
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1 << 16, allow_unicode=True
    )
