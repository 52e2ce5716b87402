"""The OTLP/gRPC receiver inside a real DetectorService: the real OpenTelemetry gRPC exporters send, the store
holds what was acknowledged, and every refusal gets its gRPC code (bad token, oversized, garbage, store down).
The same request sent over OTLP/HTTP and OTLP/gRPC gets the same answer."""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
from google.rpc.error_details_pb2 import RetryInfo
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from servewatch.detectors.service import DetectorService, ReceiverLimits
from servewatch.detectors.service.grpc_receiver import GrpcReceiver, method_name, server_credentials
from servewatch.detectors.service.tls import TlsSettings

from servewatch.profile import Profile
from servewatch.wire import EVENT_NAME, encode_profiles, profile_record

LOGS = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
METRICS = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
GARBAGE = b"\x0a\xff\xff\xff\xff\x0f\x00"


def _profile(sequence: int = 0, rows: int = 200, shift: float = 0.0) -> Profile:
    end = time.time()
    profile = Profile("fraud", "input", start=end - 1.0, end=end, producer="p", sequence=sequence)
    return profile.update({"amount": np.random.default_rng(sequence).normal(shift, 1.0, rows)})


@pytest.fixture
def detector_factory(tmp_path: Path) -> Iterator[Callable[..., DetectorService]]:
    started: list[DetectorService] = []

    def factory(**options: object) -> DetectorService:
        options = {"grpc_listen": "127.0.0.1:0", **options}
        detector = DetectorService(state_dir=tmp_path / f"state{len(started)}", listen="127.0.0.1:0",
                                   metrics_listen="127.0.0.1:0", interval="1h", bucket="1s",
                                   **options)  # type: ignore[arg-type]
        started.append(detector.start())
        return detector

    yield factory
    for detector in started:
        detector.stop()


def _target(detector: DetectorService) -> str:
    assert detector.grpc_address is not None
    return "127.0.0.1:%d" % detector.grpc_address[1]


def _call(detector: DetectorService, data: bytes, method: str = LOGS, **options: object) -> bytes:
    with grpc.insecure_channel(_target(detector)) as channel:
        return channel.unary_unary(method)(data, timeout=10, **options)  # type: ignore[no-any-return]


