"""``servewatch demo``: the whole loop on this machine, with drift you can watch.

Usage::

    servewatch demo                      # about a minute and a half; a live view on a terminal
    servewatch demo --fast --no-live     # about a minute, events only (CI)
    servewatch demo --out /tmp/sw-demo   # where the outputs go (default demo-out)

Exit status: 0 when every phase flagged exactly the columns it drifted, 1 when one did not, 2 when a part
could not start (the message names its log), 130 when interrupted. Needs ``servewatch[demo]`` (FastAPI,
uvicorn, matplotlib); Prometheus and Alertmanager are used where installed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fast", action="store_true",
                        help="shorter phases and a 4 s window (about a minute; for CI)")
    parser.add_argument("--out", default="demo-out", type=Path,
                        help="folder for the spec, reference, dashboards, rules, reports, summary.json, logs "
                             "(default %(default)s)")
    parser.add_argument("--no-live", dest="live", action="store_false",
                        help="no live table: print phase changes, flags and pages only")


def run(args: argparse.Namespace) -> int:
    from servewatch.errors import ServewatchError

    try:
        import fastapi  # noqa: F401
        import matplotlib  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise ServewatchError(f"servewatch demo needs {error.name}: pip install 'servewatch[demo]'") from None
    from .runner import Demo

    return Demo(args.out, fast=args.fast, live=args.live).run()
