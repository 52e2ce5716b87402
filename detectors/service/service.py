"""The detector service in-process: receiver, store, evaluation loop and Prometheus endpoint in one object.

Usage::

    from servewatch.detectors.service import DetectorService

    with DetectorService("servewatch.yaml", state_dir="state", listen="127.0.0.1:0",
                         metrics_listen="127.0.0.1:0", interval="1s", bucket="1s") as detector:
        detector.endpoint          # http://127.0.0.1:<port>: point OTEL_EXPORTER_OTLP_ENDPOINT here
        detector.grpc_address      # with grpc_listen="127.0.0.1:0": OTLP/gRPC (the Collector's `otlp` exporter)
        detector.metrics_url       # http://127.0.0.1:<port>/metrics
        ...                        # producers send; every `interval` each window is evaluated
        detector.evaluate()        # or evaluate right now; returns {(model, signal, window): WindowResult}
        print(detector.table())    # the latest results as a terminal table

``start()`` opens the store (``state_dir``), binds the listeners (port 0 picks a free port: read the bound
ones back from ``listen_address`` / ``grpc_address`` / ``metrics_address``; ``grpc_listen=None``, the
default here, opens no OTLP/gRPC port; ``servewatch detect`` opens :4317) and starts the evaluation loop;
``stop()`` stops accepting, lets the requests in flight finish and commit, and closes the store cleanly.
``submit(profiles)`` stores profiles without HTTP (the same path as ``/v1/logs`` after decoding). ``bucket``,
``interval`` and ``retention`` default to the spec's ``detector:`` settings (1m, 15s, 8d); ``fsync=True``
flushes every commit to the disk (see :mod:`.store`); ``clock`` lets tests and benchmarks run on simulated
time. ``max_columns`` bounds the columns of a model and signal per bucket (:data:`.store.MAX_COLUMNS`,
512). ``tls=TlsSettings(...)`` (:mod:`.tls`) serves every listener over TLS, OTLP/gRPC included
(``endpoint`` and ``metrics_url`` are then ``https://``), with client certificates required when it names a
client CA; ``metric_limits`` bounds the re-exposed serving metrics
(:class:`~servewatch.detectors.service.reexposure.MetricLimits`). What changes (a reference ready, a severity,
rejected profiles) is logged once per change by :mod:`.events`.

``/readyz`` (``readiness()``) is 503 with the reason while the store is closed, the receiver is not listening,
the detector is stopping, or the last commit failed (a full disk, say), until a commit succeeds again
(producers' retries bring one).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from ...duration import format_duration, parse_duration
from .prometheus import Exposition, MetricsServer, Snapshot
from .reexposure import MetricLimits, OtlpMetrics
from ...profile import Profile
from ...spec import Spec, load_spec
from ...wire import Limits, decode_request
from .committer import Committer
from .evaluator import Evaluator, WindowResult, format_table
from .events import Events
from .gauges import Activity, Gauges
from .receiver import Handler, Receiver, ReceiverLimits
from .store import MAX_COLUMNS, Store
from .tiers import Layout
from .tls import TlsSettings

if TYPE_CHECKING:
    from .grpc_receiver import GrpcReceiver

__all__ = ["DetectorService", "parse_address"]

_log = logging.getLogger("servewatch.detect")

_STORE_REASONS = {
    "too_old": "profile is older than the retention",
    "future": "profile interval ends more than five minutes in the future (check the producer's clock)",
    "series_limit": "too many models and signals: raise the detector's series limit",
    "conflict": "a column changed type (numeric / categorical) within a bucket",
    "store_error": "the detector could not store this profile (its log says why)",
}
_ACCEPTED = ("accepted", "column_limit")


def parse_address(value: str | tuple[str, int], default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``"host:port"``, ``"[v6]:port"``, ``":port"`` (every interface), ``"port"`` (loopback) or a tuple."""
    if isinstance(value, tuple):
        return str(value[0]), int(value[1])
    text = str(value).strip()
    if text.isdigit():
        host, port_text = default_host, text
    elif text.startswith("["):
        host, _, port_text = text[1:].partition("]:")
    else:
        host, _, port_text = text.rpartition(":")
        host = host or "0.0.0.0"
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535 or not host:
        raise ValueError(f"expected host:port (e.g. 127.0.0.1:4318), got {value!r}")
    return host, int(port_text)


