"""The stage services (sfm, train, compress): one handler for every message on a stage's queue.

A message is an EventBridge event delivered by SQS. :func:`handle_stage_message` accepts

the events the topology (:data:`~spaceport.contracts.topology.ROUTES`) routes to the stage's
service, and does what the topology names for each (:class:`~spaceport.contracts.topology.Action`):

* ``START`` (``JobRequested`` for this stage, or the completion event of the stage before):
  launch the stage's job (attempt 1) and publish ``StageStarted``;
* ``FOLLOW`` (SageMaker's job state change for one of this stage's jobs): ``Completed`` reads
  the job's report and publishes the stage's completion event; ``Failed``/``Stopped`` retries
  a transient failure as a new attempt (up to ``max_attempts``), else publishes ``JobFailed``;
  a job stopped because the user cancelled ends quietly;
* ``STOP`` (``JobCancelled`` for this stage): stop the running job.

Every handler is idempotent on ``(job_id, run_id, stage, attempt)``: Powertools'
idempotency utility runs a message's action once per business key (a duplicate delivery
gets the first answer), the job record's position says whether the step was already taken
(an archive replayed after the idempotency records expired), the deterministic job name
makes a second launch a no-op, and the store's conditional write decides a race. Anything that
is not a well-formed event raises, so the batch reports it and SQS retries it, then
dead-letters it. :func:`handle_stage_message` returns what it did (``"launched"``,
``"duplicate"``, ``"completed"``, ...), for logs and tests.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeGuard

from spaceport.contracts.events import (
    EVENT_SOURCE,
    BlockCompleted,
    BlockRequested,
    InvalidEventError,
    JobCancelled,
    JobFailed,
    JobOptions,
    JobRequested,
    PipelineEvent,
    StageStarted,
    parse_envelope,
)
from spaceport.contracts.job import JobFailure, JobRecord, JobStatus, Phase, position
from spaceport.contracts.layout import FLIGHT_PLAN_ARTIFACT
from spaceport.contracts.stages import Stage
from spaceport.contracts.topology import (
    SAGEMAKER_SOURCE,
    Action,
    SageMakerJobKey,
    SageMakerJobKind,
    action_for,
    completion_event,
    state_change_fields,
)
from spaceport.handlers.stage_jobs import collect_outputs, read_stage_report, stage_input, stage_job_spec
from spaceport.ports import LaunchError, Ports
from spaceport.progress import format_duration

logger = logging.getLogger("spaceport.handlers")

# Failure reasons SageMaker gives when the machine, not the job, was the problem: worth another attempt.
TRANSIENT_MARKERS = (
    "internalservererror",
    "internal error",
    "capacityerror",
    "insufficient capacity",
    "insufficientinstancecapacity",
    "throttl",
    "spot",
    "interrupt",
    "requestlimitexceeded",
    "timed out waiting",
)
# Error codes of failures the service itself names (beside those the jobs report).
LAUNCH_REFUSED = "launch_refused"
TIME_LIMIT = "time_limit"
_REASON_PREFIX = re.compile(r"^(AlgorithmError|ClientError|InternalServerError|CapacityError)\s*:\s*", re.I)


@dataclass(frozen=True)
class JobStateChange:
    """SageMaker's "Processing/Training Job State Change" event, reduced to what a service needs."""

    key: SageMakerJobKey
    status: str
    failure_reason: str | None = None
    # The job ran into its MaxRuntimeInSeconds (SageMaker stops it and says so); then its limit.
    time_limit_s: int | None = None


@dataclass(frozen=True)
class Diagnosis:
    """Why a job failed, in plain words, and whether another attempt may succeed."""

    code: str
    reason: str
    transient: bool


def load_message(body: str | dict[str, Any]) -> dict[str, Any]:
    """An SQS body -> the EventBridge event it carries."""
    if isinstance(body, dict):
        return body
    try:
        envelope = json.loads(body)
    except ValueError:
        raise InvalidEventError("The message body is not JSON.") from None
    if not isinstance(envelope, dict):
        raise InvalidEventError("The message body is not an EventBridge event.")
    return envelope


