"""Which service listens to which event: defined once, read by ``infra/`` and the local runtime.

Each service owns one SQS queue (with a dead-letter queue). EventBridge rules route events
into it: pipeline events from the Spaceport bus, and SageMaker's job state-change events
from the account's default bus, filtered by the job-name prefix that service uses.

Example::

    sfm = service("sfm")
    for subscription in sfm.subscriptions:
        print(subscription.rule_name, subscription.bus, subscription.pattern)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from spaceport.contracts.events import EVENT_SOURCE
from spaceport.contracts.stages import Stage

PIPELINE_BUS = "pipeline"
DEFAULT_BUS = "default"
SAGEMAKER_SOURCE = "aws.sagemaker"
SAGEMAKER_FINAL_STATES = ("Completed", "Failed", "Stopped")

SageMakerJobKind = Literal["processing", "training"]

_STATE_CHANGE = {
    "processing": ("SageMaker Processing Job State Change", "ProcessingJobName", "ProcessingJobStatus"),
    "training": ("SageMaker Training Job State Change", "TrainingJobName", "TrainingJobStatus"),
}


@dataclass(frozen=True)
class Subscription:
    """One EventBridge rule: events on ``bus`` matching ``pattern`` go to the service's queue."""

    rule_name: str
    bus: Literal["pipeline", "default"]
    pattern: dict[str, Any]


@dataclass(frozen=True)
class ServiceSpec:
    """A service: its queue, the events it consumes, and the SageMaker job it runs (if any)."""

    name: str
    subscriptions: tuple[Subscription, ...]
    sagemaker_job: SageMakerJobKind | None
    # How long one batch may take in the consumer (the Lambda timeout).
    consumer_timeout_s: int = 60
    batch_size: int = 5
    max_receive_count: int = 5

    @property
    def queue_name(self) -> str:
        return f"spaceport-{self.name}"

    @property
    def dead_letter_queue_name(self) -> str:
        return f"spaceport-{self.name}-dlq"

    @property
    def visibility_timeout_s(self) -> int:
        # AWS's guidance for Lambda event sources: at least 6x the function timeout.
        return 6 * self.consumer_timeout_s

    @property
    def sagemaker_job_prefix(self) -> str:
        return f"spaceport-{self.name}-"


def _pipeline_rule(service: str, detail_type: str, stage: Stage | None = None) -> Subscription:
    pattern: dict[str, Any] = {"source": [EVENT_SOURCE], "detail-type": [detail_type]}
    if stage is not None:
        pattern["detail"] = {"stage": [stage.value]}
    return Subscription(f"spaceport-{service}-{detail_type}", PIPELINE_BUS, pattern)


def _sagemaker_rule(service: str, kind: SageMakerJobKind) -> Subscription:
    detail_type, name_field, status_field = _STATE_CHANGE[kind]
    pattern = {
        "source": [SAGEMAKER_SOURCE],
        "detail-type": [detail_type],
        "detail": {
            name_field: [{"prefix": f"spaceport-{service}-"}],
            status_field: list(SAGEMAKER_FINAL_STATES),
        },
    }
    return Subscription(f"spaceport-{service}-sagemaker-state", DEFAULT_BUS, pattern)


def _stage_service(stage: Stage, trigger: str | None, kind: SageMakerJobKind) -> ServiceSpec:
    name = stage.value
    rules = [_pipeline_rule(name, "JobRequested", stage), _pipeline_rule(name, "JobCancelled", stage)]
    if trigger is not None:
        rules.insert(0, _pipeline_rule(name, trigger))
    rules.append(_sagemaker_rule(name, kind))
    return ServiceSpec(name, tuple(rules), kind)


SERVICES: tuple[ServiceSpec, ...] = (
    _stage_service(Stage.SFM, None, "processing"),
    _stage_service(Stage.TRAIN, "SfmCompleted", "training"),
    _stage_service(Stage.COMPRESS, "TrainingCompleted", "processing"),
    ServiceSpec(
        "notify",
        (_pipeline_rule("notify", "CompressionCompleted"), _pipeline_rule("notify", "JobFailed")),
        None,
    ),
)


def service(name: str) -> ServiceSpec:
    for spec in SERVICES:
        if spec.name == name:
            return spec
    raise KeyError(f"no service named {name!r}; known: {[s.name for s in SERVICES]}")


def state_change_fields(kind: SageMakerJobKind) -> tuple[str, str, str]:
    """``(detail-type, job-name field, status field)`` of SageMaker's state-change event."""
    return _STATE_CHANGE[kind]


# --- SageMaker job names: deterministic, so a duplicate delivery finds the job already there.

_JOB_NAME = re.compile(r"^spaceport-(?P<stage>[a-z]+)-(?P<job_id>[0-9a-z]+)-(?P<run_id>r[0-9]+)-a(?P<attempt>[0-9]+)$")


@dataclass(frozen=True)
class SageMakerJobKey:
    """The business key a SageMaker job name encodes."""

    stage: Stage
    job_id: str
    run_id: str
    attempt: int = 1
    name: str = field(init=False)

    def __post_init__(self) -> None:
        name = f"spaceport-{self.stage.value}-{self.job_id}-{self.run_id}-a{self.attempt}"
        if len(name) > 63 or not _JOB_NAME.match(name):
            raise ValueError(f"cannot make a valid SageMaker job name from {self!r}")
        object.__setattr__(self, "name", name)

    @classmethod
    def parse(cls, name: str) -> SageMakerJobKey:
        match = _JOB_NAME.match(name)
        if match is None:
            raise ValueError(f"{name!r} is not a Spaceport SageMaker job name")
        return cls(Stage(match["stage"]), match["job_id"], match["run_id"], int(match["attempt"]))
