"""The sweeper: nothing stays RUNNING forever.

A job moves when its stage's SageMaker job changes state. If that event never comes (a
message dead-lettered, an operator's mistake, a region's bad day), the job would wait for
ever and its user would never hear. Every few minutes the sweeper looks at the jobs that
nothing has moved for longer than their stage may run (its ``MaxRuntimeInSeconds``, twice
that for a Spot training job that may wait as long for capacity) plus a margin, and whose
running job has not reported progress in that time either; each is failed with
``JobFailed`` (code ``stalled``), so the user gets the failure email.

:func:`sweep` returns the ids of the jobs it failed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from spaceport.contracts.events import JobFailed
from spaceport.contracts.job import JobRecord, JobStatus
from spaceport.contracts.stages import JOB_STAGES, Stage
from spaceport.handlers.stage import record_failure
from spaceport.handlers.stage_jobs import stage_input
from spaceport.ports import Ports
from spaceport.progress import format_duration

logger = logging.getLogger("spaceport.handlers")

STALLED = "stalled"


def stage_limit_s(ports: Ports, stage: Stage) -> int:
    """The longest a stage's SageMaker job may hold a job (Spot training may wait as long again)."""
    limit = ports.config.stages[stage].max_runtime_s
    return 2 * limit if stage is Stage.TRAIN and ports.config.train_spot else limit


def _last_sign_of_life(ports: Ports, record: JobRecord) -> datetime:
    """When the job last moved: its record, or its running job's progress file."""
    latest = record.updated_at
    if record.stage in JOB_STAGES:
        layout = ports.config.layout
        progress = ports.objects.read_json(layout.progress(record.stage, record.job_id, record.run_id))
        if progress and isinstance(progress.get("updated_at"), str):
            latest = max(latest, datetime.fromisoformat(progress["updated_at"]))
    return latest


def sweep(ports: Ports, now: datetime | None = None) -> list[str]:
    """Fail every job that showed no sign of life for longer than its stage's limit plus the margin."""
    now = now or datetime.now(UTC)
    margin = timedelta(seconds=ports.config.stall_margin_s)
    shortest = min(stage_limit_s(ports, stage) for stage in JOB_STAGES)
    failed = []
    for status in (JobStatus.QUEUED, JobStatus.RUNNING):
        for record in ports.store.list_unchanged_since(status, now - margin - timedelta(seconds=shortest)):
            stage = record.stage if record.stage in JOB_STAGES else JOB_STAGES[-1]
            waited = now - _last_sign_of_life(ports, record)
            if waited <= timedelta(seconds=stage_limit_s(ports, stage)) + margin:
                continue
            reason = (
                f"The {stage.value} stage showed no progress for {format_duration(waited.total_seconds())}, "
                f"longer than it may run, so the job was given up."
            )
            ports.publisher.publish(
                JobFailed(
                    job_id=record.job_id,
                    run_id=record.run_id,
                    stage=stage,
                    attempt=record.attempt,
                    input_uri=stage_input(stage, record.input_uri, record.artifacts),
                    options=record.options,
                    error_code=STALLED,
                    reason=reason,
                )
            )
            if record_failure(ports, record.job_id, record.run_id, stage, record.attempt, STALLED, reason):
                logger.warning("sweeper: job %s failed: %s", record.job_id, reason)
                failed.append(record.job_id)
    return failed
