"""``servewatch detect``: run the detector service until SIGTERM or Ctrl-C.

Usage::

    servewatch detect --spec servewatch.yaml --state /var/lib/servewatch \\
        --listen 127.0.0.1:4318 --metrics-listen 127.0.0.1:9108 [--interval 15s] [--bucket 1m] [--retention 8d]
    servewatch detect --grpc-listen 0.0.0.0:4317 ...            # OTLP/gRPC too (default: --listen's host, :4317)
    SERVEWATCH_DETECTOR_TOKEN=secret servewatch detect ...     # producers send "Authorization: Bearer secret"
    servewatch detect --bucket 1s --interval 1s --table         # a compressed time scale, results printed
    servewatch detect --tls-cert server.pem --tls-key server.key [--tls-client-ca clients.pem]   # https, mTLS

It prints one line saying where it listens (the bound ports, also for port 0), then runs until SIGTERM or
SIGINT: it stops accepting, lets the requests in flight finish and commit, closes the store and exits 0.
Bad flags, a bad spec, a port in use, unreadable TLS files or a state directory made for another bucket size
exit 2 with a one-line reason. Give the token in ``SERVEWATCH_DETECTOR_TOKEN``: ``--token`` works too, but
every local user can read a command line (``/proc/PID/cmdline``), so it is logged as a warning.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sqlite3
import sys
import threading

from ...errors import ServewatchError

__all__ = ["add_arguments", "grpc_address", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", help="servewatch.yaml (models, windows, references, thresholds); optional")
    parser.add_argument("--listen", default="127.0.0.1:4318",
                        help="OTLP/HTTP address for /v1/logs and /v1/metrics (default %(default)s)")
    parser.add_argument("--grpc-listen", default=None,
                        help="OTLP/gRPC address (LogsService, MetricsService); default: --listen's host on port 4317 "
                             "(127.0.0.1:4317), a free port where --listen's port is 0; 'off' for none")
    parser.add_argument("--metrics-listen", default="127.0.0.1:9108",
                        help="address of /metrics, /healthz, /readyz (default %(default)s)")
    parser.add_argument("--state", default="servewatch-state",
                        help="directory of the durable store (default ./%(default)s)")
    parser.add_argument("--interval", help="how often every window is evaluated (default: the spec's, else 15s)")
    parser.add_argument("--bucket", help="finest time bucket (default: the spec's, else 1m)")
    parser.add_argument("--retention", help="how long data is kept (default: the spec's, else 8d)")
    parser.add_argument("--token", help="bearer token producers must send; prefer setting "
                                        "$SERVEWATCH_DETECTOR_TOKEN (a command line is visible to every local user)")
    parser.add_argument("--tls-cert", metavar="FILE",
                        help="serve OTLP and /metrics over TLS with this PEM certificate (chain); needs --tls-key")
    parser.add_argument("--tls-key", metavar="FILE", help="the PEM private key of --tls-cert")
    parser.add_argument("--tls-client-ca", metavar="FILE",
                        help="require client certificates signed by this PEM CA (mutual TLS) on every listener")
    parser.add_argument("--max-columns", type=int,
                        help="most columns stored per model and signal in a bucket; the rest are left out with a "
                             "partial-success message and counted (default 512)")
    parser.add_argument("--max-series", type=int, default=1000,
                        help="most (model, signal) pairs stored (default %(default)s)")
    parser.add_argument("--fsync", action="store_true",
                        help="flush every commit to the disk: acknowledged profiles survive a power cut too "
                             "(by default they survive the process being killed)")
    parser.add_argument("--table", action="store_true", help="print the results table after every evaluation")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))


def run(args: argparse.Namespace) -> int:
    from .service import DetectorService
    from .store import MAX_COLUMNS, StoreError
    from .tls import TlsSettings

    os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # grpc's own log lines; its failures reach us as errors
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise ServewatchError("--tls-cert and --tls-key go together")
    if args.tls_client_ca is not None and args.tls_cert is None:
        raise ServewatchError("--tls-client-ca needs --tls-cert and --tls-key")
    tls = None if args.tls_cert is None else TlsSettings(args.tls_cert, args.tls_key, args.tls_client_ca)
    token = args.token or os.environ.get("SERVEWATCH_DETECTOR_TOKEN")
    stop = threading.Event()
    previous = {number: signal.signal(number, lambda *_: stop.set()) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            detector = DetectorService(args.spec, state_dir=args.state, listen=args.listen,
                                       metrics_listen=args.metrics_listen, interval=args.interval,
                                       bucket=args.bucket, retention=args.retention, token=token,
                                       max_series=args.max_series, max_columns=args.max_columns or MAX_COLUMNS,
                                       fsync=args.fsync, tls=tls,
                                       grpc_listen=grpc_address(args.listen, args.grpc_listen))
            detector.start()
        except (ValueError, StoreError) as error:
            raise ServewatchError(str(error)) from None
        except sqlite3.Error as error:
            raise ServewatchError(f"cannot open the store in {args.state}: {error}") from None
        print(detector.describe(), flush=True)
        if args.token:
            logging.getLogger("servewatch.detect").warning(
                "--token is visible to every local user in the process list: set SERVEWATCH_DETECTOR_TOKEN instead")
        try:
            while not stop.wait(detector.interval if args.table else 3600.0):
                if args.table:
                    print(detector.table() + "\n", flush=True)
        finally:
            detector.stop()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    print("servewatch detect: stopped", flush=True)
    return 0


def grpc_address(listen: str, grpc_listen: str | None) -> str | None:
    """The OTLP/gRPC address for ``--grpc-listen`` (None: 'off'); its default follows ``--listen``."""
    from .service import parse_address

    if grpc_listen is not None:
        return None if grpc_listen.strip().lower() in ("off", "none", "") else grpc_listen
    host, port = parse_address(listen)
    return f"[{host}]:{4317 if port else 0}" if ":" in host else f"{host}:{4317 if port else 0}"
