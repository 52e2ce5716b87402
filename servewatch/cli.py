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
    servewatch --version

Each subcommand lives in the module named in ``COMMANDS`` and provides ``add_arguments(parser)`` and
``run(args) -> int``; only the chosen one is imported. Bad input exits 2 with a one-line reason on stderr, never
a traceback (``SERVEWATCH_DEBUG=1`` shows one for an unexpected error); a closed pipe (``| head``) ends it
quietly.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import urllib.parse
from collections.abc import Sequence
from typing import Any, NoReturn

from . import __version__
from .errors import ServewatchError

__all__ = ["COMMANDS", "http_url", "main"]

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


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _Parser(prog="servewatch", description="Drift and data-quality observability for model serving.")
    parser.add_argument("--version", action="version", version=f"servewatch {__version__}")
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
        status = int(_runner(module, args.command)(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return status
    except BrokenPipeError:  # `servewatch compare ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 (the command line's promise: one line, never a traceback)
        if os.environ.get("SERVEWATCH_DEBUG"):
            raise
        print(f"servewatch {args.command}: {_reason(error)}", file=sys.stderr)
        return 2


def _reason(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    lines = str(error).strip().splitlines()
    if isinstance(error, ServewatchError):
        return lines[0] if lines else type(error).__name__
    return f"unexpected {type(error).__name__}: {lines[0] if lines else ''} (SERVEWATCH_DEBUG=1 shows where)"


def http_url(text: str) -> str:
    """An argparse ``type``: an http(s) URL with a host, else the reason (for --grafana-url, --url, ...)."""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s) URL such as http://host:port/path")
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: {error}") from None
    return text


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
        problems = _reference_problems(spec)
    except SpecError as error:
        problems = error.problems
    if problems:
        for problem in problems:
            print(problem)
        print(f"servewatch validate: {args.spec}: {len(problems)} problem(s), listed above", file=sys.stderr)
        return 1
    print(f"OK: {args.spec}: {len(spec.models)} model(s)")
    return 0


def _reference_problems(spec: Any) -> list[str]:
    """Each model's reference file must exist and hold profiles of that model."""
    from .dataset import read_profiles

    problems = []
    for i, model in enumerate(spec.models):
        if model.reference.kind != "file" or model.reference.path is None:
            continue
        where = f"{spec.path}: models[{i}].reference"
        try:
            profiles = read_profiles(model.reference.path).profiles
        except (OSError, ServewatchError) as error:
            problems.append(f"{where}: {_reason(error)}")
            continue
        if not any(profile.model == model.name for profile in profiles):
            found = sorted({profile.model for profile in profiles})
            problems.append(f"{where}: {model.reference.path} holds no profile of model {model.name!r} "
                            f"(it holds: {', '.join(found) or 'none'})")
    return problems


# -- reference ----------------------------------------------------------------------------------------------

def add_reference_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help="training data: .csv, .parquet, .arrow (Feather) or .npy")
    parser.add_argument("--spec", help="servewatch.yaml (column names, types, rules); optional")
    parser.add_argument("--model", required=True, help="model name, as the server reports it")
    parser.add_argument("-o", "--output", required=True, help="where to write the reference profile (.pb)")


def run_reference(args: argparse.Namespace) -> int:
    from .dataset import read_profiles
    from .spec import load_spec
    from .wire import encode_profiles

    model = _model_spec(load_spec(args.spec), args.model) if args.spec else None
    reading = read_profiles(args.data, spec=model, model=args.model)
    data = encode_profiles(reading.profiles)
    with open(args.output, "wb") as handle:
        handle.write(data)
    for profile in reading.profiles:
        print(f"{args.output}: {profile.model}/{profile.signal}: {profile.rows} rows, "
              f"{len(profile.columns)} columns")
    if reading.left_out:
        print(f"left out of the profile (and of drift): {_left_out(reading.left_out)}")
    return 0


def _model_spec(spec: Any, name: str) -> Any:
    """The spec of model ``name``; a spec that lists models but not this one is an error (a typo)."""
    if spec.models and not spec.has_model(name):
        raise ServewatchError(f"{spec.path}: lists no model {name!r} (it lists: "
                              f"{', '.join(model.name for model in spec.models)})")
    return spec.model(name)


def _left_out(columns: dict[str, str]) -> str:
    return ", ".join(f"{name}: {why}" for name, why in sorted(columns.items()))


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
    from .dataset import is_data_file, read_profiles
    from .detectors import compare
    from .spec import Spec, load_spec

    spec = load_spec(args.spec) if args.spec else Spec()
    model = args.model
    if model is None and not is_data_file(args.reference):
        model = read_profiles(args.reference).profiles[0].model
    if model is None:
        if len(spec.models) > 1:
            raise ServewatchError(f"{spec.path} lists {len(spec.models)} models "
                                  f"({', '.join(m.name for m in spec.models)}): say which with --model")
        model = spec.models[0].name if spec.models else "default"
    model_spec = _model_spec(spec, model)
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
    from .detectors import SEVERITIES, worst_severity

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
            print(f"left out of drift: {_left_out(left_out)}")
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


if __name__ == "__main__":
    sys.exit(main())
