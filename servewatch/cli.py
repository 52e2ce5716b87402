"""The ``servewatch`` command.

Usage::

    servewatch validate servewatch.yaml
    servewatch reference --spec servewatch.yaml --model fraud train.csv -o refs/fraud.pb
    servewatch compare refs/fraud.pb today.csv --spec servewatch.yaml --format table --fail-on critical
    servewatch detect --spec servewatch.yaml              # the detector service
    servewatch dashboards --spec servewatch.yaml -o out/   # Grafana dashboards
    servewatch alerts --spec servewatch.yaml -o rules.yml  # Prometheus rules + Alertmanager example
    servewatch report refs/fraud.pb today.csv -o report.html
    servewatch demo

Each subcommand lives in the module named in ``COMMANDS`` and provides ``add_arguments(parser)`` and
``run(args) -> int``; only the chosen one is imported. Bad input exits 2 with a one-line reason.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from typing import Any

from .errors import ServewatchError

__all__ = ["COMMANDS", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("servewatch.cli", "check a spec file: prints OK or every problem (exit 1)"),
    "reference": ("servewatch.cli", "build a reference profile from training data (CSV, Parquet, .npy)"),
    "compare": ("servewatch.cli", "compare two profiles or data files: drift statistics and rules"),
    "detect": ("servewatch.detectors.service.command", "run the detector: OTLP in, drift gauges on /metrics"),
    "report": ("servewatch.cli", "an HTML (and PNG) report with a picture per drifted column"),
    "triton-bridge": ("servewatch.instrumentation.triton.bridge",
                      "report a Triton server's :8002 metrics under servewatch names"),
    "dashboards": ("servewatch.dashboards.cli", "Grafana dashboards of a spec (JSON + provisioning), optional upload"),
    "alerts": ("servewatch.alerts.cli", "Prometheus alert and recording rules of a spec, unit tests, Alertmanager example"),
    "demo": ("servewatch.demo.command", "the whole loop on this machine: a served model, drift, detector, alerts"),
}
"""Subcommand -> (module holding its ``add_arguments``/``run``, one-line help). Packages add theirs here."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="servewatch", description="Drift and data-quality observability "
                                     "for model serving.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            _arguments(module, name)(sub)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(_runner(module, args.command)(args) or 0)
    except ServewatchError as error:
        print(f"servewatch {args.command}: {str(error).splitlines()[0] if _one_line(args) else error}",
              file=sys.stderr)
        return 2
    except OSError as error:
        print(f"servewatch {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _one_line(args: argparse.Namespace) -> bool:
    return args.command != "validate"


def _arguments(module: Any, name: str) -> Any:
    return getattr(module, f"add_{name}_arguments", None) or module.add_arguments


def _runner(module: Any, name: str) -> Any:
    return getattr(module, f"run_{name}", None) or module.run


# -- validate -----------------------------------------------------------------------------------------------

def add_validate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="path of servewatch.yaml")


def run_validate(args: argparse.Namespace) -> int:
    from .errors import SpecError
    from .spec import load_spec

    try:
        spec = load_spec(args.spec)
    except SpecError as error:
        for problem in error.problems:
            print(problem)
        return 1
    print(f"OK: {args.spec}: {len(spec.models)} model(s)")
    return 0


# -- reference ----------------------------------------------------------------------------------------------

def add_reference_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="training data: .csv, .parquet or .npy")
    parser.add_argument("--spec", help="servewatch.yaml (column names, types, rules); optional")
    parser.add_argument("--model", required=True, help="model name, as the server reports it")
    parser.add_argument("-o", "--output", required=True, help="where to write the reference profile (.pb)")


def run_reference(args: argparse.Namespace) -> int:
    from .dataset import read_profiles
    from .spec import load_spec
    from .wire import encode_profiles

    model = load_spec(args.spec).model(args.model) if args.spec else None
    profiles = read_profiles(args.data, spec=model, model=args.model)
    data = encode_profiles(profiles)
    with open(args.output, "wb") as handle:
        handle.write(data)
    for profile in profiles:
        print(f"{args.output}: {profile.model}/{profile.signal}: {profile.rows} rows, "
              f"{len(profile.columns)} columns")
    return 0


# -- compare ------------------------------------------------------------------------------------------------

def add_compare_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", help="reference: a profile file (.pb) or a data file")
    parser.add_argument("current", help="current: a profile file (.pb) or a data file")
    parser.add_argument("--spec", help="servewatch.yaml (thresholds, rules, columns); optional")
    parser.add_argument("--model", help="model name (default: the reference profile's)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--fail-on", choices=("warning", "critical"),
                        help="exit 1 when the worst severity reaches this level (for CI)")


def _compare_inputs(args: argparse.Namespace) -> tuple[str, dict[str, Any], dict[str, Any], list[Any]]:
    """(model, reference profiles by signal, current profiles by signal, one report per shared signal)."""
    from .dataset import is_data_file, read_profiles
    from .detectors import compare
    from .spec import Spec, load_spec

    spec = load_spec(args.spec) if args.spec else Spec()
    model = args.model
    if model is None and not is_data_file(args.reference):
        model = read_profiles(args.reference)[0].model
    if model is None:
        model = spec.models[0].name if len(spec.models) == 1 else "default"
    model_spec = spec.model(model)
    references = {p.signal: p for p in read_profiles(args.reference, spec=model_spec, model=model)}
    currents = {p.signal: p for p in read_profiles(args.current, spec=model_spec, model=model)}
    reports = [compare(references[signal], current, model_spec) for signal, current in currents.items()
               if signal in references]
    if not reports:
        raise ServewatchError("the two inputs share no signal to compare (input / prediction)")
    return model, references, currents, reports


def run_compare(args: argparse.Namespace) -> int:
    from .detectors import SEVERITIES, worst_severity

    model, _references, _currents, reports = _compare_inputs(args)
    severity = worst_severity([report.severity for report in reports])
    if args.format == "json":
        columns: dict[str, Any] = {}
        for report in reports:
            columns.update(report.to_dict()["columns"])
        print(json.dumps({"model": model, "severity": severity, "columns": columns}, indent=2))
    else:
        for report in reports:
            print(f"{report.model} / {report.signal}: {report.rows} rows, severity {report.severity}")
            print(report.table())
            print()
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
    import os

    from .detectors.html_report import write_report

    _model, references, currents, reports = _compare_inputs(args)
    png = os.path.splitext(args.output)[0] + ".png" if args.png else None
    pictured = write_report(reports, references, currents, args.output, png=png, everything=args.all)
    print(f"{args.output}: {len(pictured)} picture(s)" + (f"; {png}" if png else "")
          + (f": {', '.join(pictured)}" if pictured else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
