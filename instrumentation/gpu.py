"""GPU metrics from NVML (``nvidia-ml-py``, extra ``gpu``), as observable gauges, where NVML finds a GPU.

Usage::

    from servewatch.instrumentation.gpu import register_gpu_metrics

    devices = register_gpu_metrics(meter)     # 0 where pynvml is missing, NVML cannot start, or there is no GPU

==========================  =====  ==========================================================
name                        unit   value, per ``hw.id`` (the device's NVML UUID)
==========================  =====  ==========================================================
``hw.gpu.utilization``      1      fraction of the last sample period a kernel ran (0..1)
``hw.gpu.memory.usage``     By     device memory in use
``hw.gpu.memory.limit``     By     device memory in total
==========================  =====  ==========================================================

Names and units follow the OpenTelemetry hardware semantic conventions. ``pynvml`` is imported here only, when
the instrumentation starts serving; the callbacks read NVML at collection time (a few microseconds per
device), and a device that fails to answer is skipped for that collection and counted (``gpu``). Every serving
process of a machine reports the GPUs it sees, told apart by ``service.instance.id``: aggregate by ``hw_id``
with ``max`` in PromQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from .. import metrics as m
from .guard import errors

__all__ = ["register_gpu_metrics"]


def register_gpu_metrics(meter: Meter) -> int:
    """Register the GPU gauges on ``meter`` when NVML finds devices; returns how many."""
    try:
        import pynvml
    except ImportError:
        return 0
    try:
        pynvml.nvmlInit()
    except Exception:  # pynvml.NVMLError: no driver / library (this is the no-GPU path, not an error)
        return 0
    try:
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            devices.append((uuid.decode() if isinstance(uuid, bytes) else str(uuid), handle))
    except Exception as error:
        errors.report("gpu", error)
        devices = []
    if not devices:
        pynvml.nvmlShutdown()
        return 0

    def gauge(read: Callable[[Any], float]) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            for device, handle in devices:
                try:
                    value = read(handle)
                except Exception as error:
                    errors.report("gpu", error)
                    continue
                yield Observation(value, {m.HW_ID_ATTRIBUTE: device})
        return callback

    for instrument, read, description in (
            (m.GPU_UTILIZATION, lambda h: pynvml.nvmlDeviceGetUtilizationRates(h).gpu / 100.0,
             "Fraction of time the GPU was busy"),
            (m.GPU_MEMORY_USAGE, lambda h: float(pynvml.nvmlDeviceGetMemoryInfo(h).used), "GPU memory in use"),
            (m.GPU_MEMORY_LIMIT, lambda h: float(pynvml.nvmlDeviceGetMemoryInfo(h).total), "GPU memory in total")):
        meter.create_observable_gauge(instrument.name, [gauge(read)], unit=instrument.unit, description=description)
    return len(devices)
