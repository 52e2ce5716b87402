"""A report people can look at: one picture per drifted column, reference against current, from the sketches.

Usage::

    from servewatch.detectors import compare
    from servewatch.detectors.html_report import write_report

    reports = [compare(reference, current, spec)]
    write_report(reports, {"input": reference}, {"input": current}, "report.html", png="report.png")

or ``servewatch report refs/fraud.pb today.csv --spec servewatch.yaml -o report.html --png``.

Each numeric column gets two panels: the two distributions as densities over common bins (the bins span
the 0.5%-99.5% quantiles of both sketches; mass beyond them is drawn in the edge bins) and the two CDFs with
the KS gap marked. Each categorical column gets the shares of its most frequent categories side by side. The
title carries the statistics, each with its noise level (what sampling alone gives at these counts: a value
at or below it decides nothing), and the severity; the table lists them for every column. The HTML is one
self-contained file (images inlined); the PNG stacks the same pictures. Needs matplotlib (``pip install servewatch[report]``).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ServewatchError
from ..profile import Profile
from .distribution import Categories, Distribution
from .report import ColumnReport, Report

__all__ = ["write_report"]

_COLOURS = {"unknown": "#757575", "ok": "#2e7d32", "warning": "#ef6c00", "critical": "#c62828"}
_REFERENCE, _CURRENT = "#546e7a", "#d81b60"


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        raise ServewatchError("servewatch report needs matplotlib: pip install 'servewatch[report]'") from None
    return pyplot


def write_report(reports: Sequence[Report], references: Mapping[str, Profile], currents: Mapping[str, Profile],
                 path: str, *, png: str | None = None, everything: bool = False) -> list[str]:
    """Write the HTML report (and the stacked PNG when ``png`` is a path). Pictures go to drifted columns,
    or to every column with ``everything``. Returns the names of the pictured columns."""
    pyplot = _pyplot()
    figures: list[tuple[str, Any]] = []
    for report in reports:
        for column in report.columns.values():
            if not everything and column.severity in ("ok", "unknown"):
                continue
            reference = references[report.signal].columns.get(column.name)
            current = currents[report.signal].columns.get(column.name)
            if reference is None or current is None or reference.valid == 0 or current.valid == 0:
                continue
            figure = pyplot.figure(figsize=(10, 3.2))
            if current.is_numeric:
                _numeric(figure, Distribution.of(reference), Distribution.of(current))
            else:
                _categorical(figure, Categories.of(reference), Categories.of(current))
            figure.suptitle(_title(report, column), color=_COLOURS[column.severity], fontsize=11)
            figure.tight_layout()
            figures.append((f"{report.signal}/{column.name}", figure))
    images = [_png_bytes(figure) for _name, figure in figures]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(_html(reports, [name for name, _ in figures], images))
    if png is not None:
        _stack(pyplot, images, png)
    for _name, figure in figures:
        pyplot.close(figure)
    return [name for name, _ in figures]


def _title(report: Report, column: ColumnReport) -> str:
    parts = []
    for name, stat in column.statistics.items():
        if stat.value is None or name in ("chi2",):
            continue
        parts.append(f"{name} {stat.text()}")
    broken = [name for name, rule in column.rules.items() if rule.violated]
    rules = f"  rules broken: {', '.join(broken)}" if broken else ""
    title = f"{report.model} / {report.signal} / {column.name}: {column.severity.upper()}   {'  '.join(parts[:2])}"
    return "\n".join((title, "  ".join(parts[2:4]) + rules))


def _numeric(figure: Any, reference: Distribution, current: Distribution) -> None:
    low = min(reference.quantiles([0.005])[0], current.quantiles([0.005])[0])
    high = max(reference.quantiles([0.995])[0], current.quantiles([0.995])[0])
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, 41)
    density, cumulative = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    for view, colour, label in ((reference, _REFERENCE, "reference"), (current, _CURRENT, "current")):
        cdf = view.cdf_at(edges)
        mass = np.diff(np.concatenate(([0.0], cdf[1:-1], [1.0])))  # tails folded into the edge bins
        density.stairs(mass / np.diff(edges), edges, color=colour, label=label, fill=label == "reference",
                       alpha=0.35 if label == "reference" else 1.0, linewidth=1.6)
        cumulative.step(view.items, view.cdf, where="post", color=colour, label=label, linewidth=1.4)
    points = np.union1d(reference.items, current.items)
    gaps = reference.cdf_at(points) - current.cdf_at(points)
    at = int(np.argmax(np.abs(gaps)))
    cumulative.vlines(points[at], reference.cdf_at(points[at:at + 1])[0], current.cdf_at(points[at:at + 1])[0],
                      color="black", linewidth=2, label=f"KS gap {abs(gaps[at]):.3f}")
    cumulative.set_xlim(low, high)
    cumulative.set_ylim(-0.02, 1.02)
    density.set_title("density", fontsize=9)
    cumulative.set_title("cumulative distribution", fontsize=9)
    density.legend(fontsize=8)
    cumulative.legend(fontsize=8, loc="lower right")


def _categorical(figure: Any, reference: Categories, current: Categories) -> None:
    axes = figure.add_subplot(1, 1, 1)
    names = sorted(set(reference.counts) | set(current.counts),
                   key=lambda name: -(reference.counts.get(name, 0) / max(reference.n, 1)
                                      + current.counts.get(name, 0) / max(current.n, 1)))[:15]
    positions = np.arange(len(names))
    for offset, view, colour, label in ((-0.2, reference, _REFERENCE, "reference"),
                                        (0.2, current, _CURRENT, "current")):
        shares = [view.counts.get(name, 0.0) / max(view.n, 1) for name in names]
        axes.bar(positions + offset, shares, width=0.4, color=colour, label=label)
    axes.set_xticks(positions, [name[:18] for name in names], rotation=30, ha="right", fontsize=8)
    axes.set_ylabel("share")
    axes.legend(fontsize=8)


def _png_bytes(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _stack(pyplot: Any, images: list[bytes], path: str) -> None:
    import matplotlib.image as mpimg

    if not images:
        figure = pyplot.figure(figsize=(6, 1))
        figure.text(0.5, 0.5, "no drifted column", ha="center", va="center")
        figure.savefig(path, dpi=90)
        pyplot.close(figure)
        return
    arrays = [mpimg.imread(io.BytesIO(image), format="png") for image in images]
    width = max(array.shape[1] for array in arrays)
    padded = [np.pad(array, ((0, 0), (0, width - array.shape[1]), (0, 0)), constant_values=1.0) for array in arrays]
    mpimg.imsave(path, np.concatenate(padded, axis=0))


def _html(reports: Sequence[Report], names: list[str], images: list[bytes]) -> str:
    rows = []
    for report in reports:
        for column in report.columns.values():
            stats = ", ".join(f"{name} {stat.text()}" for name, stat in column.statistics.items()
                              if stat.value is not None and name in ("ks", "d1", "psi", "linf"))
            broken = ", ".join(name for name, rule in column.rules.items() if rule.violated) or "-"
            rows.append(f"<tr><td>{html.escape(report.signal)}</td><td>{html.escape(column.name)}</td>"
                        f"<td>{column.samples}</td><td>{html.escape(stats)}</td><td>{html.escape(broken)}</td>"
                        f"<td style='color:{_COLOURS[column.severity]}'><b>{column.severity}</b></td></tr>")
    pictures = "".join(f"<h3>{html.escape(name)}</h3><img alt='{html.escape(name)}' "
                       f"src='data:image/png;base64,{base64.b64encode(image).decode()}'>"
                       for name, image in zip(names, images)) or "<p>No column drifted.</p>"
    model = html.escape(reports[0].model) if reports else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>servewatch report: {model}</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;text-align:left}"
            "img{max-width:100%}</style></head><body>"
            f"<h1>servewatch report: {model}</h1><table><tr><th>signal</th><th>column</th><th>n</th>"
            f"<th>statistics</th><th>rules broken</th><th>severity</th></tr>{''.join(rows)}</table>"
            f"<h2>Drifted columns</h2>{pictures}</body></html>")
