"""``servewatch compare`` and ``servewatch report``: the detectors library on two profiles or data files.

Usage::

    servewatch compare refs/fraud.pb today.csv --spec servewatch.yaml --format table --fail-on critical
    servewatch compare train.csv today.parquet --model fraud --format json       # data files profiled first
    servewatch report refs/fraud.pb today.csv -o report.html [--png] [--all]      # a picture per drifted column

Each input is a profile file (``.pb``, as ``servewatch reference`` writes) or a data file read with the spec's
columns; the model is ``--model``, else the reference profile's, else the spec's only model. ``compare`` prints
every statistic and rule per signal (``--fail-on`` exits 1 at that severity, for CI); ``report`` writes the HTML
page of :mod:`servewatch.detectors.html_report`. Dispatched by :mod:`servewatch.cli` (bad input: one line on
stderr, exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from ..cli import left_out_text, model_of
from ..errors import ServewatchError

__all__ = ["add_compare_arguments", "add_report_arguments", "run_compare", "run_report"]


# -- compare ------------------------------------------------------------------------------------------------

def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", help="reference: a profile file (.pb) or a data file")
    parser.add_argument("current", help="current: a profile file (.pb) or a data file")
    parser.add_argument("--spec", help="servewatch.yaml (thresholds, rules, columns); optional")
    parser.add_argument("--model", help="model name (default: the reference profile's)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--fail-on", choices=("warning", "critical"),
                        help="exit 1 when the worst severity reaches this level (for CI)")


def _compare_inputs(args: argparse.Namespace) -> tuple[str, dict[str, Any], dict[str, Any], list[Any], dict[str, str]]:
    """(model, reference profiles by signal, current profiles by signal, one report per shared signal, the
    columns left out of drift and why)."""
    from ..dataset import is_data_file, read_profiles
    from ..spec import Spec, load_spec
    from .report import compare

    spec = load_spec(args.spec) if args.spec else Spec()
    model = args.model
    if model is None and not is_data_file(args.reference):
        model = read_profiles(args.reference).profiles[0].model
    if model is None:
        if len(spec.models) > 1:
            raise ServewatchError(f"{spec.path} lists {len(spec.models)} models "
                                  f"({', '.join(m.name for m in spec.models)}): say which with --model")
        model = spec.models[0].name if spec.models else "default"
    model_spec = model_of(spec, model)
    reference = read_profiles(args.reference, spec=model_spec, model=model)
    current = read_profiles(args.current, spec=model_spec, model=model)
    left_out = {**current.left_out, **reference.left_out}
    references = {p.signal: p for p in reference.profiles}
    currents = {p.signal: p for p in current.profiles}
    for profile in [*references.values(), *currents.values()]:
        for name in left_out:
            profile.columns.pop(name, None)
    reports = [compare(references[signal], profile, model_spec) for signal, profile in currents.items()
               if signal in references]
    if not reports:
        raise ServewatchError("the two inputs share no signal to compare (input / prediction)")
    return model, references, currents, reports, left_out


def run_compare(args: argparse.Namespace) -> int:
    from .report import SEVERITIES, worst_severity

    model, _references, _currents, reports, left_out = _compare_inputs(args)
    severity = worst_severity([report.severity for report in reports])
    if args.format == "json":
        columns: dict[str, Any] = {}
        for report in reports:
            columns.update(report.to_dict()["columns"])
        print(json.dumps({"model": model, "severity": severity, "columns": columns, "left_out": left_out},
                         indent=2))
    else:
        for report in reports:
            print(f"{report.model} / {report.signal}: {report.rows} rows, severity {report.severity}")
            print(report.table())
            print()
        if left_out:
            print(f"left out of drift: {left_out_text(left_out)}")
    if args.fail_on and SEVERITIES.index(severity) >= SEVERITIES.index(args.fail_on):
        return 1
    return 0


# -- report -------------------------------------------------------------------------------------------------

def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", help="reference: a profile file (.pb) or a data file")
    parser.add_argument("current", help="current: a profile file (.pb) or a data file")
    parser.add_argument("--spec", help="servewatch.yaml (thresholds, rules, columns); optional")
    parser.add_argument("--model", help="model name (default: the reference profile's)")
    parser.add_argument("-o", "--output", default="report.html", help="the HTML file to write")
    parser.add_argument("--png", action="store_true", help="also write the pictures as one PNG beside it")
    parser.add_argument("--all", action="store_true", help="a picture for every column, not only drifted ones")


def run_report(args: argparse.Namespace) -> int:
    from .html_report import write_report

    stem, suffix = os.path.splitext(args.output)
    if suffix.lower() not in (".html", ".htm"):
        raise ServewatchError(f"-o {args.output}: the report is an HTML page; name it {stem}.html "
                              "(--png adds the pictures as a PNG beside it)")
    _model, references, currents, reports, _left_out = _compare_inputs(args)
    png = stem + ".png" if args.png else None
    pictured = write_report(reports, references, currents, args.output, png=png, everything=args.all)
    print(f"{args.output}: {len(pictured)} picture(s)" + (f"; {png}" if png else "")
          + (f": {', '.join(pictured)}" if pictured else ""))
    return 0
