"""Progress lines: a human line always, the machine line wherever a program reads the log."""

from __future__ import annotations

import io

from spaceport.progress import ProgressEvent, ProgressReporter


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_both_lines_and_a_terminal_only_the_human_one():
    seen: list[ProgressEvent] = []
    log, terminal = io.StringIO(), _Terminal()
    for stream in (log, terminal):
        ProgressReporter("sfm", seen.append, stream=stream).update(0.25, "matched 6 of 24 photos", pairs=15)

    human, machine = log.getvalue().splitlines()
    assert human == "[sfm  25%] matched 6 of 24 photos"
    event = ProgressEvent.from_line(machine)
    assert (event.stage, event.fraction, event.message, event.metrics) == (
        "sfm",
        0.25,
        "matched 6 of 24 photos",
        {"pairs": 15},
    )
    assert terminal.getvalue().splitlines() == [human]
    assert [e.message for e in seen] == ["matched 6 of 24 photos"] * 2  # the callback hears every update
