"""The notify service: one email per run's outcome, and the job's final status.

``CompressionCompleted`` -> ``SUCCEEDED``, then the success email (the viewer, the job page and
a new share link, photos used, held-out PSNR, output size); ``JobFailed`` -> ``FAILED``, then the failure
email (stage, plain reason, what to try). The outcome is recorded first, with the store's
conditional write that keeps an ended run ended, so a success that a cancel beat is never
emailed, and an emailed success is never overwritten. Emails go to the job's ``email``: its
owner's verified address when the job was created (the gateway takes no other). The job record keeps each
``(run, outcome)`` email, claimed before sending and confirmed after, so a duplicate or
replayed event sends nothing more; a new run does.
:func:`handle_notify_message` returns what it did (``"emailed"``, ``"duplicate"``, ``"stale"``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from spaceport.auth.share import hash_share_token, new_share_token
from spaceport.contracts.events import CompressionCompleted, InvalidEventError, JobFailed, PipelineEvent, parse_envelope
from spaceport.contracts.job import JobRecord, JobStatus, Phase, position
from spaceport.contracts.layout import CompressOutputs
from spaceport.contracts.links import share_viewer_url, status_url, viewer_url
from spaceport.contracts.stages import Stage
from spaceport.contracts.topology import Action, action_for, service
from spaceport.handlers.email import ResultLinks, failure_email, success_email
from spaceport.handlers.stage import load_message, record_failure, run_once
from spaceport.ports import Email, Ports

logger = logging.getLogger("spaceport.handlers")

NOTIFY = "notify"
# A claim older than this belongs to an invocation that died (Lambda would have stopped it by then).
_CLAIM_STALE_AFTER_S = 2 * service(NOTIFY).consumer_timeout_s


def handle_notify_message(body: str | dict[str, Any], ports: Ports, lambda_context: Any = None) -> str:
    """Handle one message from the notify queue; returns what was done."""
    event = parse_envelope(load_message(body))
    routed = action_for(NOTIFY, event.detail_type, event.stage)
    if routed is Action.EMAIL_SUCCESS and isinstance(event, CompressionCompleted):
        action = partial(on_succeeded, event, ports)
    elif routed is Action.EMAIL_FAILURE and isinstance(event, JobFailed):
        action = partial(on_failed, event, ports)
    else:
        raise InvalidEventError(f"The notify service does not consume {event.detail_type}.")
    outcome = run_once(ports, f"notify#{event.business_key}", action, lambda_context)
    logger.info("notify service: %s for job %s %s", outcome, event.job_id, event.run_id)
    return outcome


def _send_once(ports: Ports, record: JobRecord, marker: str, compose: Callable[[], Email]) -> bool:
    """Send the email ``compose()`` makes unless ``marker`` was sent already (or is being sent by a
    live invocation); it is composed only once claimed (a success email makes a share link).

    The claim comes first: a duplicate delivery finds it and sends nothing. A send that fails
    gives the claim back for the retry; an invocation that dies before confirming leaves a
    claim that goes stale after twice the Lambda's timeout, before SQS hands the message out
    again, so the retry sends the email after all.
    """
    if not ports.store.claim_notification(record.job_id, marker, stale_after_s=_CLAIM_STALE_AFTER_S):
        return False
    try:
        message_id = ports.mailer.send(compose())
    except Exception:
        ports.store.release_notification(record.job_id, marker)
        raise
    ports.store.confirm_notification(record.job_id, marker, message_id)
    return True


def _emailable(ports: Ports, event: PipelineEvent) -> JobRecord | str:
    """The job's record when this run's outcome is to be emailed; else why not: an older run's
    event ("stale"), or a cancelled job."""
    record = ports.store.get(event.job_id)
    if record is None or record.run_id != event.run_id:
        return "stale"
    if record.status is JobStatus.CANCELLED:
        return "cancelled"
    return record


def _ended_as(ports: Ports, job_id: str, run_id: str, status: JobStatus) -> JobRecord | None:
    """The record if run ``run_id`` ended as ``status`` (by this message or an earlier delivery of it)."""
    record = ports.store.get(job_id)
    return record if record is not None and record.run_id == run_id and record.status is status else None


def on_succeeded(event: CompressionCompleted, ports: Ports) -> str:
    """Mark the run SUCCEEDED, then email it: once the run ended another way, no success email goes."""
    found = _emailable(ports, event)
    if isinstance(found, str):
        return found
    record = found
    # The compress service records its artifacts after publishing; take them from the event too.
    layout = ports.config.layout
    artifacts = {
        **record.artifacts,
        "compress": layout.run_prefix(Stage.COMPRESS, record.job_id, record.run_id),
        "sog": layout.output(Stage.COMPRESS, record.job_id, record.run_id, CompressOutputs.SCENE),
    }
    summary = {**record.summary, **event.summary}
    report_uri = layout.job_report(record.job_id, record.run_id)
    report = {
        "job_id": record.job_id,
        "run_id": record.run_id,
        "status": JobStatus.SUCCEEDED.value,
        "options": record.options.model_dump(mode="json"),
        "summary": summary,
        "artifacts": artifacts,
    }
    ports.objects.put_bytes(report_uri, json.dumps(report, indent=2).encode(), "application/json")
    artifacts["report"] = report_uri
    ports.store.transition(
        record.job_id,
        position(record.run_id, Stage.NOTIFY, 1, Phase.COMPLETED),
        status=JobStatus.SUCCEEDED,
        stage=Stage.NOTIFY,
        stage_percent=100.0,
        artifacts=artifacts,
        summary=event.summary,
        run_status=(record.run_id, JobStatus.SUCCEEDED),
    )
    if _ended_as(ports, record.job_id, record.run_id, JobStatus.SUCCEEDED) is None:
        return "ended"  # cancelled or failed before it could succeed: that outcome stands

    def compose() -> Email:
        # Each result email carries a new share link: the one an earlier email carried stops working.
        token = new_share_token()
        ports.store.set_share_token(record.job_id, hash_share_token(token))
        base = ports.config.public_base_url
        links = ResultLinks(
            viewer=viewer_url(base, record.job_id),
            job_page=status_url(base, record.job_id),
            share=share_viewer_url(base, token),
        )
        return success_email(record, summary, links, ports.config.sender_email)

    return "emailed" if _send_once(ports, record, f"{record.run_id}#succeeded", compose) else "duplicate"


def on_failed(event: JobFailed, ports: Ports) -> str:
    """Mark the run FAILED, then email why: a run that succeeded or was cancelled first stays so."""
    found = _emailable(ports, event)
    if isinstance(found, str):
        return found
    record_failure(ports, event.job_id, event.run_id, event.stage, event.attempt, event.error_code, event.reason)
    record = _ended_as(ports, event.job_id, event.run_id, JobStatus.FAILED)
    if record is None:
        return "ended"
    email = failure_email(
        record,
        event.stage,
        event.error_code,
        event.reason,
        ports.config.sender_email,
        status_url(ports.config.public_base_url, record.job_id),
    )
    return "emailed" if _send_once(ports, record, f"{record.run_id}#failed", lambda: email) else "duplicate"
