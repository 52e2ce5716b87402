"""servewatch: drift and data-quality observability for model serving, inside the stack you already run.

Usage::

    import servewatch

    spec = servewatch.load_spec("servewatch.yaml")
    reference = servewatch.Profile.from_data(training_rows, model="fraud", spec=spec.model("fraud"))
    current = servewatch.Profile.from_data(todays_rows, model="fraud", spec=spec.model("fraud"))

    from servewatch.detectors import compare
    print(compare(reference, current, spec.model("fraud")).table())

The subpackages: :mod:`servewatch.instrumentation` (inside serving processes), :mod:`servewatch.exporters`
(what serving processes ship: profiles and metrics over OTLP, or to a spool), :mod:`servewatch.detectors` (the
statistics library and the detector service, with its ``/metrics`` exposition), :mod:`servewatch.dashboards` and
:mod:`servewatch.alerts` (Grafana and Prometheus rules from the spec), :mod:`servewatch.demo` (``servewatch demo``).
Importing ``servewatch`` loads none of them, and no framework (torch, ray, tritonclient) ever.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_attributes

if TYPE_CHECKING:
    from .column import ColumnProfile
    from .errors import ProfileError, ServewatchError, SpecError
    from .profile import Profile
    from .spec import ModelSpec, Spec, load_spec

__all__ = [
    "ColumnProfile",
    "ModelSpec",
    "Profile",
    "ProfileError",
    "ServewatchError",
    "Spec",
    "SpecError",
    "__version__",
    "load_spec",
]

__version__ = "0.1.0"
"""The version of the distribution (pyproject.toml reads it from here) and of ``servewatch --version``."""

# Names load on first use: ``import servewatch.instrumentation.<framework>`` runs in every process started under
# opentelemetry-instrument (TorchServe's metric collector, Ray's helpers) and must not import numpy or datasketches.
_HOMES = {
    "ColumnProfile": "column",
    "ModelSpec": "spec",
    "Profile": "profile",
    "ProfileError": "errors",
    "ServewatchError": "errors",
    "Spec": "spec",
    "SpecError": "errors",
    "load_spec": "spec",
}

__getattr__, __dir__ = lazy_attributes(__name__, __all__, _HOMES)
