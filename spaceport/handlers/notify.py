"""The notify service: one email per run's outcome, and the job's final status.

``CompressionCompleted`` -> the success email (presigned ``.sog``, ``.ply`` and report links,
the viewer link, photos used, held-out PSNR, output size) and ``SUCCEEDED``; ``JobFailed`` ->
the failure email (stage, plain reason, what to try) and ``FAILED``. The job record keeps
which ``(run, outcome)`` pairs were emailed, claimed with a conditional write before
sending, so a duplicate or replayed event never sends a second email; a new run does.
:func:`handle_notify_message` returns what it did (``"emailed"``, ``"duplicate"``, ``"stale"``).
"""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

from spaceport.contracts.events import CompressionCompleted, InvalidEventError, JobFailed, PipelineEvent, parse_envelope
from spaceport.contracts.job import JobRecord, JobStatus, Phase, position
from spaceport.contracts.layout import CompressOutputs
from spaceport.contracts.links import status_url, viewer_url
from spaceport.contracts.stages import Stage
from spaceport.contracts.topology import Action, action_for
from spaceport.handlers.email import ResultLinks, failure_email, success_email
from spaceport.handlers.results import download_links
from spaceport.handlers.stage import load_message, record_failure, run_once
from spaceport.ports import Email, Ports

logger = logging.getLogger("spaceport.handlers")

NOTIFY = "notify"


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


def _send_once(ports: Ports, record: JobRecord, marker: str, email: Email) -> bool:
    """Send ``email`` unless ``marker`` was already emailed; a failed send is released for the retry."""
    if not ports.store.claim_notification(record.job_id, marker):
        return False
    try:
        ports.mailer.send(email)
    except Exception:
        ports.store.release_notification(record.job_id, marker)
        raise
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


def on_succeeded(event: CompressionCompleted, ports: Ports) -> str:
    record = _emailable(ports, event)
    if isinstance(record, str):
        return record
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
    links = ResultLinks(
        viewer=viewer_url(ports.config.public_base_url, record.job_id),
        valid_for_s=ports.config.link_ttl_s,
        **download_links(ports, record.job_id, artifacts),
    )
    sent = _send_once(
        ports, record, f"{record.run_id}#succeeded", success_email(record, summary, links, ports.config.sender_email)
    )
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
    return "emailed" if sent else "duplicate"


def on_failed(event: JobFailed, ports: Ports) -> str:
    record = _emailable(ports, event)
    if isinstance(record, str):
        return record
    email = failure_email(
        record,
        event.stage,
        event.error_code,
        event.reason,
        ports.config.sender_email,
        status_url(ports.config.public_base_url, record.job_id),
    )
    sent = _send_once(ports, record, f"{record.run_id}#failed", email)
    record_failure(ports, event.job_id, event.run_id, event.stage, event.attempt, event.error_code, event.reason)
    return "emailed" if sent else "duplicate"
