"""The package's names load lazily: importing it (or one module) pulls in no OpenTelemetry SDK pieces."""

from __future__ import annotations

import subprocess
import sys

import servewatch.exporters as exporters


def test_every_public_name_resolves() -> None:
    for name in exporters.__all__:
        assert getattr(exporters, name) is not None
    assert set(exporters.__all__) <= set(dir(exporters))


def test_importing_the_package_or_the_instrumentation_loads_no_sdk() -> None:
    code = ("import sys, servewatch.exporters, servewatch.instrumentation\n"
            "loaded = [m for m in sys.modules if m.startswith(('opentelemetry.sdk', 'opentelemetry.exporter'))]\n"
            "assert not loaded, loaded\n")
    subprocess.run([sys.executable, "-c", code], check=True)
