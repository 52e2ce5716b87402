"""The import cycles among servewatch's own modules, read from the source (nothing is imported).

    .venv/bin/python scripts/import_cycles.py [--all]

Builds the graph module -> module of ``import`` statements (``from . import x`` names the submodule ``x``
where there is one, else the package) and prints each strongly connected component of more than one module
with the edges inside it. By default only imports that run when the module loads count: those at module level,
outside ``if TYPE_CHECKING:``. ``--all`` counts imports inside functions too (a cycle closed only there does not
break loading, but the two modules still know each other). The implicit import of a parent package is no edge.
Exits 1 when there is a cycle.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "servewatch"


def modules(root: Path = ROOT) -> dict[str, Path]:
    """``{dotted name: file}`` of every module under ``root`` (following the subpackage links)."""
    found: dict[str, Path] = {}
    paths = (Path(folder, file) for folder, _, files in os.walk(root, followlinks=True) for file in files)
    for path in sorted(path for path in paths if path.suffix == ".py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module, everywhere: bool) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.append(node)
            elif isinstance(node, ast.If):
                if not _type_checking(node):
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                    visit(block)
            elif isinstance(node, (ast.With, ast.AsyncWith)):
                visit(node.body)
            elif everywhere and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(node.body)
            elif everywhere and isinstance(node, (ast.For, ast.While)):
                visit(node.body)

    visit(tree.body)
    return found


def graph(everywhere: bool = False) -> dict[str, set[str]]:
    """``{module: modules it imports}``, servewatch's own only."""
    known = modules()
    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _imports(ast.parse(path.read_text(), str(path)), everywhere):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                           for alias in node.names]
            edges[name] |= {target for target in targets if target in known and target != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(edges):
        if node not in index:
            connect(node)
    return sorted(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="count imports inside functions too")
    edges = graph(parser.parse_args().all)
    found = cycles(edges)
    for component in found:
        print(f"cycle of {len(component)}:")
        for name in component:
            inside = sorted(edges[name] & set(component))
            print(f"  {name} -> {', '.join(inside)}")
    print(f"{len(found)} cycles among {len(edges)} modules")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
