"""Showing a job as it runs, at a terminal or in a log: one bar line per update.

>>> view = {"jobId": "0a1b", "stage": "train", "status": "RUNNING", "stage_percent": 40.0,
...         "run_id": "r1", "progress": {"fraction": 0.4, "etaS": 95.0}}
>>> progress_line(view, elapsed_s=61)
'train    [############..................]  40%  01:01  RUNNING  about 1 min 35 s left'
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from spaceport.contracts.job import JobRecord, JobStatus
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode
from spaceport.progress import format_duration

BAR_WIDTH = 30
FINAL = {status.value for status in JobStatus if status.is_final}


class JobNotCompletedError(SpaceportError):
    code = "job_not_completed"
    exit_code = ExitCode.JOB_NOT_COMPLETED


def follow(
    get_job: Callable[[], dict[str, Any]],
    run_id: str,
    timeout_s: float,
    poll_s: float = 0.5,
    stream: TextIO | None = None,
) -> dict[str, Any]:
    """Show the job (as ``GET /jobs/{id}`` shows it) until run ``run_id`` ends; returns its last view."""
    stream = stream or sys.stdout
    live = stream.isatty()
    started = time.monotonic()
    last_line, last_step = "", None
    while True:
        view = get_job()
        elapsed = time.monotonic() - started
        line = progress_line(view, elapsed)
        # Not a terminal (a log, CI): one line per stage, status and tenth of the stage.
        step = (view["stage"], view["status"], int(float(view.get("stage_percent") or 0) // 10))
        if live:
            stream.write("\r" + line.ljust(len(last_line)))
        elif step != last_step:
            stream.write(line + "\n")
        stream.flush()
        last_line, last_step = line, step
        if view["run_id"] == run_id and view["status"] in FINAL:
            if live:
                stream.write("\n")
            return view
        if elapsed > timeout_s:
            raise JobNotCompletedError(
                f"Job {view['jobId']} did not finish within {timeout_s:.0f} s (still {view['status']})."
            )
        time.sleep(poll_s)


def progress_line(view: dict[str, Any], elapsed_s: float) -> str:
    """``sfm      [#########.....................]  30%  00:42  RUNNING  about 2 min left``."""
    status = view["status"]
    percent = (
        100.0 if status == JobStatus.SUCCEEDED.value else max(0.0, min(100.0, float(view.get("stage_percent") or 0)))
    )
    filled = int(round(BAR_WIDTH * percent / 100))
    minutes, seconds = divmod(int(elapsed_s), 60)
    line = (
        f"{view['stage']:<8} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent:3.0f}%  "
        f"{minutes:02d}:{seconds:02d}  {status}"
    )
    eta = (view.get("progress") or {}).get("etaS")
    if status == JobStatus.RUNNING.value and eta:
        line += f"  about {format_duration(float(eta))} left"
    return line


def describe(record: JobRecord) -> str:
    """The job record in a few lines: status, error, artifacts, figures, runs."""
    lines = [
        f"job {record.job_id}  {record.status.value}  stage {record.stage.value} {record.stage_percent:.0f}%  "
        f"run {record.run_id} attempt {record.attempt}",
        f"  email {record.email}   created {record.created_at:%Y-%m-%d %H:%M:%S}   "
        f"updated {record.updated_at:%H:%M:%S}",
    ]
    if record.error is not None:
        lines.append(f"  error ({record.error.stage.value}, {record.error.code}): {record.error.message}")
    lines += [f"  {name}: {uri}" for name, uri in sorted(record.artifacts.items())]
    lines += [f"  {name} = {value}" for name, value in sorted(record.summary.items())]
    lines += [f"  run {run.run_id} from {run.from_stage.value}: {run.status.value}" for run in record.runs]
    return "\n".join(lines)
