"""A streaming drift detector in River's style: feed it profiles, read its verdict after each.

Usage::

    from servewatch.detectors import Detector

    detector = Detector(reference, spec=spec.model("fraud"), window=60)   # the last 60 profiles
    for profile in profiles:                 # e.g. one per minute from the instrumentation
        detector.update(profile)
        if detector.drift_detected:          # some column at critical
            page(detector.report.drifted)
        elif detector.warning_detected:
            ticket(detector.report.table())
        # detector.severity is "unknown" until a window holds enough values to judge

Parameters are stored as given; all state is built by :meth:`update`. ``window=None`` compares everything
seen so far; an integer compares the merge of the last ``window`` profiles.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from ..errors import ProfileError
from ..profile import Profile
from ..spec import ModelSpec
from .report import Report, compare

__all__ = ["Detector"]


class Detector:
    """Compare a stream of profiles of one (model, signal) against a fixed reference."""

    def __init__(self, reference: Profile, spec: ModelSpec | None = None, *, window: int | None = None,
                 statistics: Sequence[str] | None = None) -> None:
        if window is not None and window < 1:
            raise ValueError("window must be a positive number of profiles or None")
        self.reference = reference
        self.spec = spec
        self.window = window
        self.statistics = statistics
        self._recent: deque[Profile] = deque(maxlen=window)
        self._total: Profile | None = None
        self._report: Report | None = None

    def __repr__(self) -> str:
        return f"Detector(model={self.reference.model!r}, signal={self.reference.signal!r}, window={self.window})"

    def update(self, profile: Profile) -> Detector:
        """Take one more profile and re-evaluate. Returns ``self``."""
        if (profile.model, profile.signal) != (self.reference.model, self.reference.signal):
            raise ProfileError(f"detector for {self.reference.model}/{self.reference.signal} got "
                               f"{profile.model}/{profile.signal}")
        if self.window is None:
            self._total = profile.copy() if self._total is None else self._total.merge(profile)
            current = self._total
        else:
            self._recent.append(profile)
            current = Profile.merged(self._recent)  # type: ignore[assignment]
        self._report = compare(self.reference, current, self.spec, statistics=self.statistics)
        return self

    @property
    def report(self) -> Report | None:
        """The latest comparison (None before the first update)."""
        return self._report

    @property
    def severity(self) -> str:
        """The latest verdict: "unknown" before the first update and while too few values were seen."""
        return self._report.severity if self._report is not None else "unknown"

    @property
    def drift_detected(self) -> bool:
        """True while some column is at critical."""
        return self.severity == "critical"

    @property
    def warning_detected(self) -> bool:
        """True while some column is at warning or worse."""
        return self.severity in ("warning", "critical")
