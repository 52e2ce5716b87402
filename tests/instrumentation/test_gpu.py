"""GPU gauges: the real no-GPU path of this machine, and the GPU path against a fake ``pynvml`` module."""

from __future__ import annotations

import sys
import types
from collections import namedtuple

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from servewatch.instrumentation.gpu import register_gpu_metrics
from servewatch.instrumentation.guard import errors


def read(reader: InMemoryMetricReader) -> dict[str, dict[str, float]]:
    values: dict[str, dict[str, float]] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                values[metric.name] = {p.attributes["hw.id"]: p.value for p in metric.data.data_points}
    return values


def meter_and_reader() -> tuple[object, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return MeterProvider(metric_readers=[reader]).get_meter("test"), reader


def test_no_gpu_registers_nothing() -> None:
    """Real: nvidia-ml-py is installed here but there is no driver or GPU, so NVML cannot start."""
    pytest.importorskip("pynvml")
    meter, reader = meter_and_reader()
    assert register_gpu_metrics(meter) == 0
    assert read(reader) == {}


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    fake = types.ModuleType("pynvml")
    Memory = namedtuple("Memory", "total free used")
    Rates = namedtuple("Rates", "gpu memory")
    state = {"broken": False}

    def utilization(handle: int) -> Rates:
        if state["broken"] and handle == 1:
            raise RuntimeError("GPU is lost")
        return Rates(gpu=[37, 90][handle], memory=10)

    fake.nvmlInit = lambda: None
    fake.nvmlShutdown = lambda: None
    fake.nvmlDeviceGetCount = lambda: 2
    fake.nvmlDeviceGetHandleByIndex = lambda index: index
    fake.nvmlDeviceGetUUID = lambda handle: f"GPU-{handle}".encode()
    fake.nvmlDeviceGetUtilizationRates = utilization
    fake.nvmlDeviceGetMemoryInfo = lambda handle: Memory(total=80 * 2**30, free=0, used=(handle + 1) * 2**30)
    fake.state = state
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    return fake


def test_gauges_per_device(fake_nvml: types.ModuleType) -> None:
    meter, reader = meter_and_reader()
    assert register_gpu_metrics(meter) == 2
    values = read(reader)
    assert values["hw.gpu.utilization"] == {"GPU-0": 0.37, "GPU-1": 0.9}
    assert values["hw.gpu.memory.usage"] == {"GPU-0": 2**30, "GPU-1": 2 * 2**30}
    assert values["hw.gpu.memory.limit"] == {"GPU-0": 80 * 2**30, "GPU-1": 80 * 2**30}


def test_a_failing_device_is_skipped_and_counted(fake_nvml: types.ModuleType) -> None:
    errors.reset()
    meter, reader = meter_and_reader()
    register_gpu_metrics(meter)
    fake_nvml.state["broken"] = True
    assert read(reader)["hw.gpu.utilization"] == {"GPU-0": 0.37}
    assert errors.counts() == {"gpu": 1}


def test_nvml_that_cannot_start_means_no_gauges(fake_nvml: types.ModuleType) -> None:
    def fail() -> None:
        raise RuntimeError("NVML Shared Library Not Found")

    fake_nvml.nvmlInit = fail
    meter, reader = meter_and_reader()
    assert register_gpu_metrics(meter) == 0


def real_gpus() -> int:
    """How many GPUs the real NVML finds here (0 without nvidia-ml-py, a driver or a device)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:
        return 0
    try:
        return int(pynvml.nvmlDeviceGetCount())
    finally:
        pynvml.nvmlShutdown()


@pytest.mark.skipif(not real_gpus(), reason="no GPU that NVML can read on this machine")
def test_real_gpus_match_nvml() -> None:
    """On a machine with GPUs: one gauge per device, under its NVML UUID, agreeing with NVML read directly."""
    import pynvml

    meter, reader = meter_and_reader()
    assert register_gpu_metrics(meter) == real_gpus()
    values = read(reader)
    pynvml.nvmlInit()
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            assert values["hw.gpu.memory.limit"][uuid] == memory.total
            assert abs(values["hw.gpu.memory.usage"][uuid] - memory.used) <= 0.05 * memory.total
            assert 0.0 <= values["hw.gpu.utilization"][uuid] <= 1.0
    finally:
        pynvml.nvmlShutdown()
