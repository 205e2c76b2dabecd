"""Who emits each event and who consumes it: defined once, read by ``infra/``, the handlers and the local runtime.

:data:`ROUTES` is the whole story of the pipeline's events. Each route names an event, the
units that emit it, and the services that consume it with what each does on receipt (its
:class:`Action`); an event nobody consumes says why (``terminal``). Everything else is
derived from it:

* each service's EventBridge rules (:meth:`ServiceSpec.subscriptions`), on the pipeline bus or,
  for SageMaker's job state changes, the account's default bus;
* what a service's handler does with a message (:func:`action_for`), so a rule and its handler
  cannot disagree;
* which completion event a stage publishes (:func:`completion_event`).

>>> [route.event for route in ROUTES if Action.START in route.actions_of("train")]
['JobRequested', 'SfmCompleted']
>>> completion_event(Stage.TRAIN).detail_type, consumers_of("TrainingCompleted")
('TrainingCompleted', ('compress',))
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Literal

from spaceport.contracts.deployment import resource_name
from spaceport.contracts.events import (
    EVENT_SOURCE,
    EVENT_TYPES,
    BlockCompleted,
    BlockRequested,
    CompressionCompleted,
    JobCancelled,
    JobFailed,
    JobRequested,
    PipelineEvent,
    SfmCompleted,
    StageCompleted,
    StageStarted,
    TrainingCompleted,
)
from spaceport.contracts.stages import JOB_STAGES, Stage

PIPELINE_BUS: Final = "pipeline"
DEFAULT_BUS: Final = "default"
SAGEMAKER_SOURCE = "aws.sagemaker"
SAGEMAKER_FINAL_STATES = ("Completed", "Failed", "Stopped")

SageMakerJobKind = Literal["processing", "training"]
Bus = Literal["pipeline", "default"]

# Units that emit events without consuming any: the API, the sweeper, and SageMaker itself.
GATEWAY = "gateway"
SWEEPER = "sweeper"
SAGEMAKER = "sagemaker"

_STATE_CHANGE: dict[SageMakerJobKind, tuple[str, str, str]] = {
    "processing": ("SageMaker Processing Job State Change", "ProcessingJobName", "ProcessingJobStatus"),
    "training": ("SageMaker Training Job State Change", "TrainingJobName", "TrainingJobStatus"),
}


class Action(StrEnum):
    """What a consuming service does with an event."""

    START = "start"  # launch attempt 1 of the service's stage
    FOLLOW = "follow"  # a job of the service's stage reached a final state: complete, retry or fail it
    STOP = "stop"  # stop the service's running job (every block's, for a run trained in blocks)
    START_BLOCK = "start_block"  # launch attempt 1 of one block of a run trained in blocks
    FAN_IN = "fan_in"  # record a finished block; the last one launches the merge
    EMAIL_SUCCESS = "email_success"
    EMAIL_FAILURE = "email_failure"


@dataclass(frozen=True)
class Consumer:
    """A service consuming an event; ``own_stage``: only the events whose ``stage`` is the service's."""

    service: str
    action: Action
    own_stage: bool = False


@dataclass(frozen=True)
class Route:
    """One event type: where it comes from, who emits it, who consumes it (or why nobody does)."""

    event: str
    emitted_by: tuple[str, ...]
    consumers: tuple[Consumer, ...] = ()
    source: str = EVENT_SOURCE
    terminal: str | None = None

    def actions_of(self, service: str) -> tuple[Action, ...]:
        return tuple(consumer.action for consumer in self.consumers if consumer.service == service)


def _each_stage_service(action: Action) -> tuple[Consumer, ...]:
    return tuple(Consumer(stage.value, action, own_stage=True) for stage in JOB_STAGES)


ROUTES: tuple[Route, ...] = (
    Route(JobRequested.detail_type, (GATEWAY,), _each_stage_service(Action.START)),
    Route(
        StageStarted.detail_type,
        ("sfm", "train", "compress"),
        terminal="a record of each launch for the archive and the dashboard; the job store holds the state",
    ),
    Route(SfmCompleted.detail_type, ("sfm",), (Consumer("train", Action.START),)),
    Route(TrainingCompleted.detail_type, ("train",), (Consumer("compress", Action.START),)),
    Route(CompressionCompleted.detail_type, ("compress",), (Consumer("notify", Action.EMAIL_SUCCESS),)),
    Route(JobFailed.detail_type, ("sfm", "train", "compress", SWEEPER), (Consumer("notify", Action.EMAIL_FAILURE),)),
    Route(JobCancelled.detail_type, (GATEWAY,), _each_stage_service(Action.STOP)),
    # A run too large for one training job: the train service fans out a request per block and
    # fans the completions back in, then merges the blocks in a processing job of its own.
    Route(BlockRequested.detail_type, ("train",), (Consumer("train", Action.START_BLOCK),)),
    Route(BlockCompleted.detail_type, ("train",), (Consumer("train", Action.FAN_IN),)),
    Route(
        _STATE_CHANGE["processing"][0],
        (SAGEMAKER,),
        (Consumer("sfm", Action.FOLLOW), Consumer("compress", Action.FOLLOW), Consumer("train", Action.FOLLOW)),
        source=SAGEMAKER_SOURCE,
    ),
    Route(_STATE_CHANGE["training"][0], (SAGEMAKER,), (Consumer("train", Action.FOLLOW),), source=SAGEMAKER_SOURCE),
)


