"""What one user may start: a cap on jobs at once and a GPU-minute quota over any 24 hours.

Both are settings (:class:`~spaceport.config.PipelineConfig` ``max_concurrent_jobs`` and
``daily_gpu_minutes``), shown in ``GET /me``, and checked before a job is created or
reprocessed: a user at either limit gets 429 and nothing is created. GPU minutes are the wall
time of the stages whose machine has a GPU, as their jobs reported it (the latest run of each
job created in the last 24 hours), plus the time a running GPU stage has run so far. The check is
made when work is asked for: a job that was admitted runs to its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from spaceport.config import PipelineConfig
from spaceport.contracts.deployment import INSTANCE_TYPES
from spaceport.contracts.job import JobRecord, JobStatus
from spaceport.contracts.stages import JOB_STAGES, Stage
from spaceport.ports import Ports

WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Usage:
    """What a user's jobs hold now: jobs queued or running, GPU minutes in the last 24 hours."""

    active_jobs: int
    gpu_minutes: float

    def view(self, config: PipelineConfig) -> dict[str, Any]:
        return {
            "maxConcurrentJobs": config.max_concurrent_jobs,
            "activeJobs": self.active_jobs,
            "dailyGpuMinutes": config.daily_gpu_minutes,
            "gpuMinutesUsed": round(self.gpu_minutes, 1),
            "windowHours": int(WINDOW.total_seconds() // 3600),
        }


def gpu_stages(config: PipelineConfig) -> tuple[Stage, ...]:
    """The stages whose configured machine has a GPU."""
    return tuple(stage for stage in JOB_STAGES if INSTANCE_TYPES[config.stages[stage].instance_type].gpus > 0)


def _gpu_seconds(record: JobRecord, stages: tuple[Stage, ...], now: datetime) -> float:
    seconds = 0.0
    for stage in stages:
        reported = record.summary.get(f"{stage.value}_wall_time_s")
        if isinstance(reported, (int, float)):
            seconds += float(reported)
    if record.status is JobStatus.RUNNING and record.stage in stages:
        seconds += max(0.0, (now - record.updated_at).total_seconds())
    return seconds


def usage(ports: Ports, owner: str) -> Usage:
    """``owner``'s jobs now: how many are queued or running, and the GPU minutes of the last 24 hours."""
    config = ports.config
    now = datetime.now(UTC)
    # A job older than the window plus its stages' time limits cannot still be running.
    longest = timedelta(seconds=sum(config.stages[stage].max_runtime_s for stage in JOB_STAGES))
    jobs = ports.store.list_by_owner(owner, limit=None, since=now - WINDOW - longest)
    stages = gpu_stages(config)
    active = [job for job in jobs if not job.status.is_final]
    recent = [job for job in jobs if job.created_at > now - WINDOW or not job.status.is_final]
    return Usage(len(active), sum(_gpu_seconds(job, stages, now) for job in recent) / 60)


def check_limits(ports: Ports, owner: str, reprocessing: str | None = None) -> None:
    """Refuse (429) new work for ``owner`` past a limit; ``reprocessing``: the ended job to run again."""
    from spaceport.api.endpoints import ApiError

    if not owner:
        return  # a job from before sign-in, which only an operator can reprocess
    config = ports.config
    now = usage(ports, owner)
    if now.active_jobs >= config.max_concurrent_jobs:
        raise ApiError(
            429,
            "too_many_jobs",
            f"You have {now.active_jobs} jobs queued or running; the limit is {config.max_concurrent_jobs}. "
            "Start this one when one of them ended.",
            limit=config.max_concurrent_jobs,
            **({"jobId": reprocessing} if reprocessing else {}),
        )
    if now.gpu_minutes >= config.daily_gpu_minutes:
        raise ApiError(
            429,
            "gpu_quota_used",
            f"Your jobs used {now.gpu_minutes:.0f} GPU minutes in the last 24 hours; the limit is "
            f"{config.daily_gpu_minutes}. Try again later.",
            limit=config.daily_gpu_minutes,
        )
