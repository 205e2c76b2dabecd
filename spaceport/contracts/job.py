"""The job record and the order of its transitions.

A job moves forward only. Every transition carries a *position*, a number that orders all
the things that can happen to a job: a later run beats an earlier one, a later stage beats
an earlier one, a retry beats the attempt it retries, and within one attempt
requested < started < completed. The job store writes a transition only when its position
is higher than the record's (a DynamoDB conditional write), so an old, duplicate or
replayed event never moves a job backwards; and a run that ended (succeeded, failed or was
cancelled) stays ended: only a new run moves the job again.

>>> started = position(run_id="r1", stage=Stage.TRAIN, attempt=1, phase=Phase.STARTED)
>>> done_sfm = position(run_id="r1", stage=Stage.SFM, attempt=1, phase=Phase.COMPLETED)
>>> started > done_sfm
True
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from spaceport.contracts.blocks import GroundRect
from spaceport.contracts.events import JobOptions
from spaceport.contracts.stages import Stage


class JobStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})

# The jobs table's indexes by owner (a user's jobs, newest first: GET /jobs and the limits) and
# by share token hash (GET /share/{token}): the store queries them, the gateway's policy names them.
OWNER_INDEX = "by-owner"
SHARE_INDEX = "by-share-token"


class Phase(IntEnum):
    REQUESTED = 0
    STARTED = 1
    COMPLETED = 2
    # Ends the run whatever stage it reached.
    FAILED = 8
    CANCELLED = 9


def run_of(at_position: int) -> str:
    """The run a position belongs to: ``run_of(position("r3", ...)) == "r3"``."""
    return f"r{at_position // 1_000_000}"


def run_number(run_id: str) -> int:
    """``"r3"`` -> 3. Runs are numbered from 1; each reprocess adds one."""
    return int(run_id.removeprefix("r"))


def position(run_id: str, stage: Stage, attempt: int, phase: Phase) -> int:
    """The order of a transition among everything that can happen to one job."""
    if phase in (Phase.FAILED, Phase.CANCELLED):
        # Terminal for the run: above any stage or attempt of the same run, below the next run.
        return run_number(run_id) * 1_000_000 + 990_000 + int(phase)
    return run_number(run_id) * 1_000_000 + stage.order * 10_000 + min(attempt, 999) * 10 + int(phase)


class RunRecord(BaseModel):
    """One run of the job: the first, or a reprocess from a stage."""

    run_id: str
    from_stage: Stage
    options: JobOptions
    started_at: datetime
    status: JobStatus = JobStatus.QUEUED


class JobFailure(BaseModel):
    stage: Stage
    code: str
    message: str


class NotificationState(StrEnum):
    SENDING = "sending"  # claimed by an invocation that may still be sending it
    SENT = "sent"


class Notification(BaseModel):
    """One email of a run's outcome: claimed before it is sent, confirmed with SES's id after."""

    state: NotificationState
    since: datetime
    message_id: str | None = None


class OperatorAction(BaseModel):
    """Something an operator did to a job that is not theirs: who, what, when, with what."""

    at: datetime
    operator: str  # the operator's Cognito sub
    operator_email: str
    action: str  # "cancel", "reprocess", "share", "unshare"
    detail: dict[str, Any] = Field(default_factory=dict)


def part_position(attempt: int, phase: Phase) -> int:
    """The order of what happens to one part of a run trained in blocks (a block, or the merge)."""
    return min(attempt, 999) * 10 + int(phase)


class PartStatus(StrEnum):
    PENDING = "pending"  # planned, not launched yet
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class BlockPart(BaseModel):
    """One block of a run trained in blocks (or the job merging them): where it stands and what it cost.

    ``run_id`` is the run whose outputs it holds: a block kept by a reprocess of other blocks
    keeps the run that trained it.
    """

    run_id: str
    status: PartStatus = PartStatus.PENDING
    attempt: int = 0
    position: int = 0
    # The ground the block owns in the plan's frame (a map of the blocks); none for the merge.
    core: GroundRect | None = None
    cameras: int = 0
    predicted_gaussians: int = 0
    predicted_gpu_hours: float = 0.0
    # What its training job measured: the job's hours on its machine (a GPU in AWS), its Gaussians, its PSNR.
    measured_gpu_hours: float | None = None
    num_gaussians: int | None = None
    psnr: float | None = None
    device: str | None = None


class BlockRun(BaseModel):
    """The blocks of one run: its plan, each block's part, how many are done, and the merge."""

    run_id: str
    plan_uri: str
    count: int
    done: int = 0
    reason: str = ""
    parts: dict[str, BlockPart]  # block name (b0, b1, ...) -> its part
    merge: BlockPart


class JobRecord(BaseModel):
    """What ``GET /jobs/{id}`` and ``spaceport status`` show, and what the job store keeps."""

    model_config = ConfigDict(extra="ignore")

    job_id: str
    email: str
    status: JobStatus = JobStatus.QUEUED
    stage: Stage = Stage.SFM
    stage_percent: float = 0.0
    run_id: str = "r1"
    attempt: int = 1
    position: int = 0
    input_uri: str
    options: JobOptions = Field(default_factory=JobOptions)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    updated_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    # stage name -> output URI of the latest run that produced it, plus "report", "csv", ...
    artifacts: dict[str, str] = Field(default_factory=dict)
    # Headline figures for the user: photos used, held-out PSNR, output size, ...
    summary: dict[str, Any] = Field(default_factory=dict)
    error: JobFailure | None = None
    runs: list[RunRecord] = Field(default_factory=list)
    # "<run_id>#<outcome>" -> its email, so a replay never sends the same email twice.
    notifications: dict[str, Notification] = Field(default_factory=dict)
    # Who the job belongs to: the Cognito sub of the user who created it (empty on jobs from
    # before sign-in, which only operators see). ``email`` is that user's verified address.
    owner: str = ""
    operator_actions: list[OperatorAction] = Field(default_factory=list)
    # The share link's token, hashed (spaceport.auth.share); None: not shared.
    share_token_hash: str | None = None
    shared_at: datetime | None = None
    # The latest run that was trained in blocks (None: every run trained the whole capture at once).
    blocks: BlockRun | None = None
