"""``servewatch dashboards``: the Grafana dashboards of a spec, written as files and optionally uploaded.

Usage::

    servewatch dashboards --spec servewatch.yaml -o out/dashboards
    # out/dashboards/servewatch-overview.json, servewatch-model-<name>.json, servewatch-other-models.json,
    # and servewatch-dashboards.yaml (file provisioning: copy it to Grafana's provisioning/dashboards/)
    servewatch dashboards --spec servewatch.yaml -o out/dashboards \\
        --grafana-url https://grafana.example.com --grafana-token "$GRAFANA_TOKEN"

The objective options (``--availability``, ``--latency-p99``, ``--time-scale``) are those of
``servewatch alerts``: give both commands the same values and the lines the panels draw are the levels the
alerts fire at. ``--grafana-token`` defaults to the ``GRAFANA_TOKEN`` environment variable (a service-account
token with the Editor role).
"""

from __future__ import annotations

import argparse
import os

from servewatch.cli import http_url
from servewatch.monitoring import add_config_arguments, config_from_args
from servewatch.spec import load_spec

from . import PROVISIONING_FILE, generate, upload, write

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", required=True, help="servewatch.yaml")
    parser.add_argument(
        "-o", "--output", required=True, help="directory for the JSON files and the provisioning YAML"
    )
    parser.add_argument(
        "--provisioning-path",
        help="the output directory as Grafana sees it, written into "
        f"{PROVISIONING_FILE} (default: the output directory, absolute)",
    )
    parser.add_argument(
        "--grafana-url", type=http_url, help="also upload every dashboard to this Grafana (POST /api/dashboards/db)"
    )
    parser.add_argument(
        "--grafana-token",
        default=os.environ.get("GRAFANA_TOKEN"),
        help="service-account token for the upload (default: $GRAFANA_TOKEN)",
    )
    parser.add_argument("--grafana-folder", help="uid of an existing Grafana folder to upload into")
    add_config_arguments(parser, rules=False)


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    config = config_from_args(args)
    for path in write(spec, args.output, config, provisioning_path=args.provisioning_path):
        print(path)
    if args.grafana_url:
        for name, document in generate(spec, config).items():
            answer = upload(document, args.grafana_url, args.grafana_token, folder_uid=args.grafana_folder)
            print(
                f"uploaded {name}: {args.grafana_url.rstrip('/')}{answer.get('url', '')} "
                f"(version {answer.get('version', '?')})"
            )
    return 0
