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
``run(args) -> int``; only the chosen one is imported. The rule: a subcommand lives in the package whose work it
runs. This module holds the core's own (``validate``, ``reference``: specs, data files and profiles); ``compare``
and ``report`` run the detectors library and live in :mod:`servewatch.detectors.command`, ``detect`` in
:mod:`servewatch.detectors.service.command`, and so on. Bad input exits 2 with a one-line reason on stderr, never
a traceback (``SERVEWATCH_DEBUG=1`` shows one for an unexpected error); a closed pipe (``| head``) ends it
quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import urllib.parse
from collections.abc import Sequence
from typing import Any, NoReturn

from . import __version__
from .errors import ServewatchError

__all__ = ["COMMANDS", "http_url", "left_out_text", "main", "model_of"]

COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("servewatch.cli", "check a spec file: prints OK or every problem (exit 1)"),
    "reference": ("servewatch.cli", "build a reference profile from training data (CSV, Parquet, .npy)"),
    "compare": ("servewatch.detectors.command", "compare two profiles or data files: drift statistics and rules"),
    "detect": ("servewatch.detectors.service.command", "run the detector: OTLP in, drift gauges on /metrics"),
    "report": ("servewatch.detectors.command", "an HTML (and PNG) report with a picture per drifted column"),
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

    model = model_of(load_spec(args.spec), args.model) if args.spec else None
    reading = read_profiles(args.data, spec=model, model=args.model)
    data = encode_profiles(reading.profiles)
    with open(args.output, "wb") as handle:
        handle.write(data)
    for profile in reading.profiles:
        print(f"{args.output}: {profile.model}/{profile.signal}: {profile.rows} rows, "
              f"{len(profile.columns)} columns")
    if reading.left_out:
        print(f"left out of the profile (and of drift): {left_out_text(reading.left_out)}")
    return 0


def model_of(spec: Any, name: str) -> Any:
    """The spec of model ``name``; a spec that lists models but not this one is an error (a typo)."""
    if spec.models and not spec.has_model(name):
        raise ServewatchError(f"{spec.path}: lists no model {name!r} (it lists: "
                              f"{', '.join(model.name for model in spec.models)})")
    return spec.model(name)


def left_out_text(columns: dict[str, str]) -> str:
    """``name: why, ...`` of the columns a data file left out of the profile (sorted by name)."""
    return ", ".join(f"{name}: {why}" for name, why in sorted(columns.items()))


if __name__ == "__main__":
    sys.exit(main())