def _refused(detector: DetectorService, data: bytes, **options: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        _call(detector, data, **options)
    return caught.value


def test_the_real_otlp_grpc_log_exporter_is_acknowledged_only_once_committed(
        detector_factory: Callable[..., DetectorService]) -> None:
    detector = detector_factory()
    exporter = OTLPLogExporter(endpoint=f"http://{_target(detector)}", insecure=True)
    loggers = LoggerProvider(resource=Resource.create({"service.name": "fraud-server"}))
    loggers.add_log_record_processor(SimpleLogRecordProcessor(exporter))  # emit() returns once exported
    logger = loggers.get_logger("servewatch")
    try:
        for sequence in range(3):
            attributes, body = profile_record(_profile(sequence))
            logger.emit(body=body, attributes=attributes, event_name=EVENT_NAME)
            assert detector.activity.received == sequence + 1   # acknowledged = committed, before we go on
        assert detector.store is not None
        merged = detector.store.merged("fraud", "input", 0.0, time.time() + 10, time.time())
        assert merged is not None and merged.columns["amount"].valid == 600
    finally:
        loggers.shutdown()
    counts = {key: value for key, value in detector.activity.requests.items() if key[0] == LOGS}
    assert counts == {(LOGS, "OK"): 3}


def test_the_real_otlp_grpc_metric_exporter_is_re_exposed(detector_factory: Callable[..., DetectorService]) -> None:
    detector = detector_factory()
    meters = MeterProvider(resource=Resource.create({"service.name": "fraud-server",
                                                     "service.instance.id": "replica-1"}),
                           metric_readers=[PeriodicExportingMetricReader(
                               OTLPMetricExporter(endpoint=f"http://{_target(detector)}", insecure=True),
                               export_interval_millis=60_000)])
    meters.get_meter("test").create_counter("servewatch.inference.requests").add(7, {"ml.model.name": "fraud"})
    assert meters.force_flush(10_000)
    meters.shutdown()
    text = requests.get(detector.metrics_url, timeout=10).text
    line = next(line for line in text.splitlines() if line.startswith("servewatch_inference_requests_total{"))
    assert 'job="fraud-server"' in line and 'instance="replica-1"' in line and line.endswith(" 7.0")


def test_http_and_grpc_answer_the_same_request_alike(detector_factory: Callable[..., DetectorService]) -> None:
    detector = detector_factory()
    request = ExportLogsServiceRequest.FromString(encode_profiles([_profile(0), _profile(1)]))
    broken = request.resource_logs[0].scope_logs[0].log_records[1]
    broken.body.kvlist_value.values[0].value.string_value = "not a version"   # one record is not a valid profile
    data = request.SerializeToString()
    over_grpc = ExportLogsServiceResponse.FromString(_call(detector, data))
    over_http = ExportLogsServiceResponse.FromString(requests.post(
        detector.endpoint + "/v1/logs", data=data, headers={"Content-Type": "application/x-protobuf"},
        timeout=10).content)
    assert over_grpc.partial_success.rejected_log_records == 1
    assert over_grpc == over_http                          # the same partial success, message included
    assert detector.activity.received == 1                 # the valid one, once (the repeat is a duplicate)
    assert detector.activity.duplicates == 1


@pytest.mark.parametrize("metadata, accepted", [
    ((("authorization", "Bearer s3cret"),), True),
    ((("authorization", "Bearer wrong"),), False),
    ((), False),
])
def test_the_bearer_token_comes_from_the_authorization_metadata(
        detector_factory: Callable[..., DetectorService], metadata: tuple[tuple[str, str], ...],
        accepted: bool) -> None:
    detector = detector_factory(token="s3cret")
    data = encode_profiles([_profile()])
    if accepted:
        assert ExportLogsServiceResponse.FromString(_call(detector, data, metadata=metadata)) == \
            ExportLogsServiceResponse()
        assert detector.activity.received == 1
        return
    error = _refused(detector, data, metadata=metadata)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "bearer token" in error.details()
    assert detector.activity.received == 0


def test_the_exporter_sends_the_token_from_its_headers(detector_factory: Callable[..., DetectorService]) -> None:
    detector = detector_factory(token="s3cret")
    exporter = OTLPLogExporter(endpoint=f"http://{_target(detector)}", insecure=True,
                               headers={"authorization": "Bearer s3cret"})
    loggers = LoggerProvider()
    loggers.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    attributes, body = profile_record(_profile())
    loggers.get_logger("servewatch").emit(body=body, attributes=attributes, event_name=EVENT_NAME)
    loggers.shutdown()
    assert detector.activity.received == 1


@pytest.mark.parametrize("method", [LOGS, METRICS])
def test_garbage_is_invalid_argument_and_the_service_keeps_going(
        detector_factory: Callable[..., DetectorService], method: str) -> None:
    detector = detector_factory()
    error = _refused(detector, GARBAGE, method=method)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "is not a protobuf" in error.details()
    assert _call(detector, encode_profiles([_profile()])) is not None
    assert detector.activity.received == 1


@pytest.mark.parametrize("compression", [None, grpc.Compression.Gzip])
def test_a_message_over_the_limit_is_resource_exhausted(
        detector_factory: Callable[..., DetectorService], compression: grpc.Compression | None) -> None:
    detector = detector_factory(limits=ReceiverLimits(max_inflated=64 * 1024))
    data = encode_profiles([_profile(sequence, rows=2000) for sequence in range(40)])
    assert len(data) > 64 * 1024
    error = _refused(detector, data, compression=compression)   # gzip: the inflated size counts
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert detector.activity.received == 0
    assert _call(detector, encode_profiles([_profile()]), compression=compression) is not None


def test_a_store_that_cannot_commit_is_unavailable_with_a_retry_delay(
        detector_factory: Callable[..., DetectorService]) -> None:
    detector = detector_factory()
    assert detector.committer is not None
    detector.committer.stop()                              # what shutting down looks like to a request
    error = _refused(detector, encode_profiles([_profile()]))
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    retry = dict(error.trailing_metadata())["google.rpc.retryinfo-bin"]
    assert RetryInfo.FromString(retry).retry_delay.seconds == 5


def test_a_taken_port_fails_start_with_its_address(detector_factory: Callable[..., DetectorService],
                                                   tmp_path: Path) -> None:
    detector = detector_factory()
    taken = _target(detector)
    other = DetectorService(state_dir=tmp_path / "other", listen="127.0.0.1:0", metrics_listen="127.0.0.1:0",
                            grpc_listen=taken)
    with pytest.raises(OSError, match=f"cannot listen on {taken}"):
        other.start()
    assert other.receiver is None and other.store is not None and other.store.closed


def test_describe_names_the_grpc_port(detector_factory: Callable[..., DetectorService]) -> None:
    detector = detector_factory()
    assert f"OTLP/gRPC on {_target(detector)}, " in detector.describe()
    assert detector_factory(grpc_listen=None).grpc_address is None


def test_method_names_come_from_the_proto_service_definitions() -> None:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    assert method_name(ExportLogsServiceRequest) == ("opentelemetry.proto.collector.logs.v1.LogsService", "Export")
    assert "/%s/%s" % method_name(ExportMetricsServiceRequest) == METRICS
    with pytest.raises(ValueError, match="no gRPC service"):
        method_name(ExportLogsServiceResponse)


def test_refusals_are_logged_at_most_once_a_minute_per_code(detector_factory: Callable[..., DetectorService],
                                                            caplog: pytest.LogCaptureFixture) -> None:
    detector = detector_factory()
    with caplog.at_level(logging.WARNING, logger="servewatch.detect"):
        for _ in range(5):
            _refused(detector, GARBAGE)
    lines = [record.getMessage() for record in caplog.records if "INVALID_ARGUMENT" in record.getMessage()]
    assert len(lines) == 1 and LOGS in lines[0]
    assert detector.activity.requests[(LOGS, "INVALID_ARGUMENT")] == 5


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")
def test_tls_credentials_hook(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out",
                    str(cert)], check=True, capture_output=True)
    answers: list[int] = []

    def on_logs(request: ExportLogsServiceRequest) -> ExportLogsServiceResponse:
        answers.append(len(request.resource_logs))
        return ExportLogsServiceResponse()

    receiver = GrpcReceiver(("127.0.0.1", 0), [(ExportLogsServiceRequest, on_logs)],
                            credentials=server_credentials(TlsSettings(str(cert), str(key)))).start()
    try:
        target = "localhost:%d" % receiver.address[1]
        secure = grpc.ssl_channel_credentials(cert.read_bytes())
        with grpc.secure_channel(target, secure) as channel:
            channel.unary_unary(LOGS)(encode_profiles([_profile()]), timeout=10)
        assert answers == [1]
        with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as caught:
            channel.unary_unary(LOGS)(b"", timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE   # plaintext to a TLS port: no connection
    finally:
        receiver.stop()


@pytest.mark.parametrize("listen, grpc_listen, expected", [
    ("127.0.0.1:4318", None, "127.0.0.1:4317"),          # the defaults
    ("0.0.0.0:4318", None, "0.0.0.0:4317"),              # the gRPC port follows --listen's host
    (":4318", None, "0.0.0.0:4317"),
    ("[::1]:4318", None, "[::1]:4317"),
    ("127.0.0.1:0", None, "127.0.0.1:0"),                # a free port when --listen asks for one
    ("127.0.0.1:4318", "10.0.0.5:5317", "10.0.0.5:5317"),
    ("127.0.0.1:4318", "off", None),
])
def test_the_grpc_address_of_the_command_line(listen: str, grpc_listen: str | None, expected: str | None) -> None:
    from servewatch.detectors.service.command import grpc_address

    assert grpc_address(listen, grpc_listen) == expected


def test_a_call_stalled_before_its_message_is_cut_after_the_connection_age(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from servewatch.detectors.service import grpc_receiver

    monkeypatch.setattr(grpc_receiver, "_MAX_AGE_MS", 1000)
    handlers = [(ExportLogsServiceRequest, lambda request: ExportLogsServiceResponse())]
    receiver = GrpcReceiver(("127.0.0.1", 0), handlers, limits=ReceiverLimits(timeout=1.0)).start()
    never = threading.Event()

    def nothing() -> Iterator[bytes]:            # headers go out, the message never does
        never.wait(30)
        yield b""

    try:
        with grpc.insecure_channel("127.0.0.1:%d" % receiver.address[1]) as channel:
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as caught:
                channel.stream_unary(LOGS)(nothing(), timeout=25)
            assert time.monotonic() - started < 10, caught.value          # cut by the server, not the deadline
            assert caught.value.code() != grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        never.set()
        receiver.stop()
