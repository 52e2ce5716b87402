"""``servewatch demo``: the whole loop on one machine, with drift you can watch.

Usage::

    servewatch demo                  # or: make demo (sets itself up first)
    servewatch demo --fast --no-live --out /tmp/sw-demo

A small real model (a softmax regression trained here on four years of Seattle's daily weather, bundled as
package data ``servewatch.demo.data``) is served by FastAPI under uvicorn and instrumented with
:func:`servewatch.instrumentation.monitor`; it exports profiles and metrics over OTLP/HTTP to the detector
(:class:`~servewatch.detectors.service.DetectorService`, in the demo's process), which Prometheus scrapes with
the generated alert rules, paging a webhook of the demo through Alertmanager. A replayer sends real days at a
compressed time scale (1 s buckets, a 6 s window): a baseline, then instantaneous, gradual, periodic and
temporary drift (:mod:`.phases`). The demo shows the detector's table live, checks that each phase flagged
exactly the columns it drifted, and writes dashboards, rules, the Alertmanager config, picture reports and
``summary.json`` (:mod:`.artifacts`).

Modules: :mod:`.weather` (data and model), :mod:`.server` (the model server), :mod:`.phases` (the script),
:mod:`.replayer` (the traffic), :mod:`.stack` (processes, webhook, Prometheus and Alertmanager),
:mod:`.timeline` (the detector's readings), :mod:`.summary` (the verdict), :mod:`.view` (the terminal),
:mod:`.artifacts` (the outputs), :mod:`.runner` (one run), :mod:`.command` (the command line).
"""

from __future__ import annotations

from .phases import Phase, Schedule, schedule
from .weather import Days, WeatherModel

__all__ = ["Days", "Phase", "Schedule", "WeatherModel", "schedule"]
