"""One run of the demo, start to finish: set up, serve, replay, watch, judge, write, clean up.

Usage::

    from servewatch.demo.runner import Demo

    status = Demo(Path("demo-out"), fast=False, live=True).run()    # 0: every phase flagged what it should

In order: train the model and profile the training days into the reference; write the spec, dashboards,
rules and Alertmanager config; start the detector (in this process, on free loopback ports, its store in
``OUT/state``), Prometheus and Alertmanager with the generated rules and a webhook receiver here (where
installed), and the instrumented model server (uvicorn, a child process) exporting to the detector over
OTLP/HTTP; replay the phases while reading the detector's results after each evaluation (a second apart);
then stop every process and write the per-phase verdict, the reports and ``summary.json``. Ctrl-C, SIGTERM
and errors stop everything as well. The reports are drawn from the detector's own stored sketches: at the
evaluation where a phase's drift peaked, the demo reads that window's buckets back from the store.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from ..alerts import Config, Receivers, alertmanager_config
from ..detectors.service import DetectorService
from ..profile import Profile
from .artifacts import (
    MODEL,
    check_monitoring,
    instructions,
    write_model,
    write_monitoring,
    write_reference,
    write_report,
    write_spec,
)
from .phases import Schedule, schedule
from .replayer import Replayer
from .stack import (
    DemoError,
    Processes,
    Webhook,
    alerting_binaries,
    environment,
    server_url,
    start_alerting,
    start_server,
)
from .summary import Page, describe, format_summary, grouped, outcomes, pages, summary_document
from .timeline import Timeline
from .view import Status, make_view
from .weather import MODEL_VARIABLE, Days

__all__ = ["Demo"]

WINDOW = 6.0
FAST_WINDOW = 4.0
RATE = 40.0
"""Requests a second; with 20 to 80 days each, about 2,000 rows a second: 12,000 per 6 s window."""


class Demo:
    """See the module docstring."""

    def __init__(self, out: Path, *, fast: bool = False, live: bool = True, stream: TextIO | None = None,
                 rate: float = RATE) -> None:
        self.out = out
        self.fast = fast
        self.window = FAST_WINDOW if fast else WINDOW
        self.plan: Schedule = schedule(self.window, fast=fast)
        self.stream = stream or sys.stdout
        self.view = make_view(self.stream, live=live)
        self.rate = rate
        self.processes = Processes(out / "logs")
        self.detector: DetectorService | None = None
        self.webhook: Webhook | None = None
        self.replayer: Replayer | None = None
        self.captures: dict[str, tuple[float, dict[str, Profile]]] = {}
        self.hold = self.window
        """``for`` of the drift alerts (a page's phase is where its condition began: startsAt - hold)."""

    def run(self) -> int:
        began = time.time()
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            return self._run(began)
        except KeyboardInterrupt:
            self.view.close()
            self.stream.write("\nservewatch demo: interrupted; stopping everything\n")
            return 130
        finally:
            self._stop()
            signal.signal(signal.SIGTERM, previous)

    # -- the steps -------------------------------------------------------------------------------------------

    def _run(self, began: float) -> int:
        out, say = self.out, self.view.event
        out.mkdir(parents=True, exist_ok=True)
        _fresh_state(out / "state")
        days = Days.load()
        spec = write_spec(out, self.window)
        model_spec = spec.model(MODEL)
        model = write_model(out, days)
        say(f"model: softmax regression on {len(days):,} days of Seattle weather (2012-2015), "
            f"{model.accuracy(days):.0%} of weather types right; {out / 'model.json'}")
        references = write_reference(out, model_spec, days, model)
        say(f"reference: the training days and the model's answers, profiled: {out / 'reference.pb'}")
        written = write_monitoring(spec, out)
        checks = check_monitoring(written)
        self.detector = DetectorService(spec, state_dir=out / "state", listen="127.0.0.1:0",
                                        metrics_listen="127.0.0.1:0").start()
        say(self.detector.describe())
        start_server(self.processes, _server_environment(out, self.detector.endpoint))  # boots meanwhile
        alerting = None
        binaries = alerting_binaries()
        if binaries is not None:
            self.webhook = Webhook().start()
            receivers = Receivers(self.webhook.url("pager"), self.webhook.url("tickets"))
            alerting = start_alerting(self.processes, out / "stack", binaries, written.rules,
                                      alertmanager_config(spec, Config(), receivers), self.detector.metrics_url,
                                      Config().detector_job)
            say(f"Prometheus {alerting.prometheus} (rules {written.rules}), Alertmanager {alerting.alertmanager}, "
                f"paging {receivers.pager}")
        else:
            say("prometheus / alertmanager not installed: showing what would page, without delivering pages")
        server = server_url(self.processes)
        say(f"model server: uvicorn + FastAPI at {server}/predict, instrumented with servewatch.instrumentation."
            f"monitor, exporting to {self.detector.endpoint}")
        setup = time.time() - began
        self.hold = Config().timing(spec).drift_for(model_spec)
        timeline = self._replay(server, days, model_spec, alerting is not None)
        delivered = self._pages()
        self._stop()
        replayed = time.time() - began - setup
        started = self.replayer.started if self.replayer and self.replayer.started else began
        results = outcomes(self.plan, started, timeline, delivered)
        reports = []
        for name, (_at, currents) in self.captures.items():
            html, png, pictured = write_report(out, name, model_spec, references, currents)
            reports.append(f"  {name:14s} {html}  {png.name}  ({', '.join(pictured) or 'no drifted column'})")
        info = {"model": MODEL, "fast": self.fast, "window": self.window, "rate": self.rate,
                "setup_seconds": round(setup, 1), "replay_seconds": round(replayed, 1),
                "wall_seconds": round(time.time() - began, 1),
                "requests": self.replayer.requests if self.replayer else 0,
                "rows": self.replayer.rows if self.replayer else 0,
                "failures": self.replayer.failures if self.replayer else 0,
                "alerting": alerting is not None, "checks": checks,
                "pages": sum(len(result.pages) for result in results), "hold": self.hold}
        (out / "summary.json").write_text(json.dumps(summary_document(results, info), indent=2), encoding="utf-8")
        self._print_end(results, reports, instructions(out, written, checks), info)
        return 0 if all(result.ok for result in results) else 1

    def _replay(self, server: str, days: Days, model_spec: Any, alerting: bool) -> Timeline:
        assert self.detector is not None
        timeline = Timeline(model_spec)
        self.replayer = Replayer(f"{server}/predict", days, self.plan, rate=self.rate).start()
        phase, drifting, seen_pages, next_draw = -1, False, 0, 0.0
        flagged: set[tuple[int, str]] = set()
        while not self.replayer.done:
            self.processes.check()
            now = time.time()
            at = self.replayer.at(now)
            if at is not None and (at.index, at.drifting) != (phase, drifting):
                phase, drifting = at.index, at.drifting
                self.view.event(_phase_line(at, len(self.plan.phases)))
            if timeline.record(self.detector.results()):
                self._capture(timeline)
                evaluated = timeline.latest_time or now
                where = self.replayer.at(evaluated)
                if where is not None:
                    for reading in timeline.latest.values():
                        if reading.critical and (where.index, reading.column) not in flagged:
                            flagged.add((where.index, reading.column))
                            self.view.event(f"    flagged {reading.column} ({reading.worst} {reading.worst_value:.3f})"
                                            f" {where.elapsed:.1f} s into {where.phase.name}")
            delivered = [page for page in self._pages() if page.receiver == "pager"]
            for page, statistics in grouped(delivered[seen_pages:]):
                self.view.event(f"    PAGE {describe(page, statistics)}")
            seen_pages = len(delivered)
            if time.monotonic() >= next_draw:
                next_draw = time.monotonic() + 1.0
                self.view.update(Status(self.plan, MODEL, self.detector.interval, self.replayer.elapsed(),
                                        self.replayer.requests, self.replayer.rows, at, timeline.latest,
                                        delivered, alerting))
            time.sleep(0.2)
        self.view.close()
        if self.replayer.requests == 0:
            raise DemoError(f"the model server answered no request ({self.replayer.last_error}); "
                            f"its log: {self.processes.log_path('server')}")
        return timeline

    def _capture(self, timeline: Timeline) -> None:
        """Keep the detector's stored profiles of the window where the current phase's drift peaks so far."""
        assert self.detector is not None and self.detector.store is not None and self.replayer is not None
        at_time = timeline.latest_time
        where = self.replayer.at(at_time) if at_time is not None else None
        if where is None or not where.phase.expected:
            return
        score = max((timeline.latest[name].score for name in where.phase.expected if name in timeline.latest),
                    default=0.0)
        best = self.captures.get(where.phase.name)
        if score <= 1.0 or (best is not None and score <= best[0]):
            return
        store, now = self.detector.store, time.time()
        profiles = {signal_: store.merged(MODEL, signal_, at_time - self.window, at_time, now)
                    for signal_ in ("input", "prediction")}
        found = {signal_: profile for signal_, profile in profiles.items() if profile is not None}
        if found:
            self.captures[where.phase.name] = (score, found)

    def _pages(self) -> list[Page]:
        if self.webhook is None or self.replayer is None or self.replayer.started is None:
            return []
        return pages(self.webhook.received(), self.plan, self.replayer.started, self.hold)

    def _print_end(self, results: list[Any], reports: list[str], how: str, info: dict[str, Any]) -> None:
        write = self.stream.write
        write(f"\n{format_summary(results)}\n")
        write(f"\n{info['requests']:,} requests ({info['rows']:,} days of weather) in {info['wall_seconds']:.0f} s "
              f"(setup {info['setup_seconds']:.0f} s); {info['pages']} page(s) delivered"
              f"{'' if info['alerting'] else ' (no Prometheus / Alertmanager installed)'}\n")
        if reports:
            write("\nPictures of each phase's most drifted window (from the detector's stored sketches):\n")
            write("\n".join(reports) + "\n")
        write(f"\n{how}\n\nSummary: {self.out / 'summary.json'}; logs: {self.out / 'logs'}\n")
        failed = [result.name for result in results if not result.ok]
        write("servewatch demo: every phase flagged exactly its drifted columns\n" if not failed else
              f"servewatch demo: FAILED phases: {', '.join(failed)}\n")
        self.stream.flush()

    def _stop(self) -> None:
        """Stop everything started, newest first (idempotent)."""
        if self.replayer is not None:
            self.replayer.stop()
        self.processes.stop()
        if self.webhook is not None:
            self.webhook.stop()
            self.webhook = None
        if self.detector is not None:
            self.detector.stop()
            self.detector = None


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _phase_line(at: Any, count: int) -> str:
    phase = at.phase
    if not at.drifting:
        return f"  {phase.name}: drift over; {phase.recovery:g} s of baseline traffic for its flags to clear"
    expected = ", ".join(phase.expected) or "nothing"
    return f"> phase {at.index + 1}/{count} {phase.name} ({phase.seconds:g} s): {phase.title}; should flag: {expected}"


def _server_environment(out: Path, endpoint: str) -> dict[str, str]:
    """The server's environment: ours, without the caller's OTEL_* / SERVEWATCH_* settings that would send
    the data elsewhere."""
    base = {key: value for key, value in environment().items() if not key.startswith(("OTEL_", "SERVEWATCH_"))}
    return {**base, "PYTHONUNBUFFERED": "1", MODEL_VARIABLE: str(out / "model.json"),
            "SERVEWATCH_SPEC": str(out / "servewatch.yaml"), "SERVEWATCH_PROFILE_INTERVAL": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000", "OTEL_SERVICE_NAME": "weather-server"}


def _fresh_state(state: Path) -> None:
    """Start the detector's store afresh: remove ``state`` if it holds only a previous run's store."""
    if state.is_dir() and all(path.name.startswith("detector.db") for path in state.iterdir()):
        shutil.rmtree(state)
    elif state.exists():
        raise DemoError(f"{state} exists and is not a servewatch demo store: choose another --out")

