"""The ``opentelemetry_instrumentor`` entry points of the distribution, loaded the way ``opentelemetry-instrument``
loads them, in fresh interpreters where nothing but what registering import hooks needs can be imported.

``opentelemetry-instrument`` loads every entry point of an installed distribution whose ``instruments-any``
requirement one framework satisfies (so a Ray process loads the TorchServe entry point too), and aborts all
auto-instrumentation of the process, other vendors' included, when one of them raises anything but an
``ImportError``. Here the frameworks are absent (``ModuleNotFoundError``) and the heavy libraries are broken
(``RuntimeError`` on import, as a wheel built for another platform may be under an injected ``PYTHONPATH``):
each entry point must still load, instrument and uninstrument, count no error, and not even try to import them
(which is also what keeps every process started under ``opentelemetry-instrument`` cheap).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib.metadata import distribution

import pytest

FRAMEWORKS = ("torch", "ts", "ray", "pytriton", "tritonclient")
HEAVY = ("numpy", "datasketches", "scipy", "pandas", "yaml", "opentelemetry.sdk", "opentelemetry.exporter",
         "google.protobuf", "pynvml")
OURS = sorted(ep.name for ep in distribution("servewatch").entry_points if ep.group == "opentelemetry_instrumentor")

SCRIPT = textwrap.dedent("""
    import json, sys
    from importlib.abc import MetaPathFinder
    from importlib.metadata import distribution

    FRAMEWORKS, HEAVY, NAME = {frameworks!r}, {heavy!r}, {name!r}
    attempts = []

    class Blocker(MetaPathFinder):
        def find_spec(self, fullname, path=None, target=None):
            for blocked, error in [(m, ModuleNotFoundError) for m in FRAMEWORKS] + [(m, RuntimeError) for m in HEAVY]:
                if fullname == blocked or fullname.startswith(blocked + "."):
                    attempts.append(fullname)
                    raise error(f"{{fullname}} is blocked by the test")
            return None

    for name in list(sys.modules):      # nothing of the kind may be loaded already (site, .pth files)
        if name.split(".")[0] in FRAMEWORKS or any(name == h or name.startswith(h + ".") for h in HEAVY):
            del sys.modules[name]
    sys.meta_path.insert(0, Blocker())

    (entry_point,) = [ep for ep in distribution("servewatch").entry_points
                      if ep.group == "opentelemetry_instrumentor" and ep.name == NAME]
    instrumentor = entry_point.load()()                  # what opentelemetry's DefaultDistro.load_instrumentor does
    instrumentor.instrument(skip_dep_check=True)
    patched = instrumentor.is_instrumented_by_opentelemetry
    instrumentor.uninstrument()
    from servewatch.instrumentation import errors

    print(json.dumps({{"patched": patched, "errors": errors.counts(), "attempts": attempts}}))
""")


def _load(name: str) -> dict[str, object]:
    code = SCRIPT.format(frameworks=FRAMEWORKS, heavy=HEAVY, name=name)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_distribution_declares_the_four_instrumentors() -> None:
    assert OURS == ["servewatch_pytriton", "servewatch_ray_serve", "servewatch_torchserve", "servewatch_tritonclient"]


@pytest.mark.parametrize("name", OURS)
def test_entry_point_loads_instruments_and_uninstruments_with_nothing_heavy(name: str) -> None:
    outcome = _load(name)
    assert outcome == {"patched": True, "errors": {}, "attempts": []}
