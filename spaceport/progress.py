"""Progress reporting for long-running jobs: a fraction done, a short message and an ETA.

A job reports progress through a :class:`ProgressReporter`. Each update is logged as a
human line, and also as one machine-readable line (prefix :data:`PROGRESS_PREFIX`) for
whatever reads the job's log, and handed to an optional in-process callback. At a terminal
only the human line is shown: a person reads it, and whatever parses the log never reads a
terminal. Inside a SageMaker job whose launcher asked for it
(:data:`spaceport.container.PROGRESS_FILE_ENV`), the latest update is also kept in a progress
file that SageMaker uploads as it changes, so the API shows the same progress in AWS as on a
laptop; it is rewritten at most every :data:`PROGRESS_FILE_INTERVAL_S`, and always at the end.

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
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from spaceport.container import progress_file
from spaceport.files import write_json_atomic

PROGRESS_PREFIX = "spaceport-progress "
MIN_FRACTION_FOR_ETA = 0.02
PROGRESS_FILE_INTERVAL_S = 2.0
# The SageMaker job this process is (the launcher sets it), so a stale file of an earlier attempt is told apart.
JOB_NAME_ENV = "SPACEPORT_JOB_NAME"

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
        self._file = progress_file()
        self._file_written_at: float | None = None

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
        if self._file is not None:
            self._keep_in_file(event)

    def _keep_in_file(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        if event.fraction < 1.0 and self._file_written_at is not None:
            if now - self._file_written_at < PROGRESS_FILE_INTERVAL_S:
                return
        assert self._file is not None
        self._file_written_at = now
        record = {**asdict(event), "job": os.environ.get(JOB_NAME_ENV), "updated_at": datetime.now(UTC).isoformat()}
        write_json_atomic(self._file, record)


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
