"""The /metrics endpoint as scrapers see it: gzip on request, /readyz with its reason, keep-alive, HEAD."""

from __future__ import annotations

import gzip
import http.client
from collections.abc import Iterator

import pytest
from prometheus_client.core import GaugeMetricFamily
from servewatch.detectors.service.prometheus import Exposition, MetricsServer, Snapshot


@pytest.fixture
def served() -> Iterator[tuple[MetricsServer, list[bool | str]]]:
    readiness: list[bool | str] = [True]
    exposition = Exposition()
    snapshot = Snapshot([GaugeMetricFamily("servewatch_test_value", "A value", value=float(n)) for n in range(1)])
    exposition.register(snapshot)
    server = MetricsServer(exposition, ("127.0.0.1", 0), ready=lambda: readiness[0]).start()
    try:
        yield server, readiness
    finally:
        server.stop()


class _Answer:
    def __init__(self, connection: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> None:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        self.status, self.body, self.getheader = response.status, response.read(), response.getheader


def _get(connection: http.client.HTTPConnection, path: str, **headers: str) -> _Answer:
    return _Answer(connection, path, headers)


def test_metrics_are_gzipped_when_the_scraper_asks(served: tuple[MetricsServer, list[bool | str]]) -> None:
    server, _ = served
    connection = http.client.HTTPConnection(*server.address, timeout=10)
    plain = _get(connection, "/metrics")
    assert plain.getheader("Content-Encoding") is None and b"servewatch_test_value 0.0" in plain.body
    zipped = _get(connection, "/metrics", **{"Accept-Encoding": "gzip, deflate"})   # the same connection
    assert zipped.getheader("Content-Encoding") == "gzip" and zipped.getheader("Vary") == "Accept-Encoding"
    assert gzip.decompress(zipped.body) == plain.body
    refused = _get(connection, "/metrics", **{"Accept-Encoding": "gzip;q=0, identity"})
    assert refused.getheader("Content-Encoding") is None
    connection.request("HEAD", "/metrics")
    head = connection.getresponse()
    assert head.status == 200 and head.read() == b"" and int(head.getheader("Content-Length", "0")) > 0
    connection.close()


def test_readyz_says_why_it_is_not_ready(served: tuple[MetricsServer, list[bool | str]]) -> None:
    server, readiness = served
    connection = http.client.HTTPConnection(*server.address, timeout=10)
    assert _get(connection, "/readyz").body == b"ready\n"
    readiness[0] = "the store cannot commit: disk I/O error"
    answer = _get(connection, "/readyz")
    assert answer.status == 503 and answer.body == b"not ready: the store cannot commit: disk I/O error\n"
    readiness[0] = False
    assert _get(connection, "/readyz").status == 503
    assert _get(connection, "/healthz").status == 200
    assert _get(connection, "/nothing").status == 404
    connection.close()