@dataclass(frozen=True)
class Subscription:
    """One EventBridge rule: events on ``bus`` matching ``pattern`` go to the service's queue."""

    rule_name: str
    bus: Bus
    pattern: dict[str, Any]


@dataclass(frozen=True)
class ServiceSpec:
    """A service: its queue, the SageMaker job it runs (if any), and its Lambda's batch settings.

    Physical names carry the deployment (:func:`~spaceport.contracts.deployment.resource_name`).
    """

    name: str
    sagemaker_job: SageMakerJobKind | None
    # How long one batch may take in the consumer (the Lambda timeout).
    consumer_timeout_s: int = 60
    batch_size: int = 5
    max_receive_count: int = 5

    @property
    def stage(self) -> Stage | None:
        """The pipeline stage whose job this service runs; ``None`` for notify."""
        return Stage(self.name) if self.sagemaker_job is not None else None

    def queue_name(self, deployment: str) -> str:
        return resource_name(deployment, self.name)

    def dead_letter_queue_name(self, deployment: str) -> str:
        return resource_name(deployment, self.name, "dlq")

    @property
    def visibility_timeout_s(self) -> int:
        # AWS's guidance for Lambda event sources: at least 6x the function timeout.
        return 6 * self.consumer_timeout_s

    def sagemaker_job_prefix(self, deployment: str) -> str:
        return resource_name(deployment, self.name) + "-"

    def subscriptions(self, deployment: str) -> tuple[Subscription, ...]:
        """The EventBridge rules that route this service's events to its queue."""
        rules: list[Subscription] = []
        for route in ROUTES:
            for consumer in route.consumers:
                if consumer.service != self.name:
                    continue
                if route.source == SAGEMAKER_SOURCE:
                    rules.append(self._sagemaker_rule(deployment, route.event))
                    continue
                pattern: dict[str, Any] = {"source": [route.source], "detail-type": [route.event]}
                if consumer.own_stage:
                    pattern["detail"] = {"stage": [self.name]}
                rules.append(Subscription(resource_name(deployment, self.name, route.event), "pipeline", pattern))
        return tuple(rules)

    def _sagemaker_rule(self, deployment: str, detail_type: str) -> Subscription:
        [(kind, name_field, status_field)] = [(k, n, s) for k, (d, n, s) in _STATE_CHANGE.items() if d == detail_type]
        pattern = {
            "source": [SAGEMAKER_SOURCE],
            "detail-type": [detail_type],
            "detail": {
                name_field: [{"prefix": self.sagemaker_job_prefix(deployment)}],
                status_field: list(SAGEMAKER_FINAL_STATES),
            },
        }
        # The rule for the service's own kind of job keeps its first name; another kind's names the kind.
        suffix = "sagemaker-state" if kind == self.sagemaker_job else f"sagemaker-{kind}-state"
        return Subscription(resource_name(deployment, self.name, suffix), "default", pattern)


SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("sfm", "processing"),
    ServiceSpec("train", "training"),
    ServiceSpec("compress", "processing"),
    ServiceSpec("notify", None),
)


def service(name: str) -> ServiceSpec:
    for spec in SERVICES:
        if spec.name == name:
            return spec
    raise KeyError(f"no service named {name!r}; known: {[s.name for s in SERVICES]}")


def stage_service(stage: Stage) -> ServiceSpec:
    """The service that runs ``stage``'s job."""
    return service(stage.value)


def route(event: str) -> Route:
    for candidate in ROUTES:
        if candidate.event == event:
            return candidate
    raise KeyError(f"no route for the event {event!r}")


def consumers_of(event: str) -> tuple[str, ...]:
    return tuple(consumer.service for consumer in route(event).consumers)


def action_for(service_name: str, event: str, event_stage: Stage | None = None) -> Action | None:
    """What ``service_name`` does with ``event`` (of ``event_stage``); ``None``: it does not consume it."""
    if event not in _EVENTS:
        return None
    for consumer in route(event).consumers:
        if consumer.service == service_name and (not consumer.own_stage or event_stage == Stage(service_name)):
            return consumer.action
    return None


