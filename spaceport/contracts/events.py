"""The pipeline's events: versioned, validated models, and their EventBridge envelope.

Every event names its business key ``(job_id, run_id, stage, attempt)``; consumers are
idempotent on that key, never on the transport's message id (a replay from the archive
carries new ids but the same key). Emails are not carried: the archive keeps every event,
and the address lives only in the job record.

>>> event = JobRequested(job_id="j1", run_id="r1", stage=Stage.SFM, input_uri="s3://uploads/photos.zip")
>>> entry = to_put_events_entry(event, bus_name="spaceport")   # for events.put_events
>>> parse_event(entry["DetailType"], json.loads(entry["Detail"])) == event, event.business_key
(True, 'JobRequested#j1#r1#sfm#1')
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spaceport.contracts.stages import Stage
from spaceport.contracts.training import TRAINING_SETTINGS, Preset
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode

EVENT_SOURCE = "spaceport.pipeline"


class InvalidEventError(SpaceportError):
    """An event that does not match its contract (unknown type, missing or bad field)."""

    code = "invalid_event"
    exit_code = ExitCode.INVALID_EVENT


# Which photo pairs SfM matches, and how it places them (the SfM job's own options use these).
Matcher = Literal["auto", "exhaustive", "sequential", "spatial", "vocabtree"]
# auto: incremental for smaller captures, global mapping for large ones (spaceport_sfm.reconstruct.choose_mapper).
Mapper = Literal["incremental", "global", "auto"]
MATCHERS: tuple[str, ...] = get_args(Matcher)
_STEPS = TRAINING_SETTINGS["steps"]
MAPPERS: tuple[str, ...] = get_args(Mapper)


class JobOptions(BaseModel):
    """What a user may choose for a job. Unknown options are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    matcher: Matcher = "auto"
    mapper: Mapper = "incremental"
    preset: Preset = "default"
    steps: int | None = Field(default=None, ge=_STEPS.minimum, le=_STEPS.maximum)
    sh_bands: int = Field(default=3, ge=0, le=3)
    from_stage: Stage = Stage.SFM
    # Training settings (`spaceport replay --set steps=...`), passed to the job as SageMaker
    # hyperparameters; the gateway checks them against spaceport.contracts.training first.
    hyperparameters: dict[str, str] = Field(default_factory=dict)
    # A reprocess from train of a job trained in blocks: retrain only these blocks of its latest
    # plan and keep the others (`spaceport replay --block 3`); empty: plan again and train all.
    blocks: tuple[Annotated[int, Field(ge=0)], ...] = Field(default=(), max_length=256)


class PipelineEvent(BaseModel):
    """Fields every event carries. Subclasses fix ``detail_type`` and ``schema_version``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    detail_type: ClassVar[str]
    schema_version: int = 1
    job_id: str = Field(min_length=1, max_length=64)
    run_id: str = Field(min_length=1, max_length=16)
    stage: Stage
    attempt: int = Field(default=1, ge=1)
    input_uri: str | None = None
    output_uri: str | None = None
    options: JobOptions = Field(default_factory=JobOptions)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def business_key(self) -> str:
        """What a consumer deduplicates on: the event type and its (job, run, stage, attempt)."""
        return f"{self.detail_type}#{self.job_id}#{self.run_id}#{self.stage.value}#{self.attempt}"


class JobRequested(PipelineEvent):
    """The gateway accepted a job (or a reprocess): run ``stage`` first, from ``input_uri``."""

    detail_type: ClassVar[str] = "JobRequested"


class StageStarted(PipelineEvent):
    """A stage's SageMaker job was launched; ``output_uri`` is where it will write."""

    detail_type: ClassVar[str] = "StageStarted"
    sagemaker_job_name: str


class StageCompleted(PipelineEvent):
    """Base of the three completion events; ``summary`` holds the job's headline figures."""

    summary: dict[str, Any] = Field(default_factory=dict)


class SfmCompleted(StageCompleted):
    detail_type: ClassVar[str] = "SfmCompleted"


class TrainingCompleted(StageCompleted):
    detail_type: ClassVar[str] = "TrainingCompleted"


class CompressionCompleted(StageCompleted):
    detail_type: ClassVar[str] = "CompressionCompleted"


class BlockRequested(PipelineEvent):
    """The train service planned the run in ``blocks`` blocks: train block ``block`` (``attempt``)."""

    detail_type: ClassVar[str] = "BlockRequested"
    block: int = Field(ge=0)
    blocks: int = Field(ge=2)

    @property
    def business_key(self) -> str:
        return f"{super().business_key}#b{self.block}"


class BlockCompleted(PipelineEvent):
    """Block ``block``'s training job completed; ``output_uri`` holds its splat, ``summary`` its figures."""

    detail_type: ClassVar[str] = "BlockCompleted"
    block: int = Field(ge=0)
    blocks: int = Field(ge=2)
    summary: dict[str, Any] = Field(default_factory=dict)

    @property
    def business_key(self) -> str:
        return f"{super().business_key}#b{self.block}"


class JobFailed(PipelineEvent):
    """A stage failed for good (after its retries); ``reason`` is plain words for the user."""

    detail_type: ClassVar[str] = "JobFailed"
    error_code: str
    reason: str


class JobCancelled(PipelineEvent):
    """A user or operator cancelled the job; the running stage stops its SageMaker job."""

    detail_type: ClassVar[str] = "JobCancelled"


EVENT_TYPES: dict[str, type[PipelineEvent]] = {
    cls.detail_type: cls
    for cls in (
        JobRequested,
        StageStarted,
        SfmCompleted,
        TrainingCompleted,
        CompressionCompleted,
        JobFailed,
        JobCancelled,
        BlockRequested,
        BlockCompleted,
    )
}


def parse_event(detail_type: str, detail: dict[str, Any] | str) -> PipelineEvent:
    """Validate an EventBridge ``detail`` against the model its ``detail-type`` names."""
    cls = EVENT_TYPES.get(detail_type)
    if cls is None:
        raise InvalidEventError(f"Unknown event type {detail_type!r}.")
    try:
        if isinstance(detail, str):
            return cls.model_validate_json(detail)
        return cls.model_validate(detail)
    except ValidationError as error:
        raise InvalidEventError(f"{detail_type} does not match its contract: {error}") from None


def to_put_events_entry(event: PipelineEvent, bus_name: str) -> dict[str, str]:
    """The ``PutEvents`` entry for ``event`` on ``bus_name``."""
    return {
        "Source": EVENT_SOURCE,
        "DetailType": event.detail_type,
        "Detail": event.model_dump_json(),
        "EventBusName": bus_name,
    }


def parse_envelope(envelope: dict[str, Any] | str) -> PipelineEvent:
    """Validate a whole EventBridge event (as delivered to an SQS target) into its model."""
    if isinstance(envelope, str):
        try:
            envelope = json.loads(envelope)
        except ValueError:
            raise InvalidEventError("The message body is not JSON.") from None
    if not isinstance(envelope, dict) or envelope.get("source") != EVENT_SOURCE:
        raise InvalidEventError("The message is not a Spaceport pipeline event.")
    return parse_event(envelope.get("detail-type", ""), envelope.get("detail", {}))
