"""The terminal view: which view for which stream, the live block and its redraw, plain status lines."""

from __future__ import annotations

import io

from servewatch.demo.phases import schedule
from servewatch.demo.summary import Page
from servewatch.demo.timeline import Reading
from servewatch.demo.view import EventView, LineView, LiveView, Status, _clip, frame, make_view


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def status(elapsed: float = 15.0) -> Status:
    plan = schedule(6.0)
    readings = {
        "precipitation": Reading("input", "precipitation", 12000, "critical", ks=0.331, bound=0.014, d1=0.6,
                                 psi=2.1, score=8.4, worst="psi", worst_value=2.1),
        "temp_max": Reading("input", "temp_max", 12000, "ok", ks=0.012, bound=0.014, d1=0.05, psi=0.002,
                            score=0.06, worst="ks", worst_value=0.012),
        "weather": Reading("prediction", "weather", 12000, "warning", linf=0.15, d1=0.3, psi=0.2, score=0.8,
                           worst="psi", worst_value=0.2),
    }
    page = Page("pager", "ServewatchInputDrift", "weather", "precipitation", "input", "critical", "ks", 1,
                "instantaneous", 9.5)
    return Status(plan, "weather", 1.0, elapsed, 600, 30000, plan.at(elapsed), readings, [page], alerting=True)


def test_the_view_follows_the_stream() -> None:
    assert isinstance(make_view(Terminal(), live=True), LiveView)
    assert isinstance(make_view(io.StringIO(), live=True), LineView)
    assert isinstance(make_view(Terminal(), live=False), EventView)


def test_frame_shows_progress_table_and_pages() -> None:
    text = "\n".join(frame(status()))
    assert "phase 2/5 instantaneous" in text and "expected to flag: precipitation, weather" in text
    assert "0.331 ± 0.014" in text and "CRITICAL" in text and "warning" in text
    assert "0.150" in text  # L∞ of the categorical column
    assert "would page now (critical): ServewatchInputDrift weather/precipitation (psi 2.100)" in text
    assert "ServewatchInputDrift critical weather/precipitation (ks) +9.5 s after instantaneous began" in text
    recovering = "\n".join(frame(status(elapsed=24.0)))
    assert "recovering" in recovering


def test_live_view_redraws_in_place() -> None:
    terminal = Terminal()
    view = LiveView(terminal)
    view.event("set-up line")  # before the block: a plain line
    assert terminal.getvalue() == "set-up line\n"
    view.update(status())
    first = terminal.getvalue()[len("set-up line\n"):]
    drawn = first.count("\n")
    view.event("flagged precipitation")
    second = terminal.getvalue()[len("set-up line\n") + len(first):]
    assert second.startswith(f"\x1b[{drawn}F\x1b[J") and "flagged precipitation" in second


def test_line_view_prints_status_lines_between_events() -> None:
    stream = io.StringIO()
    view = LineView(stream, every=0.0)
    view.event("> phase 2/5")
    view.update(status())
    lines = stream.getvalue().splitlines()
    assert lines[0] == "> phase 2/5"
    assert "instantaneous" in lines[1] and "critical: precipitation psi=2.100" in lines[1]
    assert "warning: weather" in lines[1]


def test_clip_counts_visible_characters_only() -> None:
    coloured = "\x1b[1;31mCRITICAL\x1b[0m and more text"
    clipped = _clip(coloured, 10)
    assert clipped.startswith("\x1b[1;31mCRITICAL\x1b[0m a") and clipped.endswith("\x1b[0m")
    assert _clip("plain", 3) == "pla"
