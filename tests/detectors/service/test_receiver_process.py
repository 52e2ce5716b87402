"""The network edge of a real `servewatch detect` process: TLS and mTLS with the real OTLP exporters, /readyz
while the store cannot commit, and a flood of oversized metric labels against its memory.

Certificates are made at test time with `cryptography` (a CA, a server certificate for 127.0.0.1, a client
certificate). A full disk is made real with the file-size limit (RLIMIT_FSIZE, set on the running detector
with prlimit): SQLite's writes past it fail (EFBIG: "disk I/O error"), as they do on a full disk; raising
the limit again is the disk freed.
"""

from __future__ import annotations

import datetime
import gzip
import os
import re
import resource
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import requests
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics
from opentelemetry.sdk.resources import Resource

from servewatch.profile import Profile
from servewatch.wire import encode_profiles

pytestmark = pytest.mark.integration

PROTOBUF = {"Content-Type": "application/x-protobuf"}


@dataclass
class Detector:
    process: subprocess.Popen[str]
    endpoint: str
    metrics_url: str
    output: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.metrics_url.replace("/metrics", path)


@pytest.fixture
def detect(tmp_path: Path) -> Iterator[Callable[..., Detector]]:
    """Start `servewatch detect` on loopback port 0 (state in tmp_path) and read the bound addresses from its
    start-up line; each one started is stopped with SIGTERM at the end and must exit 0."""
    started: list[Detector] = []

    def start(*flags: str, env: dict[str, str] | None = None) -> Detector:
        command = [str(Path(sys.executable).with_name("servewatch")), "detect", "--listen", "127.0.0.1:0",
                   "--metrics-listen", "127.0.0.1:0", "--state", str(tmp_path / "state"), "--log-level", "warning",
                   *flags]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env={**os.environ, **(env or {})})
        assert process.stdout is not None
        lines: list[str] = []
        found = None
        while found is None and len(lines) < 10 and process.poll() is None:   # warnings may come first
            lines.append(process.stdout.readline())
            found = re.search(r"receiving OTLP/HTTP on (https?://\S+) .*serving (https?://\S+/metrics)", lines[-1])
        if found is None:
            process.kill()
            raise AssertionError(f"unexpected start-up output: {''.join(lines)}{process.stdout.read()}")
        detector = Detector(process, found.group(1), found.group(2), lines)
        stdout = process.stdout
        threading.Thread(target=lambda: detector.output.extend(stdout), daemon=True).start()
        started.append(detector)
        return detector

    yield start
    for detector in started:
        detector.process.send_signal(signal.SIGTERM)
        try:
            assert detector.process.wait(30) == 0
        finally:
            if detector.process.poll() is None:
                detector.process.kill()


def _profile(model: str, producer: str, sequence: int, rows: int = 50) -> Profile:
    end = time.time()
    profile = Profile(model, "input", start=end - 1, end=end, producer=producer, sequence=sequence)
    return profile.update(np.random.default_rng(sequence).normal(size=(rows, 2)))


# -- TLS ------------------------------------------------------------------------------------------------------

@dataclass
class Certificates:
    ca: Path
    server: Path
    server_key: Path
    client: Path
    client_key: Path
    stranger: Path
    stranger_key: Path