def _seconds(value: float | str | None, default: float) -> float:
    return default if value is None else parse_duration(value)


class DetectorService:
    """The whole detector; see the module docstring."""

    def __init__(self, spec: Spec | str | os.PathLike[str] | None = None, *, state_dir: str | os.PathLike[str],
                 listen: str | tuple[str, int] = "127.0.0.1:4318",
                 metrics_listen: str | tuple[str, int] = "127.0.0.1:9108", interval: float | str | None = None,
                 bucket: float | str | None = None, retention: float | str | None = None, token: str | None = None,
                 limits: ReceiverLimits | None = None, max_series: int = 1000, max_columns: int = MAX_COLUMNS,
                 metric_limits: MetricLimits | None = None, tls: TlsSettings | None = None, fsync: bool = False,
                 clock: Callable[[], float] = time.time, grpc_listen: str | tuple[str, int] | None = None) -> None:
        self.spec = spec if isinstance(spec, Spec) else load_spec(spec) if spec is not None else Spec()
        settings = self.spec.detector
        self.state_dir = os.fspath(state_dir)
        self.interval = _seconds(interval, settings.interval)
        self.layout = Layout(_seconds(bucket, settings.bucket), _seconds(retention, settings.retention))
        self.token = token or None
        self.limits = limits or ReceiverLimits()
        self.tls = tls
        self._tls_context = tls.server_context() if tls is not None else None
        self.max_series = max_series
        self.max_columns = max_columns
        self.fsync = fsync
        self.clock = clock
        self._listen = parse_address(listen)
        self._metrics_listen = parse_address(metrics_listen)
        self._grpc_listen = parse_address(grpc_listen) if grpc_listen is not None else None
        self.events = Events(self.spec)
        self.activity = Activity()
        self.metrics = OtlpMetrics(limits=metric_limits, clock=clock)
        self.activity.metrics = self.metrics
        self._published = Snapshot()
        self._gauges = Gauges()
        self.exposition = Exposition()
        for collector in (self._published, self.activity, self.metrics):
            self.exposition.register(collector)
        self.store: Store | None = None
        self.evaluator: Evaluator | None = None
        self.committer: Committer | None = None
        self.receiver: Receiver | None = None
        self.grpc_receiver: GrpcReceiver | None = None
        self.metrics_server: MetricsServer | None = None
        self._results: dict[tuple[str, str, str], WindowResult] = {}
        self._evaluating = threading.Lock()
        self._stopping = threading.Event()
        self._loop: threading.Thread | None = None

    # -- life cycle -----------------------------------------------------------------------------------------

    def start(self) -> DetectorService:
        """Open the store, bind both listeners, start evaluating every ``interval``."""
        self.store = Store(self.state_dir, self.layout, max_series=self.max_series, max_columns=self.max_columns,
                           fsync=self.fsync)
        self.activity.store = self.store
        self.evaluator = Evaluator(self.spec, self.store)
        try:
            self.committer = Committer(self.store, clock=self.clock).start()
            handlers: dict[str, Handler] = {"/v1/logs": (ExportLogsServiceRequest, self._on_logs),
                        "/v1/metrics": (ExportMetricsServiceRequest, self._on_metrics)}
            self.receiver = _bind(self._listen, lambda: Receiver(
                self._listen, handlers, token=self.token, limits=self.limits, tls=self._tls_context,
                on_request=self.activity.request).start())
            self.activity.connections = self.receiver.server
            self.metrics_server = _bind(self._metrics_listen, lambda: MetricsServer(
                self.exposition, self._metrics_listen, ready=lambda: self.readiness() or True,
                tls=self._tls_context).start())
            if self._grpc_listen is not None:
                from .grpc_receiver import GrpcReceiver, server_credentials  # grpcio loads only where gRPC is served

                grpc_listen = self._grpc_listen
                credentials = server_credentials(self.tls) if self.tls is not None else None
                self.grpc_receiver = _bind(grpc_listen, lambda: GrpcReceiver(
                    grpc_listen, handlers.values(), token=self.token, limits=self.limits,
                    credentials=credentials, on_request=self.activity.request).start())
        except BaseException:
            self.stop()
            raise
        certified = self.tls is not None and self.tls.client_ca is not None  # only clients with a certificate
        if self.token is None and not certified and not _loopback(self._listen[0]):
            _log.warning("receiving on %s without a token: anyone who can reach it can send data", self._listen[0])
        if not certified and not _loopback(self._metrics_listen[0]):
            _log.warning("serving /metrics, /healthz and /readyz on %s%s without a token: anyone who can reach it "
                         "reads the model, feature and signal names, their severities and the producers' serving "
                         "metrics", _netloc(*self.metrics_address),
                         " (every interface)" if self._metrics_listen[0] in ("0.0.0.0", "::") else "")
        if self.token is None and not certified and self._grpc_listen is not None \
                and not _loopback(self._grpc_listen[0]) and self._grpc_listen[0] != self._listen[0]:
            _log.warning("receiving OTLP/gRPC on %s without a token: anyone who can reach it can send data",
                         self._grpc_listen[0])
        self.events.started()
        self._stopping.clear()
        self._loop = threading.Thread(target=self._run, name="servewatch-evaluation", daemon=True)
        self._loop.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, finish and commit the requests in flight, close the store (idempotent)."""
        self._stopping.set()
        if self.receiver is not None:
            self.receiver.stop(timeout)
        if self.grpc_receiver is not None:
            self.grpc_receiver.stop(timeout)
        if self.committer is not None:
            self.committer.stop(timeout)
        if self._loop is not None:
            self._loop.join(timeout)
        if self.metrics_server is not None:
            self.metrics_server.stop()
        with self._evaluating:
            if self.store is not None:
                self.store.close()
        self.receiver = self.committer = self.metrics_server = self._loop = None
        self.grpc_receiver = None

    def __enter__(self) -> DetectorService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def ready(self) -> bool:
        """True while the detector can take profiles: see :meth:`readiness`."""
        return self.readiness() is None

    def readiness(self) -> str | None:
        """None when ready, else why not (what ``/readyz`` answers with its 503)."""
        if self.store is None or self.store.closed or self.committer is None:
            return "the store is not open"
        if self._stopping.is_set():
            return "the detector is stopping"
        if self.receiver is None or not self.receiver.serving:
            return "the receiver is not listening"
        return self.committer.failure

    @property
    def listen_address(self) -> tuple[str, int]:
        return self.receiver.address if self.receiver is not None else self._listen

    @property
    def grpc_address(self) -> tuple[str, int] | None:
        """The bound OTLP/gRPC (host, port), None without a gRPC listener."""
        if self.grpc_receiver is not None:
            return self.grpc_receiver.address
        return self._grpc_listen

    @property
    def metrics_address(self) -> tuple[str, int]:
        return self.metrics_server.address if self.metrics_server is not None else self._metrics_listen

    @property
    def endpoint(self) -> str:
        """The OTLP/HTTP base URL (``OTEL_EXPORTER_OTLP_ENDPOINT``)."""
        return f"{self._scheme}://{_netloc(*self.listen_address)}"

    @property
    def metrics_url(self) -> str:
        return f"{self._scheme}://{_netloc(*self.metrics_address)}/metrics"

    @property
    def _scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    def describe(self) -> str:
        """One line saying what the detector listens on (what ``servewatch detect`` prints at start)."""
        models = len(self.spec.models)
        grpc_address = self.grpc_address
        grpc_text = f"OTLP/gRPC on {_netloc(*grpc_address)}, " if grpc_address is not None else ""
        return (f"servewatch detect: receiving OTLP/HTTP on {self.endpoint} (/v1/logs, /v1/metrics), {grpc_text}"
                f"serving {self.metrics_url} (/healthz, /readyz), state in {self.state_dir}, "
                f"{models} model{'s' * (models != 1)} in the spec, bucket {format_duration(self.layout.bucket)}, "
                f"evaluating every {format_duration(self.interval)}"
                f"{', bearer token required' if self.token else ''}"
                f"{'' if self.tls is None else ', TLS' + (' with client certificates' if self.tls.client_ca else '')}")

    # -- data in ---------------------------------------------------------------------------------------------

    def submit(self, profiles: Sequence[Profile]) -> list[str]:
        """Store ``profiles`` (the ``/v1/logs`` path without HTTP): one outcome each, ``"accepted"``,
        ``"duplicate"`` or a rejection reason. Raises ``Unavailable`` when the store cannot take them."""
        if self.committer is None:
            raise RuntimeError("start() the detector first")
        outcomes = self.committer.submit(profiles)
        now = self.clock()
        for profile, outcome in zip(profiles, outcomes):
            self.activity.profiles(accepted=outcome in _ACCEPTED, duplicates=outcome == "duplicate",
                                   rejected=[outcome] if outcome in _STORE_REASONS else [], model=profile.model,
                                   at=now)
            if outcome in _STORE_REASONS:
                self.events.rejected(outcome, f"profile {profile.model}/{profile.signal}: {_STORE_REASONS[outcome]}")
        return outcomes

    def _on_logs(self, request: ExportLogsServiceRequest) -> ExportLogsServiceResponse:
        decoded = decode_request(request, Limits())
        outcomes = self.submit(decoded.profiles)
        reasons = [(error.reason, str(error)) for error in decoded.rejected]
        reasons += [(outcome, _STORE_REASONS[outcome]) for outcome in outcomes if outcome in _STORE_REASONS]
        self.activity.profiles(ignored=decoded.ignored, rejected=[reason for reason, _ in reasons
                                                                  if reason not in _STORE_REASONS])
        for reason, message in reasons:
            if reason not in _STORE_REASONS:  # the store's are logged by submit()
                self.events.rejected(reason, message)
        notes = [f"{profile.model}/{profile.signal}: columns past the limit of {self.max_columns} per model and "
                 "signal were left out" for profile, outcome in zip(decoded.profiles, outcomes)
                 if outcome == "column_limit"]
        response = ExportLogsServiceResponse()
        if reasons or notes:  # a message alone (no record rejected) is the OTLP way to warn the sender
            response.partial_success.rejected_log_records = len(reasons)
            messages = list(dict.fromkeys([message for _, message in reasons] + notes))
            response.partial_success.error_message = "; ".join(messages[:5])
        return response

    def _on_metrics(self, request: ExportMetricsServiceRequest) -> ExportMetricsServiceResponse:
        outcome = self.metrics.ingest(request)
        response = ExportMetricsServiceResponse()
        if outcome.rejected:
            response.partial_success.rejected_data_points = outcome.rejected
            response.partial_success.error_message = outcome.error_message
        return response

    # -- evaluation ------------------------------------------------------------------------------------------

    def evaluate(self, now: float | None = None) -> dict[tuple[str, str, str], WindowResult]:
        """Evaluate every window now (merge sealed buckets upwards first); publish and return the results."""
        with self._evaluating:
            if self.store is None or self.evaluator is None or self.store.closed:
                raise RuntimeError("start() the detector first")
            now = self.clock() if now is None else now
            started = time.perf_counter()
            results = self.evaluator.evaluate(now)
            self._published.set(self._gauges.families(results))
            self.activity.evaluation_seconds = time.perf_counter() - started
            self._results = results
            self.events.evaluated(results)
            return results

    def results(self) -> dict[tuple[str, str, str], WindowResult]:
        """The latest results: (model, signal, window name) -> :class:`WindowResult`."""
        return dict(self._results)

    def table(self) -> str:
        """The latest results as a fixed-width terminal table."""
        return format_table(self._results.values())

    def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self.evaluate()
            except Exception:
                _log.exception("evaluation failed; trying again in %s", format_duration(self.interval))
            elapsed = time.monotonic() - started
            self._stopping.wait(max(self.interval - elapsed, self.interval / 10))


_T = TypeVar("_T")


def _bind(address: tuple[str, int], start: Callable[[], _T]) -> _T:
    try:
        return start()
    except OSError as error:
        raise OSError(error.errno, f"cannot listen on {_netloc(*address)}: {error.strerror or error}") from None


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