def completion_event(stage: Stage) -> type[StageCompleted]:
    """The event ``stage``'s service publishes when its job completed."""
    for candidate in ROUTES:
        cls = EVENT_TYPES.get(candidate.event)
        if cls is not None and issubclass(cls, StageCompleted) and stage.value in candidate.emitted_by:
            return cls
    raise KeyError(f"no completion event is emitted by the {stage.value} stage")


def pipeline_event_types() -> tuple[type[PipelineEvent], ...]:
    """The pipeline's own event classes, in the routes' order."""
    return tuple(EVENT_TYPES[r.event] for r in ROUTES if r.source == EVENT_SOURCE)


def state_change_fields(kind: SageMakerJobKind) -> tuple[str, str, str]:
    """``(detail-type, job-name field, status field)`` of SageMaker's state-change event."""
    return _STATE_CHANGE[kind]


_EVENTS = frozenset(r.event for r in ROUTES)


# --- SageMaker job names: deterministic, so a duplicate delivery finds the job already there.

_JOB_NAME = re.compile(
    r"^spaceport-(?P<deployment>[a-z][a-z0-9]+)-(?P<stage>[a-z]+)-(?P<job_id>[0-9a-z]+)"
    r"-(?P<run_id>r[0-9]+)(?:-(?P<part>b[0-9]+|merge))?-a(?P<attempt>[0-9]+)$"
)
# The part of a run trained in blocks that merges them (a processing job of the train service);
# each block's part is its name (spaceport.contracts.layout.block_name).
MERGE_PART: Final = "merge"


@dataclass(frozen=True)
class SageMakerJobKey:
    """The business key a SageMaker job name encodes, in one deployment.

    >>> key = SageMakerJobKey("prod", Stage.SFM, "0a1b2c3d4e5f6a7b", "r1", 2)
    >>> key.name, SageMakerJobKey.parse(key.name) == key
    ('spaceport-prod-sfm-0a1b2c3d4e5f6a7b-r1-a2', True)
    >>> key.tags()["spaceport:deployment"], key.retry().attempt
    ('prod', 3)

    One block of a run trained in blocks, and the job that merges them, name their ``part``:

    >>> block = SageMakerJobKey("prod", Stage.TRAIN, "0a1b2c3d4e5f6a7b", "r1", 1, part="b3")
    >>> block.name, SageMakerJobKey.parse(block.name).part, block.kind, block.with_part(MERGE_PART).kind
    ('spaceport-prod-train-0a1b2c3d4e5f6a7b-r1-b3-a1', 'b3', 'training', 'processing')
    """

    deployment: str
    stage: Stage
    job_id: str
    run_id: str
    attempt: int = 1
    part: str = ""
    name: str = field(init=False)

    def __post_init__(self) -> None:
        part = f"-{self.part}" if self.part else ""
        name = f"{resource_name(self.deployment, self.stage.value)}-{self.job_id}-{self.run_id}{part}-a{self.attempt}"
        if len(name) > 63 or not _JOB_NAME.match(name):
            raise ValueError(f"cannot make a valid SageMaker job name from {self!r}")
        object.__setattr__(self, "name", name)

    @classmethod
    def parse(cls, name: str) -> SageMakerJobKey:
        match = _JOB_NAME.match(name)
        if match is None:
            raise ValueError(f"{name!r} is not a Spaceport SageMaker job name")
        return cls(
            match["deployment"],
            Stage(match["stage"]),
            match["job_id"],
            match["run_id"],
            int(match["attempt"]),
            match["part"] or "",
        )

    def retry(self) -> SageMakerJobKey:
        """The key of the next attempt."""
        return SageMakerJobKey(self.deployment, self.stage, self.job_id, self.run_id, self.attempt + 1, self.part)

    def with_part(self, part: str, attempt: int = 1) -> SageMakerJobKey:
        """The key of ``attempt`` of another part of the same run."""
        return SageMakerJobKey(self.deployment, self.stage, self.job_id, self.run_id, attempt, part)

    @property
    def kind(self) -> SageMakerJobKind:
        if self.part == MERGE_PART:
            return "processing"
        kind = stage_service(self.stage).sagemaker_job
        assert kind is not None, "every job stage's service runs a SageMaker job"
        return kind

    def tags(self) -> dict[str, str]:
        """The tags every job of this key carries (cost reports and operators find jobs by them)."""
        tags = {
            "spaceport:deployment": self.deployment,
            "spaceport:job": self.job_id,
            "spaceport:stage": self.stage.value,
            "spaceport:run": self.run_id,
        }
        if self.part:
            tags["spaceport:part"] = self.part
        return tags