def _certificates(folder: Path) -> Certificates:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    def write(stem: str, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
        (folder / f"{stem}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        (folder / f"{stem}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                               serialization.PrivateFormat.PKCS8,
                                                               serialization.NoEncryption()))
        return folder / f"{stem}.pem", folder / f"{stem}.key"

    def issue(subject: str, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey | None, *,
              usage: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A certificate for ``usage`` ("ca", "server" or "client"); a CA without issuer key signs itself."""
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(issuer)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=usage == "ca", path_length=None), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       (issuer_key or key).public_key()), critical=False))  # Python's strict X.509 checks want both
        if usage == "ca":
            builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                                            critical=True)
        elif usage == "server":
            builder = (builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
        else:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        return builder.sign(issuer_key or key, hashes.SHA256()), key

    ca, ca_key = issue("servewatch test CA", name("servewatch test CA"), None, usage="ca")
    ca_path, _ = write("ca", ca, ca_key)
    server, server_key = write("server", *issue("127.0.0.1", ca.subject, ca_key, usage="server"))
    client, client_key = write("client", *issue("producer", ca.subject, ca_key, usage="client"))
    other, other_key = issue("another CA", name("another CA"), None, usage="ca")
    stranger, stranger_key = write("stranger", *issue("stranger", other.subject, other_key, usage="client"))
    return Certificates(ca_path, server, server_key, client, client_key, stranger, stranger_key)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    pytest.importorskip("cryptography")
    return _certificates(tmp_path_factory.mktemp("certificates"))


def _otlp_env(monkeypatch: pytest.MonkeyPatch, detector: Detector, ca: Path, client: tuple[Path, Path] | None) -> None:
    for bundle in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests would prefer these to the exporter's CA
        monkeypatch.delenv(bundle, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", detector.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(ca))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "3")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=bearer%20s3cret")  # lowercase scheme
    if client is not None:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", str(client[0]))
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", str(client[1]))
    else:
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", raising=False)
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_CLIENT_KEY", raising=False)


def _send_with_otel(resource_name: str) -> tuple[int, bool]:
    """A profile through the real OTLPLogExporter and a counter through the real OTLPMetricExporter:
    (profiles delivered, whether the metrics export succeeded)."""
    from opentelemetry.sdk.metrics.export import MetricExportResult

    from servewatch.exporters.metrics import MetricsPipeline, otlp_metric_exporter
    from servewatch.exporters.profiles import OTLPProfileExporter

    resource = Resource.create({"service.name": resource_name, "service.instance.id": "r1"})
    profiles = OTLPProfileExporter(resource)
    try:
        delivered = profiles.export([_profile("fraud", resource_name, 1)])
    except Exception:
        delivered = 0
    finally:
        profiles.shutdown()
    results: list[MetricExportResult] = []
    exporter = otlp_metric_exporter()
    original = exporter.export

    def export(*args: object, **kwargs: object) -> MetricExportResult:
        results.append(original(*args, **kwargs))  # type: ignore[arg-type]
        return results[-1]

    exporter.export = export  # type: ignore[method-assign]
    pipeline = MetricsPipeline(resource, exporter, timeout=5.0)
    pipeline.meter().create_counter("servewatch_tls_test_requests").add(3)
    pipeline.collect()
    pipeline.shutdown()
    return delivered, results == [MetricExportResult.SUCCESS]


def test_tls_serves_otlp_and_metrics_to_the_real_exporters(detect: Callable[..., Detector], certificates: Certificates,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    detector = detect("--tls-cert", str(certificates.server), "--tls-key", str(certificates.server_key),
                      env={"SERVEWATCH_DETECTOR_TOKEN": "s3cret"})
    assert detector.endpoint.startswith("https://") and detector.metrics_url.startswith("https://")
    host, port = detector.endpoint.removeprefix("https://").rsplit(":", 1)
    stalled = [socket.create_connection((host, int(port)), timeout=10) for _ in range(100)]   # never say hello
    _otlp_env(monkeypatch, detector, certificates.ca, None)
    assert _send_with_otel("tls-producer") == (1, True)       # from the same address: a stalled one made room
    for connection in stalled:
        connection.close()
    page = requests.get(detector.metrics_url, verify=str(certificates.ca), timeout=10)
    assert page.status_code == 200
    assert 'servewatch_detector_profiles_received_total 1.0' in page.text
    assert 'servewatch_tls_test_requests_total{instance="r1",job="tls-producer"' in page.text
    import urllib.request

    context = ssl.create_default_context(cafile=str(certificates.ca))
    with urllib.request.urlopen(detector.url("/readyz"), context=context, timeout=10) as answer:
        assert answer.status == 200
    with pytest.raises(requests.exceptions.SSLError):          # a client that does not trust the CA
        requests.get(detector.metrics_url, timeout=10)
    with pytest.raises(requests.exceptions.ConnectionError):   # plain HTTP on the TLS port
        requests.post(detector.endpoint.replace("https", "http") + "/v1/logs", data=b"", headers=PROTOBUF,
                      timeout=5)


def test_mutual_tls_refuses_clients_without_a_certificate_of_the_ca(detect: Callable[..., Detector],
                                                                    certificates: Certificates,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    detector = detect("--tls-cert", str(certificates.server), "--tls-key", str(certificates.server_key),
                      "--tls-client-ca", str(certificates.ca), env={"SERVEWATCH_DETECTOR_TOKEN": "s3cret"})
    assert "TLS with client certificates" in detector.output[-1]
    _otlp_env(monkeypatch, detector, certificates.ca, (certificates.client, certificates.client_key))
    assert _send_with_otel("mtls-producer") == (1, True)
    _otlp_env(monkeypatch, detector, certificates.ca, None)
    assert _send_with_otel("anonymous") == (0, False)
    _otlp_env(monkeypatch, detector, certificates.ca, (certificates.stranger, certificates.stranger_key))
    assert _send_with_otel("stranger") == (0, False)
    ca = str(certificates.ca)
    for cert in (None, (str(certificates.stranger), str(certificates.stranger_key))):
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(detector.metrics_url, verify=ca, cert=cert, timeout=10)
    mine = (str(certificates.client), str(certificates.client_key))
    page = requests.get(detector.metrics_url, verify=ca, cert=mine, timeout=10).text
    assert 'servewatch_detector_profiles_received_total 1.0' in page
    assert "anonymous" not in page and "stranger" not in page


def test_the_grpc_listener_takes_the_same_tls_settings(detect: Callable[..., Detector], certificates: Certificates,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """--tls-* cover OTLP/gRPC too: the real gRPC metric exporter with the CA and a client certificate gets
    through, without a client certificate it is refused."""
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import MetricExportResult

    from servewatch.exporters.metrics import MetricsPipeline

    detector = detect("--tls-cert", str(certificates.server), "--tls-key", str(certificates.server_key),
                      "--tls-client-ca", str(certificates.ca), env={"SERVEWATCH_DETECTOR_TOKEN": "s3cret"})
    found = re.search(r"OTLP/gRPC on (\S+),", detector.output[-1])
    assert found is not None, detector.output[-1]

    def send(name: str, client: tuple[Path, Path] | None) -> bool:
        _otlp_env(monkeypatch, detector, certificates.ca, client)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"https://{found.group(1)}")
        exporter = OTLPMetricExporter(timeout=3)
        results: list[MetricExportResult] = []
        original = exporter.export

        def export(*args: object, **kwargs: object) -> MetricExportResult:
            results.append(original(*args, **kwargs))  # type: ignore[arg-type]
            return results[-1]

        exporter.export = export  # type: ignore[method-assign]
        pipeline = MetricsPipeline(Resource.create({"service.name": name, "service.instance.id": "g1"}), exporter,
                                   timeout=5.0)
        pipeline.meter().create_counter("servewatch_grpc_tls_requests").add(2)
        pipeline.collect()
        pipeline.shutdown()
        return results == [MetricExportResult.SUCCESS]

    assert send("grpc-mtls", (certificates.client, certificates.client_key))
    assert not send("grpc-anonymous", None)
    mine = (str(certificates.client), str(certificates.client_key))
    page = requests.get(detector.metrics_url, verify=str(certificates.ca), cert=mine, timeout=10).text
    assert 'job="grpc-mtls"' in page and "grpc-anonymous" not in page


def test_bad_tls_flags_end_in_one_line(tmp_path: Path, certificates: Certificates) -> None:
    servewatch = str(Path(sys.executable).with_name("servewatch"))
    cases = [(["--tls-cert", str(certificates.server)], "--tls-cert and --tls-key go together"),
             (["--tls-cert", str(certificates.server), "--tls-key", str(tmp_path / "missing.key")], "missing.key"),
             (["--tls-cert", str(certificates.server), "--tls-key", str(certificates.client_key)], "certificate"),
             (["--tls-client-ca", str(certificates.ca)], "--tls-client-ca needs --tls-cert")]
    for flags, expected in cases:
        done = subprocess.run([servewatch, "detect", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                               "--state", str(tmp_path / "state"), *flags], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and expected in done.stderr, (flags, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr


def test_exposed_endpoints_and_a_token_on_the_command_line_are_warned_about(detect: Callable[..., Detector]) -> None:
    detector = detect("--metrics-listen", "0.0.0.0:0", "--token", "s3cret")
    deadline = time.monotonic() + 30
    while len(detector.output) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    text = "".join(detector.output)
    assert re.search(r"WARNING .*/metrics, /healthz and /readyz on 0\.0\.0\.0:\d+ \(every interface\) without a "
                     r"token: anyone who can reach it reads the model, feature and signal names", text), text
    assert "--token is visible to every local user" in text and "SERVEWATCH_DETECTOR_TOKEN" in text
    assert "s3cret" not in text


# -- readiness --------------------------------------------------------------------------------------------------

def test_readyz_is_503_while_the_store_cannot_commit_and_ready_again_after(detect: Callable[..., Detector],
                                                                          tmp_path: Path) -> None:
    state = tmp_path / "state"
    detector = detect()
    session = requests.Session()
    logs = detector.endpoint + "/v1/logs"
    assert session.post(logs, data=encode_profiles([_profile("full", "p", 0)]), headers=PROTOBUF,
                        timeout=10).status_code == 200
    assert requests.get(detector.url("/readyz"), timeout=10).status_code == 200
    largest = max(path.stat().st_size for path in state.iterdir())
    _, hard = resource.prlimit(detector.process.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(detector.process.pid, resource.RLIMIT_FSIZE, (largest, hard))   # the disk is full
    statuses = []
    for sequence in range(1, 3000):
        status = session.post(logs, data=encode_profiles([_profile("full", "p", sequence, rows=400)]),
                              headers=PROTOBUF, timeout=30).status_code
        statuses.append(status)
        if status == 503:
            break
    assert statuses[-1] == 503, f"every commit succeeded under a {largest}-byte file size limit"
    ready = requests.get(detector.url("/readyz"), timeout=10)
    assert ready.status_code == 503 and "the store cannot commit" in ready.text, ready.text   # and why
    assert requests.get(detector.url("/healthz"), timeout=10).status_code == 200    # alive, just not ready
    resource.prlimit(detector.process.pid, resource.RLIMIT_FSIZE, (hard, hard))   # space again
    assert session.post(logs, data=encode_profiles([_profile("full", "p", 5000)]), headers=PROTOBUF,
                        timeout=30).status_code == 200
    assert requests.get(detector.url("/readyz"), timeout=10).text == "ready\n"


# -- re-exposed metrics under a flood of long labels -------------------------------------------------------------

def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        return next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmRSS:"))


def _flood(index: int, key_length: int, labels: int) -> bytes:
    """One gauge point whose attribute names are ``key_length`` characters each: tiny once gzipped."""
    attributes = [KeyValue(key=f"{i:03d}-{index:03d}-" + "k" * key_length, value=AnyValue(string_value="v" * 1024))
                  for i in range(labels)]
    request = ExportMetricsServiceRequest(resource_metrics=[ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=[
        Metric(name="flood", gauge=Gauge(data_points=[NumberDataPoint(as_double=1.0, attributes=attributes)]))])])])
    return gzip.compress(request.SerializeToString())


def test_a_flood_of_long_label_names_is_refused_and_memory_stays_bounded(detect: Callable[..., Detector]) -> None:
    detector = detect()
    session = requests.Session()
    session.get(detector.metrics_url, timeout=10)
    before = _rss(detector.process.pid)
    wire = 0
    for index in range(40):                  # each 6 MB of label names: 240 MB held before the limits
        body = _flood(index, 100_000, 60)
        wire += len(body)
        answer = session.post(detector.endpoint + "/v1/metrics", data=body,
                              headers={**PROTOBUF, "Content-Encoding": "gzip"}, timeout=60)
        assert answer.status_code == 200
    page = session.get(detector.metrics_url, timeout=60)
    grown = _rss(detector.process.pid) - before
    print(f"\n{wire / 1e6:.1f} MB on the wire: RSS grew {grown / 2**20:.0f} MiB, /metrics is "
          f"{len(page.content) / 1e3:.0f} kB")
    assert 'servewatch_detector_metric_points_rejected_total{reason="name_limit"} 40.0' in page.text
    assert len(page.content) < 1_000_000 and grown < 100 * 2**20
