"""Shipping closed profiles: as OTLP log records through a LoggerProvider of our own, or to a spool directory.

Usage::

    from servewatch.exporters.profiles import OTLPProfileExporter
    from servewatch.exporters.resource import process_resource

    exporter = OTLPProfileExporter(process_resource(framework="python"))   # endpoint etc. from OTEL_* variables
    exporter.export([inputs, predictions])     # queued, then delivered; what fails stays queued for the next call
    exporter.export([])                        # just retry what is pending
    exporter.pending, exporter.dropped
    exporter.shutdown()

Each profile becomes one log record, event name ``servewatch.profile``, with the attributes and body of
:func:`servewatch.wire.profile_record` (so the detector's decoder reads it), emitted through a
``LoggerProvider`` that belongs to this exporter alone: the global provider is never read or set, no SDK
thread is started and no at-exit or at-fork hook of the SDK's can export on our behalf. Records wait in an
:class:`~servewatch.exporters.outbox.Outbox`; delivery uses the standard OTLP exporter
(``OTLPLogExporter``, HTTP/protobuf unless the protocol is ``grpc``), which reads every
``OTEL_EXPORTER_OTLP_[LOGS_]*`` variable (endpoint, headers, timeout, compression, certificates) and retries
transient failures (429, 502, 503, 504, connection errors) with backoff inside its timeout. A batch that
still fails stays pending and is tried again on the next ``export``; past ``capacity`` pending records the
oldest are dropped and counted (``on_drop``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource

from servewatch import __version__
from servewatch.errors import ProfileError
from servewatch.profile import Profile
from servewatch.wire import EVENT_NAME, profile_record

from .outbox import Outbox

__all__ = ["OTLPProfileExporter", "ProfileExporter", "otlp_log_exporter"]

DEFAULT_CAPACITY = 256
"""Pending profiles kept while the receiver cannot take them (a profile is typically 2-60 KB)."""
DEFAULT_BATCH = 16
"""Profiles per request."""


class ProfileExporter:
    """Base of the profile exporters: an outbox of pending items and a ``_send`` that delivers a batch."""

    def __init__(self, *, capacity: int = DEFAULT_CAPACITY, batch: int = DEFAULT_BATCH,
                 on_drop: Callable[[int], None] | None = None) -> None:
        self._outbox: Outbox[Any] = Outbox(capacity, on_drop=on_drop)
        self._batch = batch
        self._lock = threading.Lock()
        self._refused: ProfileError | None = None

    @property
    def pending(self) -> int:
        """Items waiting for delivery."""
        return len(self._outbox)

    @property
    def dropped(self) -> int:
        """Items dropped so far because too many were pending."""
        return self._outbox.dropped

    def export(self, profiles: Sequence[Profile]) -> int:
        """Queue ``profiles`` and deliver what is pending, oldest first; returns how many were delivered.
        Exceptions of the transport propagate (the items stay pending). What waits is the encoded form, never
        the profiles themselves: a caller that keeps no reference of its own frees their sketches before the
        delivery starts (a delivery stuck on a dead endpoint at interpreter exit then holds no sketch). A
        profile the wire refuses (:class:`~servewatch.wire.Limits`: a name too long, ...) is left out; the
        others are delivered, then its ProfileError is raised."""
        self._queue(profiles)
        del profiles
        with self._lock:
            delivered = self._outbox.deliver(self._send, batch=self._batch)
        refused, self._refused = self._refused, None
        if refused is not None:
            raise refused
        return delivered

    def _encoded(self, profiles: Sequence[Profile], encode: Callable[[Profile], Any]) -> list[Any]:
        """``encode(profile)`` of each profile; one that raises ProfileError is left out (``export`` raises it)."""
        items = []
        for profile in profiles:
            try:
                items.append(encode(profile))
            except ProfileError as error:
                self._refused = self._refused or error
        return items

    def shutdown(self) -> None:
        """Release the transport; pending items are abandoned."""

    def _queue(self, profiles: Sequence[Profile]) -> None:
        self._outbox.put(profiles)

    def _send(self, items: list[Any]) -> bool:
        raise NotImplementedError


class _OutboxProcessor(LogRecordProcessor):
    """Hands every emitted record to the outbox (the delivery is ours, not a batch processor's)."""

    def __init__(self, outbox: Outbox[Any]) -> None:
        self._outbox = outbox

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        self._outbox.put([log_record])

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class OTLPProfileExporter(ProfileExporter):
    """Profiles as OTLP log records; ``exporter`` defaults to the standard OTLP exporter of ``protocol``."""

    def __init__(self, resource: Resource, *, exporter: LogRecordExporter | None = None,
                 protocol: str = "http/protobuf", capacity: int = DEFAULT_CAPACITY, batch: int = DEFAULT_BATCH,
                 on_drop: Callable[[int], None] | None = None) -> None:
        super().__init__(capacity=capacity, batch=batch, on_drop=on_drop)
        self._exporter = exporter if exporter is not None else otlp_log_exporter(protocol)
        unlimited = LogRecordLimits.UNSET  # OTEL_*_ATTRIBUTE_* limits must not truncate the wire attributes
        self._provider = LoggerProvider(resource=resource, shutdown_on_exit=False, meter_provider=NoOpMeterProvider(),
                                        log_record_limits=LogRecordLimits(max_attributes=32,
                                                                          max_attribute_length=unlimited))
        self._provider.add_log_record_processor(_OutboxProcessor(self._outbox))
        self._logger = self._provider.get_logger("servewatch", __version__)

    def _queue(self, profiles: Sequence[Profile]) -> None:
        observed = time.time_ns()
        for attributes, body in self._encoded(profiles, profile_record):
            self._logger.emit(timestamp=int(attributes["servewatch.interval.end"] * 1e9), observed_timestamp=observed,
                              event_name=EVENT_NAME, attributes=attributes, body=body)

    def _send(self, items: list[Any]) -> bool:
        return self._exporter.export(items) == LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        self._provider.shutdown()
        self._exporter.shutdown()


def otlp_log_exporter(protocol: str = "http/protobuf") -> LogRecordExporter:
    """The standard OTLP log exporter for ``protocol`` (``http/protobuf`` or ``grpc``), configured from the
    ``OTEL_EXPORTER_OTLP_[LOGS_]*`` variables; its own metrics go nowhere."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter

        return GrpcLogExporter(meter_provider=NoOpMeterProvider())
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    return OTLPLogExporter(meter_provider=NoOpMeterProvider())
