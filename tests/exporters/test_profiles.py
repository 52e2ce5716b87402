"""Profiles as OTLP log records over the real OTLP/HTTP exporter: wire form, resource, headers, retries, bounds,
and no global provider touched."""

from __future__ import annotations

import socket
from typing import Any

import numpy as np
import pytest
from opentelemetry import _logs, metrics
from servewatch.exporters.profiles import OTLPProfileExporter
from servewatch.exporters.resource import process_resource

from servewatch.profile import Profile
from servewatch.wire import EVENT_NAME, parse_request

pytestmark = pytest.mark.integration


def profile(sequence: int = 1, signal: str = "input") -> Profile:
    data = {"amount": np.random.default_rng(sequence).normal(100, 20, 300), "country": ["DE", "US", "FR"] * 100}
    made = Profile.from_data(data, model="fraud", signal=signal)
    made.start, made.end, made.producer, made.sequence = 1_700_000_000.0, 1_700_000_060.0, "p-1", sequence
    return made


def test_records_reach_the_receiver_as_the_detector_decodes_them(receiver: Any, monkeypatch: pytest.MonkeyPatch,
                                                                 ) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "authorization=Bearer%20s3cret,x-tenant=a")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "fraud-api")
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "3")          # must not truncate our attributes
    sent = [profile(1), profile(1, "prediction"), profile(2)]
    exporter = OTLPProfileExporter(process_resource(framework="python", instance_id="p-1"))
    assert exporter.export(sent) == 3 and exporter.pending == 0
    exporter.shutdown()
    (request,) = receiver.of("/v1/logs")
    assert request.headers["authorization"] == "Bearer s3cret" and request.headers["x-tenant"] == "a"
    records = parse_request(request.body).resource_logs[0].scope_logs[0].log_records
    assert {record.event_name for record in records} == {EVENT_NAME}
    received = receiver.profiles()
    assert [(p.model, p.signal, p.sequence) for p, _ in received] == [("fraud", "input", 1),
                                                                       ("fraud", "prediction", 1), ("fraud", "input", 2)]
    first, resource = received[0]
    assert resource["service.name"] == "fraud-api" and resource["service.instance.id"] == "p-1"
    assert first.columns["amount"].sketch.get_quantile(0.5) == sent[0].columns["amount"].sketch.get_quantile(0.5)
    assert first.columns["country"].categories() == {"DE": 100.0, "US": 100.0, "FR": 100.0}


def test_an_unreachable_endpoint_keeps_profiles_pending_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:                 # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "0.5")
    drops: list[int] = []
    exporter = OTLPProfileExporter(process_resource(framework="python"), capacity=4, on_drop=drops.append)
    for sequence in range(1, 7):
        assert exporter.export([profile(sequence)]) == 0
    assert exporter.pending == 4 and exporter.dropped == 2 and drops == [1, 1]
    exporter.shutdown()


def test_server_errors_are_retried_and_kept(receiver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", receiver.endpoint + "/v1/logs")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1.5")
    receiver.status = 503                          # transient: the OTLP exporter retries with backoff, then gives up
    exporter = OTLPProfileExporter(process_resource(framework="python"))
    assert exporter.export([profile(1)]) == 0 and exporter.pending == 1
    assert len(receiver.of("/v1/logs")) >= 2       # retried
    receiver.status = 200
    assert exporter.export([profile(2)]) == 2
    assert [p.sequence for p, _ in receiver.profiles()][-2:] == [1, 2]
    exporter.shutdown()


def test_the_global_providers_are_left_alone(receiver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    before = (type(_logs.get_logger_provider()), type(metrics.get_meter_provider()))
    OTLPProfileExporter(process_resource(framework="python")).export([profile()])
    assert (type(_logs.get_logger_provider()), type(metrics.get_meter_provider())) == before
    assert "Proxy" in before[0].__name__ and "Proxy" in before[1].__name__


def test_a_profile_the_wire_refuses_is_left_out_and_the_others_delivered(receiver: Any,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The encoder applies the decoder's limits: a refused profile is left out with its ProfileError (the
    runtime counts it), the profiles beside it are delivered in the same call."""
    from servewatch.errors import ProfileError

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    exporter = OTLPProfileExporter(process_resource(framework="python", instance_id="p-1"))
    refused = Profile.from_data({"x" * 300: [1.0]}, model="fraud")   # a column name past the 256-character limit
    with pytest.raises(ProfileError) as raised:
        exporter.export([profile(1), refused, profile(2)])
    assert raised.value.reason == "name_length" and exporter.pending == 0
    exporter.shutdown()
    assert [p.sequence for p, _ in receiver.profiles()] == [1, 2]