def parse_state_change(stage: Stage, envelope: dict[str, Any]) -> JobStateChange:
    """Validate SageMaker's state-change event for one of ``stage``'s jobs (of a kind its service follows)."""
    kinds: tuple[SageMakerJobKind, ...] = ("processing", "training")
    followed = {
        state_change_fields(kind)[0]: kind
        for kind in kinds
        if action_for(stage.value, state_change_fields(kind)[0]) is Action.FOLLOW
    }
    if not followed:
        raise InvalidEventError(f"The {stage.value} service runs no SageMaker job.")
    detail = envelope.get("detail")
    kind = followed.get(str(envelope.get("detail-type")))
    if kind is None or not isinstance(detail, dict):
        raise InvalidEventError(
            f"The {stage.value} service expects {' or '.join(map(repr, followed))} events from SageMaker."
        )
    _, name_field, status_field = state_change_fields(kind)
    try:
        key = SageMakerJobKey.parse(str(detail.get(name_field, "")))
    except ValueError as error:
        raise InvalidEventError(str(error)) from None
    if key.stage is not stage or key.kind != kind:
        raise InvalidEventError(f"{key.name} is not a {stage.value} {kind} job.")
    status = detail.get(status_field)
    if not isinstance(status, str):
        raise InvalidEventError(f"{key.name}: the state change has no {status_field}.")
    limit = (detail.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    # Training jobs say it in SecondaryStatus, processing jobs in ExitMessage.
    said = {str(detail.get("SecondaryStatus")), str(detail.get("ExitMessage"))}
    hit = status == "Stopped" and "MaxRuntimeExceeded" in said
    return JobStateChange(key, status, detail.get("FailureReason"), int(limit) if hit and limit else None)


def run_once(ports: Ports, key: str, action: Callable[[], str], lambda_context: Any = None) -> str:
    """``action()`` once per ``key`` when the ports hold an idempotency store; else just ``action()``."""
    if ports.idempotency is None:
        return action()
    return ports.idempotency.run(key, action, lambda_context)


def handle_stage_message(stage: Stage, body: str | dict[str, Any], ports: Ports, lambda_context: Any = None) -> str:
    """Handle one message from ``stage``'s queue; returns what was done (for logs and tests)."""
    envelope = load_message(body)
    action: Callable[[], str]
    if envelope.get("source") == SAGEMAKER_SOURCE:
        change = parse_state_change(stage, envelope)
        if change.key.deployment != ports.config.deployment:
            raise InvalidEventError(f"{change.key.name} belongs to another deployment than {ports.config.deployment}.")
        if action_for(stage.value, str(envelope.get("detail-type"))) is not Action.FOLLOW:
            raise InvalidEventError(f"The {stage.value} service does not follow {envelope.get('detail-type')}.")
        key = f"{envelope['detail-type']}#{change.key.name}#{change.status}"
        action = partial(on_state_change, change, ports)
    elif envelope.get("source") == EVENT_SOURCE:
        event = parse_envelope(envelope)
        key = event.business_key
        routed = action_for(stage.value, event.detail_type, event.stage)
        if routed is Action.STOP and isinstance(event, JobCancelled):
            action = partial(on_cancelled, stage, event, ports)
        elif routed is Action.START:
            action = partial(on_trigger, stage, event.job_id, event.run_id, _input_of(event), event.options, ports)
        elif routed is Action.START_BLOCK and isinstance(event, BlockRequested):
            action = partial(blocks.on_block_requested, event, ports)
        elif routed is Action.FAN_IN and isinstance(event, BlockCompleted):
            action = partial(blocks.on_block_completed, event, ports)
        else:
            raise InvalidEventError(
                f"The {stage.value} service does not consume {event.detail_type} for the {event.stage.value} stage."
            )
    else:
        raise InvalidEventError("The message is neither a Spaceport event nor a SageMaker state change.")
    outcome = run_once(ports, f"{stage.value}#{key}", action, lambda_context)
    logger.info("%s service: %s", stage.value, outcome)
    return outcome


def _input_of(event: PipelineEvent) -> str | None:
    """What the stage an event starts reads: a request's input, or the output of the stage that completed."""
    return event.input_uri if isinstance(event, JobRequested) else event.output_uri


def about_job(key: SageMakerJobKey, record: JobRecord) -> dict[str, Any]:
    """The fields an event about ``key``'s job carries: its business key, input and options."""
    return {
        "job_id": key.job_id,
        "run_id": key.run_id,
        "stage": key.stage,
        "attempt": key.attempt,
        "input_uri": stage_input(key.stage, record.input_uri, record.artifacts),
        "options": record.options,
    }


def is_live(record: JobRecord | None, run_id: str) -> TypeGuard[JobRecord]:
    """Whether ``run_id`` is the job's current run and that run has not ended."""
    return record is not None and record.run_id == run_id and not record.status.is_final


def on_trigger(stage: Stage, job_id: str, run_id: str, input_uri: str | None, options: JobOptions, ports: Ports) -> str:
    """Launch attempt 1 of ``stage`` for the run, unless that already happened."""
    record = ports.store.get(job_id)
    if not is_live(record, run_id):
        return "stale"
    if record.position >= position(run_id, stage, 1, Phase.STARTED):
        if record.blocks is not None and record.blocks.run_id == run_id:
            return blocks.request_pending(record, ports)  # a first delivery may have stopped half-way
        return "duplicate"
    if not input_uri:
        raise InvalidEventError(f"The event that starts {stage.value} for job {job_id} names no input.")
    if stage is Stage.TRAIN:
        planned = blocks.plan_run(record, run_id, input_uri, options, ports)
        if planned is not None:
            return planned
    return _launch(SageMakerJobKey(ports.config.deployment, stage, job_id, run_id, 1), input_uri, options, ports)


def _launch(key: SageMakerJobKey, input_uri: str, options: JobOptions, ports: Ports) -> str:
    if ports.launcher is None:
        raise RuntimeError("The stage services need a JobLauncher in their ports.")
    flight_log = None
    if key.stage is Stage.SFM:
        record = ports.store.get(key.job_id)
        flight_log = record.artifacts.get(FLIGHT_PLAN_ARTIFACT) if record else None
    spec = stage_job_spec(ports.config, key, input_uri, options, flight_log)
    try:
        launched = ports.launcher.start(spec)
    except LaunchError as refused:
        if refused.retryable:
            raise  # throttled: the message comes back later and tries again
        # Refused for good: the job ends now, in plain words, instead of waiting forever.
        record = ports.store.get(key.job_id)
        if record is None:
            return "stale"
        ports.publisher.publish(JobFailed(**about_job(key, record), error_code=LAUNCH_REFUSED, reason=refused.message))
        record_failure(ports, key.job_id, key.run_id, key.stage, key.attempt, LAUNCH_REFUSED, refused.message)
        return "refused"
    moved = ports.store.transition(
        key.job_id,
        position(key.run_id, key.stage, key.attempt, Phase.STARTED),
        status=JobStatus.RUNNING,
        stage=key.stage,
        attempt=key.attempt,
        stage_percent=0.0,
        run_status=(key.run_id, JobStatus.RUNNING),
    )
    if moved:
        ports.publisher.publish(
            StageStarted(
                job_id=key.job_id,
                run_id=key.run_id,
                stage=key.stage,
                attempt=key.attempt,
                input_uri=input_uri,
                output_uri=spec.output_uri,
                options=options,
                sagemaker_job_name=spec.name,
            )
        )
    else:
        # The job was cancelled while this one was starting: the cancel found nothing to stop, so stop it here.
        record = ports.store.get(key.job_id)
        if record is not None and record.run_id == key.run_id and record.status is JobStatus.CANCELLED:
            ports.launcher.stop(spec.name)
            return "cancelled"
    return "launched" if launched else "already running"


def on_state_change(change: JobStateChange, ports: Ports) -> str:
    """A job of this stage reached a final state: complete, retry or fail the stage."""
    key = change.key
    record = ports.store.get(key.job_id)
    if record is None:
        return "stale"
    if key.part:
        return blocks.on_part_state_change(change, record, ports)
    if change.status == "Completed":
        return _on_completed(key, record, ports)
    if change.status in ("Failed", "Stopped"):
        return _on_failed(change, record, ports)
    return "ignored"  # InProgress/Stopping: the rules only forward final states, but be tolerant.


def _on_completed(key: SageMakerJobKey, record: JobRecord, ports: Ports) -> str:
    completed_at = position(key.run_id, key.stage, key.attempt, Phase.COMPLETED)
    if not is_live(record, key.run_id):
        return "stale"
    if record.position >= completed_at:
        return "duplicate"
    outputs = collect_outputs(ports.config, ports.objects, key)
    # Publish before recording: if recording fails the message is retried and publishes again, and the
    # next stage is idempotent on the event's key; the reverse order could lose the event.
    ports.publisher.publish(
        completion_event(key.stage)(**about_job(key, record), output_uri=outputs.output_uri, summary=outputs.summary)
    )
    ports.store.transition(
        key.job_id, completed_at, stage_percent=100.0, artifacts=outputs.artifacts, summary=outputs.summary
    )
    return "completed"


def diagnose(
    stage: Stage,
    status: str,
    failure_reason: str | None,
    report: dict[str, Any] | None,
    time_limit_s: int | None = None,
) -> Diagnosis:
    """Plain words for a failed job, from its report first, then SageMaker's failure reason.

    A job that ran into its time limit is not retried: another attempt would run as long again.
    """
    if time_limit_s is not None:
        limit = format_duration(time_limit_s)
        return Diagnosis(
            TIME_LIMIT, f"The {stage.value} job reached its time limit of {limit} before it finished.", False
        )
    error = (report or {}).get("error")
    if isinstance(error, dict) and error.get("message"):
        # An expected failure the job explained (bad photos, too few placed images): retrying won't help.
        return Diagnosis(str(error.get("code") or "job_failed"), str(error["message"]), transient=False)
    raw = (failure_reason or "").strip()
    plain = _REASON_PREFIX.sub("", raw)[:500]
    if status == "Stopped":
        return Diagnosis("job_stopped", plain or f"The {stage.value} job was stopped before it finished.", True)
    if not raw:
        return Diagnosis("job_crashed", f"The {stage.value} job ended without giving a reason.", True)
    if any(marker in raw.lower() for marker in TRANSIENT_MARKERS):
        return Diagnosis("infrastructure", plain, True)
    return Diagnosis("job_failed", plain, False)


def _on_failed(change: JobStateChange, record: JobRecord, ports: Ports) -> str:
    key = change.key
    if record.run_id == key.run_id and record.status is JobStatus.CANCELLED:
        return "cancelled"
    if not is_live(record, key.run_id):
        return "stale"
    if record.position > position(key.run_id, key.stage, key.attempt, Phase.STARTED):
        return "duplicate"
    report = read_stage_report(ports.config, ports.objects, key)
    diagnosis = diagnose(key.stage, change.status, change.failure_reason, report, change.time_limit_s)
    if diagnosis.transient and key.attempt < ports.config.max_attempts:
        logger.warning("%s failed (%s); retrying as attempt %d", key.name, diagnosis.reason, key.attempt + 1)
        retry = key.retry()
        _launch(retry, stage_input(key.stage, record.input_uri, record.artifacts), record.options, ports)
        return "retried"
    ports.publisher.publish(JobFailed(**about_job(key, record), error_code=diagnosis.code, reason=diagnosis.reason))
    record_failure(ports, key.job_id, key.run_id, key.stage, key.attempt, diagnosis.code, diagnosis.reason)
    return "failed"


def record_failure(ports: Ports, job_id: str, run_id: str, stage: Stage, attempt: int, code: str, reason: str) -> bool:
    """Mark the run FAILED with its error (a no-op when it already ended)."""
    return ports.store.transition(
        job_id,
        position(run_id, stage, attempt, Phase.FAILED),
        status=JobStatus.FAILED,
        error=JobFailure(stage=stage, code=code, message=reason),
        run_status=(run_id, JobStatus.FAILED),
    )


def on_cancelled(stage: Stage, event: JobCancelled, ports: Ports) -> str:
    """Stop this stage's running job for the cancelled run."""
    if ports.launcher is None:
        raise RuntimeError("The stage services need a JobLauncher in their ports.")
    record = ports.store.get(event.job_id)
    if record is None or record.run_id != event.run_id:
        return "stale"
    if record.blocks is not None and record.blocks.run_id == event.run_id and stage is Stage.TRAIN:
        stopped = blocks.stop_parts(record, ports)
        return f"stopped {stopped} block job(s)" if stopped else "nothing to stop"
    attempt = record.attempt if record.stage is stage else event.attempt
    name = SageMakerJobKey(ports.config.deployment, stage, event.job_id, event.run_id, attempt).name
    try:
        ports.launcher.stop(name)
    except LookupError:
        return "nothing to stop"
    return "stopped"


# A run too large for one training job is trained in blocks; that module builds on this one's
# launching and failure handling, so it is imported once this one is defined.
from spaceport.handlers import blocks  # noqa: E402

__all__ = [
    "Diagnosis",
    "JobStateChange",
    "diagnose",
    "handle_stage_message",
    "load_message",
    "on_cancelled",
    "on_state_change",
    "on_trigger",
    "parse_state_change",
    "record_failure",
    "run_once",
]
