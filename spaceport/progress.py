"""Progress reporting for long-running jobs.

A job reports progress through a :class:`ProgressReporter`. Each update is logged as a
human line, and also as one machine-readable line (prefix :data:`PROGRESS_PREFIX`) that
whatever runs the job (the local job runner, a log subscription in AWS) can parse, and
handed to an optional in-process callback. At a terminal only the human line is shown:
a person reads it, and whatever parses the log never reads a terminal.

Example::

    progress = ProgressReporter("sfm")
    progress.update(0.25, "matched 6 of 24 images")
    # logs: [sfm  25%] matched 6 of 24 images
    # and:  spaceport-progress {"stage": "sfm", "fraction": 0.25, ...}
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

PROGRESS_PREFIX = "spaceport-progress "

logger = logging.getLogger("spaceport")


@dataclass(frozen=True)
class ProgressEvent:
    stage: str
    fraction: float
    message: str
    elapsed_s: float
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


class ProgressReporter:
    """Reports a stage's progress as a fraction in [0, 1] with a short message."""

    def __init__(self, stage: str, callback: ProgressCallback | None = None, stream=None) -> None:
        self.stage = stage
        self.callback = callback
        self.stream = stream if stream is not None else sys.stderr
        self._start = time.monotonic()

    def update(self, fraction: float, message: str, **metrics: Any) -> None:
        event = ProgressEvent(
            stage=self.stage,
            fraction=min(max(float(fraction), 0.0), 1.0),
            message=message,
            elapsed_s=round(time.monotonic() - self._start, 3),
            metrics=metrics,
        )
        print(f"[{self.stage} {event.fraction * 100:3.0f}%] {message}", file=self.stream, flush=True)
        if not _is_terminal(self.stream):
            print(event.to_line(), file=self.stream, flush=True)
        if self.callback is not None:
            self.callback(event)


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
