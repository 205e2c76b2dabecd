"""Progress reporting for long-running jobs: a fraction done, a short message and an ETA.

A job reports progress through a :class:`ProgressReporter`. Each update is logged as a
human line, and also as one machine-readable line (prefix :data:`PROGRESS_PREFIX`) that
whatever runs the job (the local job runner, a log subscription in AWS) can parse, and
handed to an optional in-process callback. At a terminal only the human line is shown:
a person reads it, and whatever parses the log never reads a terminal.

The ETA assumes the rest goes at the pace so far; it is left out until a job is
:data:`MIN_FRACTION_FOR_ETA` done, when the pace means something.

>>> import io
>>> stream = io.StringIO()
>>> progress = ProgressReporter("sfm", stream=stream, clock=iter([0.0, 30.0]).__next__)
>>> progress.update(0.25, "matched 6 of 24 images")
>>> print(stream.getvalue().splitlines()[0])
[sfm  25%] matched 6 of 24 images (about 1 min 30 s left)
>>> ProgressEvent.from_line(stream.getvalue().splitlines()[1]).eta_s
90.0
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

PROGRESS_PREFIX = "spaceport-progress "
MIN_FRACTION_FOR_ETA = 0.02

logger = logging.getLogger("spaceport")


@dataclass(frozen=True)
class ProgressEvent:
    stage: str
    fraction: float
    message: str
    elapsed_s: float
    eta_s: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_line(self) -> str:
        return PROGRESS_PREFIX + json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str) -> ProgressEvent | None:
        """Parse a line from a job log; ``None`` when it is not a progress line."""
        start = line.find(PROGRESS_PREFIX)
        if start < 0:
            return None
        try:
            return cls(**json.loads(line[start + len(PROGRESS_PREFIX) :]))
        except (ValueError, TypeError):
            return None


ProgressCallback = Callable[[ProgressEvent], None]


def eta_seconds(fraction: float, elapsed_s: float) -> float | None:
    """Seconds left at the pace so far; ``None`` before :data:`MIN_FRACTION_FOR_ETA` is done."""
    if fraction < MIN_FRACTION_FOR_ETA or fraction >= 1.0:
        return None if fraction < 1.0 else 0.0
    return round(elapsed_s * (1.0 - fraction) / fraction, 1)


def format_duration(seconds: float) -> str:
    """``95`` -> ``"1 min 35 s"``; ``4000`` -> ``"1 h 6 min"``.

    >>> format_duration(42), format_duration(95), format_duration(4000)
    ('42 s', '1 min 35 s', '1 h 6 min')
    """
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


class ProgressReporter:
    """Reports a stage's progress as a fraction in [0, 1] with a short message and an ETA."""

    def __init__(
        self,
        stage: str,
        callback: ProgressCallback | None = None,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stage = stage
        self.callback = callback
        self.stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._start = clock()

    def update(self, fraction: float, message: str, **metrics: Any) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        elapsed = self._clock() - self._start
        event = ProgressEvent(
            stage=self.stage,
            fraction=fraction,
            message=message,
            elapsed_s=round(elapsed, 3),
            eta_s=eta_seconds(fraction, elapsed),
            metrics=metrics,
        )
        left = f" (about {format_duration(event.eta_s)} left)" if event.eta_s else ""
        print(f"[{self.stage} {fraction * 100:3.0f}%] {message}{left}", file=self.stream, flush=True)
        if not _is_terminal(self.stream):
            print(event.to_line(), file=self.stream, flush=True)
        if self.callback is not None:
            self.callback(event)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
