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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..alerts import Config, Receivers, alertmanager_config
from ..detectors.service import DetectorService
from ..profile import Profile
from ..spec import ModelSpec, Spec
from .artifacts import (
    MODEL,
    Monitoring,
    check_monitoring,
    instructions,
    report_command,
    write_model,
    write_monitoring,
    write_reference,
    write_spec,
    write_window,
)
from .phases import Schedule, schedule
from .replayer import Replayer
from .stack import (
    Alerting,
    DemoError,
    Processes,
    Webhook,
    alerting_binaries,
    environment,
    server_url,
    start_alerting,
    start_server,
)
from .summary import Outcome, Page, describe, format_summary, grouped, outcomes, pages, summary_document
from .timeline import Timeline
from .view import Status, make_view
from .weather import MODEL_VARIABLE, Days

__all__ = ["Demo"]

WINDOW = 6.0
FAST_WINDOW = 4.0
RATE = 40.0
"""Requests a second; with 20 to 80 days each, about 2,000 rows a second: 12,000 per 6 s window."""


@dataclass
class _Setup:
    """What the set-up produced."""

    spec: Spec
    model: ModelSpec
    written: Monitoring
    checks: dict[str, str]
    server: str
    alerting: Alerting | None
    seconds: float


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
        """phase -> (score, the detector's stored profiles by signal) of its most drifted window so far."""
        self.reports: list[str] = []
        """Phases whose report is being written."""
        self.hold = self.window
        """``for`` of the drift alerts (a page's phase is where its condition began: startsAt - hold)."""

    def run(self) -> int:
        """The whole demo; the exit status (0 all phases as expected, 1 not, 130 interrupted)."""
        began = time.time()
        previous = {signum: signal.signal(signum, _interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)}
        try:
            return self._run(began)
        except KeyboardInterrupt:
            self.view.close()
            self.stream.write("\nservewatch demo: interrupted; stopping everything\n")
            return 130
        finally:
            self._stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _run(self, began: float) -> int:
        setup = self._setup(began)
        timeline = self._replay(setup)
        replayed = time.time() - began - setup.seconds
        reports = self._finish_reports()
        delivered = self._pages()
        self._stop()
        assert self.replayer is not None and self.replayer.started is not None
        results = outcomes(self.plan, self.replayer.started, timeline, delivered)
        info = {"model": MODEL, "fast": self.fast, "window": self.window, "rate": self.rate,
                "setup_seconds": round(setup.seconds, 1), "replay_seconds": round(replayed, 1),
                "wall_seconds": round(time.time() - began, 1), "requests": self.replayer.requests,
                "rows": self.replayer.rows, "failures": self.replayer.failures,
                "alerting": setup.alerting is not None, "checks": setup.checks,
                "pages": len(grouped([page for result in results for page in result.pages])),
                "notifications": sum(len(result.pages) for result in results), "hold": self.hold}
        document = summary_document(results, info)
        (self.out / "summary.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
        self._print_end(results, reports, instructions(self.out, setup.written, setup.checks), info)
        return 0 if document["ok"] else 1

    # -- set-up ----------------------------------------------------------------------------------------------

    def _setup(self, began: float) -> _Setup:
        out, say = self.out, self.view.event
        out.mkdir(parents=True, exist_ok=True)
        for folder, ours in (("state", ("detector.db",)), ("stack", _STACK)):
            _fresh(out / folder, ours)
        days = Days.load()
        spec = write_spec(out, self.window)
        model_spec = spec.model(MODEL)
        self.hold = Config().timing(spec).drift_for(model_spec)
        model = write_model(out, days)
        say(f"model: softmax regression on {len(days):,} days of Seattle weather (2012-2015), "
            f"{model.accuracy(days):.0%} of weather types right; {out / 'model.json'}")
        write_reference(out, model_spec, days, model)
        say(f"reference: the training days and the model's answers, profiled: {out / 'reference.pb'}")
        written = write_monitoring(spec, out)
        checks = check_monitoring(written)
        self.detector = DetectorService(spec, state_dir=out / "state", listen="127.0.0.1:0",
                                        metrics_listen="127.0.0.1:0").start()
        say(self.detector.describe())
        start_server(self.processes, _server_environment(out, self.detector.endpoint))  # boots meanwhile
        alerting = self._start_alerting(spec, written)
        server = server_url(self.processes)
        say(f"model server: uvicorn + FastAPI at {server}/predict, instrumented with "
            f"servewatch.instrumentation.monitor, exporting to {self.detector.endpoint}")
        return _Setup(spec, model_spec, written, checks, server, alerting, time.time() - began)

    def _start_alerting(self, spec: Spec, written: Monitoring) -> Alerting | None:
        assert self.detector is not None
        binaries = alerting_binaries()
        if binaries is None:
            self.view.event("prometheus / alertmanager not installed: the table shows what would page; install "
                            "them (Debian: prometheus prometheus-alertmanager) to see the pages delivered")
            return None
        self.webhook = Webhook().start()
        receivers = Receivers(self.webhook.url("pager"), self.webhook.url("tickets"))
        alerting = start_alerting(self.processes, self.out / "stack", binaries, written.rules,
                                  alertmanager_config(spec, Config(), receivers), self.detector.metrics_url,
                                  Config().detector_job)
        self.view.event(f"Prometheus {alerting.prometheus} (rules {written.rules}), Alertmanager "
                        f"{alerting.alertmanager}, paging {receivers.pager}")
        return alerting

    # -- the replay ------------------------------------------------------------------------------------------

    def _replay(self, setup: _Setup) -> Timeline:
        assert self.detector is not None
        timeline = Timeline(setup.model)
        self.replayer = Replayer(f"{setup.server}/predict", Days.load(), self.plan, rate=self.rate).start()
        shown: tuple[int, bool] = (-1, False)
        flagged: set[tuple[int, str]] = set()
        seen_pages, next_draw = 0, 0.0
        while not self.replayer.done:
            self.processes.check()
            at = self.replayer.at()
            if at is not None and (at.index, at.drifting) != shown:
                shown = (at.index, at.drifting)
                self.view.event(_phase_line(at, len(self.plan.phases)))
                self._start_reports(before=at.index)
            if timeline.record(self.detector.results()):
                self._capture(timeline)
                self._announce_flags(timeline, flagged)
            delivered = [page for page in self._pages() if page.receiver == "pager"]
            for page, statistics in grouped(delivered[seen_pages:]):
                self.view.event(f"    PAGE {describe(page, statistics)}")
            seen_pages = len(delivered)
            if time.monotonic() >= next_draw:
                next_draw = time.monotonic() + 1.0
                self.view.update(Status(self.plan, MODEL, self.detector.interval, self.replayer.elapsed(),
                                        self.replayer.requests, self.replayer.rows, at, timeline.latest,
                                        delivered, setup.alerting is not None))
            time.sleep(0.2)
        self.view.close()
        if self.replayer.requests == 0:
            raise DemoError(f"the model server answered no request ({self.replayer.last_error}); "
                            f"its log: {self.processes.log_path('server')}")
        return timeline

    def _announce_flags(self, timeline: Timeline, flagged: set[tuple[int, str]]) -> None:
        """An event for each column the first time it turns critical in a phase."""
        assert self.replayer is not None
        where = self.replayer.at(timeline.latest_time)
        if where is None:
            return
        for reading in timeline.latest.values():
            if reading.critical and (where.index, reading.column) not in flagged:
                flagged.add((where.index, reading.column))
                self.view.event(f"    flagged {reading.column} ({reading.worst} {reading.worst_value:.3f}) "
                                f"{where.elapsed:.1f} s into {where.phase.name}")

    def _capture(self, timeline: Timeline) -> None:
        """Keep the detector's stored profiles of the window where the current phase's drift peaks so far."""
        assert self.detector is not None and self.detector.store is not None and self.replayer is not None
        at_time = timeline.latest_time
        where = self.replayer.at(at_time) if at_time is not None else None
        if at_time is None or where is None or not where.phase.expected:
            return
        score = max((timeline.latest[name].score for name in where.phase.expected if name in timeline.latest),
                    default=0.0)
        best = self.captures.get(where.phase.name)
        if score < 1.0 or (best is not None and score <= best[0]):
            return
        store, now = self.detector.store, time.time()
        profiles = {signal_: store.merged(MODEL, signal_, at_time - self.window, at_time, now)
                    for signal_ in ("input", "prediction")}
        found = {signal_: profile for signal_, profile in profiles.items() if profile is not None}
        if found:
            self.captures[where.phase.name] = (score, found)

    def _start_reports(self, before: int) -> None:
        """Run ``servewatch report`` (its own process) on the most drifted window of each phase before
        ``before`` (their windows are final), while the replay goes on."""
        for phase in self.plan.phases[:before]:
            if phase.name in self.captures and phase.name not in self.reports:
                write_window(self.out, phase.name, self.captures[phase.name][1])
                self.processes.start(f"report-{phase.name}", report_command(self.out, phase.name),
                                     _clean_environment(), service=False)
                self.reports.append(phase.name)

    def _finish_reports(self) -> list[str]:
        """Report the last phases, wait for every report; one line per report (the command's own)."""
        self._start_reports(before=len(self.plan.phases))
        lines = []
        for name in self.reports:
            status = self.processes.wait(f"report-{name}", timeout=180)
            said = self.processes.log_tail(f"report-{name}", 1)
            lines.append(f"  {name:14s} {said}" if status == 0 else
                         f"  {name:14s} servewatch report failed ({self.processes.log_path(f'report-{name}')})")
        return lines

    def _pages(self) -> list[Page]:
        if self.webhook is None or self.replayer is None or self.replayer.started is None:
            return []
        return pages(self.webhook.received(), self.plan, self.replayer.started, self.hold)

    # -- the end ---------------------------------------------------------------------------------------------

    def _print_end(self, results: list[Outcome], reports: list[str], how: str, info: dict[str, Any]) -> None:
        write = self.stream.write
        write(f"\n{format_summary(results)}\n")
        write(f"\n{info['requests']:,} requests ({info['rows']:,} days of weather) in {info['wall_seconds']:.0f} s "
              f"(setup {info['setup_seconds']:.0f} s); {info['pages']} page(s) delivered (alert and feature)"
              f"{'' if info['alerting'] else ' (no Prometheus / Alertmanager installed)'}\n")
        if reports:
            write("\nservewatch report on each phase's most drifted window (the detector's stored sketches):\n")
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


def _clean_environment() -> dict[str, str]:
    """Ours, without the caller's OTEL_* / SERVEWATCH_* settings (they would send the data elsewhere)."""
    return {key: value for key, value in environment().items() if not key.startswith(("OTEL_", "SERVEWATCH_"))}


def _server_environment(out: Path, endpoint: str) -> dict[str, str]:
    """The server's environment: where the model is, the spec, the detector, a compressed time scale."""
    return {**_clean_environment(), MODEL_VARIABLE: str(out / "model.json"),
            "SERVEWATCH_SPEC": str(out / "servewatch.yaml"), "SERVEWATCH_PROFILE_INTERVAL": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_METRIC_EXPORT_INTERVAL": "1000", "OTEL_SERVICE_NAME": "weather-server"}


_STACK = ("prometheus.yml", "alertmanager.yml", "prometheus-data", "alertmanager-data")


def _fresh(folder: Path, ours: tuple[str, ...]) -> None:
    """Remove ``folder`` when it holds only what a previous run left there (names starting with ``ours``):
    the detector's store, Prometheus' data and Alertmanager's notification log start afresh (an old log would
    keep Alertmanager from paging again). Refuse a folder holding anything else."""
    if not folder.exists():
        return
    if folder.is_dir() and all(path.name.startswith(ours) for path in folder.iterdir()):
        shutil.rmtree(folder)
    else:
        raise DemoError(f"{folder} exists and is not from a servewatch demo run: choose another --out")

