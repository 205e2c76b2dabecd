"""Spaceport's domain contracts: stages, events, topology, job state, artifact layout and
deployment settings. Nothing here touches AWS, torch or pycolmap.

>>> from spaceport.contracts import JobRequested, Stage, consumers_of
>>> consumers_of(JobRequested.detail_type)
('sfm', 'train', 'compress')
"""

from spaceport.contracts.events import (
    EVENT_SOURCE,
    EVENT_TYPES,
    CompressionCompleted,
    InvalidEventError,
    JobCancelled,
    JobFailed,
    JobOptions,
    JobRequested,
    PipelineEvent,
    SfmCompleted,
    StageCompleted,
    StageStarted,
    TrainingCompleted,
    parse_envelope,
    parse_event,
    to_put_events_entry,
)
from spaceport.contracts.stages import JOB_STAGES, STAGE_ORDER, Stage
from spaceport.contracts.topology import (
    ROUTES,
    SERVICES,
    Action,
    SageMakerJobKey,
    ServiceSpec,
    Subscription,
    action_for,
    completion_event,
    consumers_of,
    service,
)

__all__ = [
    "EVENT_SOURCE",
    "EVENT_TYPES",
    "JOB_STAGES",
    "ROUTES",
    "SERVICES",
    "STAGE_ORDER",
    "Action",
    "CompressionCompleted",
    "InvalidEventError",
    "JobCancelled",
    "JobFailed",
    "JobOptions",
    "JobRequested",
    "PipelineEvent",
    "SageMakerJobKey",
    "ServiceSpec",
    "SfmCompleted",
    "Stage",
    "StageCompleted",
    "StageStarted",
    "Subscription",
    "TrainingCompleted",
    "action_for",
    "completion_event",
    "consumers_of",
    "parse_envelope",
    "parse_event",
    "service",
    "to_put_events_entry",
]
