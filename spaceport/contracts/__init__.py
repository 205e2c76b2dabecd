"""Spaceport's domain contracts: stages, events, topology and job state (no AWS, no torch).

Example::

    from spaceport.contracts import JobRequested, Stage, SERVICES
"""

from spaceport.contracts.events import (
    COMPLETION_EVENTS,
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
from spaceport.contracts.stages import JOB_STAGES, STAGE_ORDER, Stage, next_stage
from spaceport.contracts.topology import SERVICES, SageMakerJobKey, ServiceSpec, Subscription, service

__all__ = [
    "COMPLETION_EVENTS",
    "EVENT_SOURCE",
    "EVENT_TYPES",
    "JOB_STAGES",
    "SERVICES",
    "STAGE_ORDER",
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
    "next_stage",
    "parse_envelope",
    "parse_event",
    "service",
    "to_put_events_entry",
]
