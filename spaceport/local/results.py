"""A finished run's results on disk: its files, its record and the email it sent.

``spaceport run`` and ``spaceport replay --job`` save into ``OUT/<job>/`` (``OUT/<job>/<run>/``
after the first run): the scene and splat, the reports, ``job.json`` and the email moto's SES
kept (``email.eml``, and its HTML part as ``email.html``).
"""

from __future__ import annotations

from email.message import Message
from pathlib import Path, PurePosixPath

import boto3

from spaceport.contracts.job import JobRecord
from spaceport.contracts.s3_uri import S3Location
from spaceport.files import atomic_path, write_atomic
from spaceport.local.aws import sent_emails

# Artifacts that stay in S3: folders (the SfM tree), archives and the photos.
_KEPT_IN_S3 = ("/", ".tar.gz", ".zip")
JOB_FILE = "job.json"


def run_folder(out_root: Path, record: JobRecord) -> Path:
    return out_root / record.job_id if record.run_id == "r1" else out_root / record.job_id / record.run_id


def save_outputs(record: JobRecord, out_root: Path, aws_endpoint: str) -> Path:
    """Download the run's results and its email into its :func:`run_folder`; returns the folder."""
    out_dir = run_folder(out_root, record)
    out_dir.mkdir(parents=True, exist_ok=True)
    s3 = boto3.client("s3")
    for name, uri in sorted(record.artifacts.items()):
        if not uri.startswith("s3://") or uri.endswith(_KEPT_IN_S3):
            continue
        where = S3Location.parse(uri)
        file_name = PurePosixPath(where.key).name
        if not file_name.endswith((".sog", ".ply")):
            file_name = f"{name}{PurePosixPath(file_name).suffix}"
        with atomic_path(out_dir / file_name) as partial:
            s3.download_file(where.bucket, where.key, str(partial))
    write_atomic(out_dir / JOB_FILE, record.model_dump_json(indent=2))
    email = latest_email(aws_endpoint, record)
    if email is not None:
        write_atomic(out_dir / "email.eml", email.as_bytes())
        html = next((part for part in email.walk() if part.get_content_type() == "text/html"), None)
        if html is not None:
            write_atomic(out_dir / "email.html", _payload(html))
    return out_dir


def latest_email(aws_endpoint: str, record: JobRecord) -> Message | None:
    """The last email SES accepted for this job."""
    mine = [m for m in sent_emails(aws_endpoint) if record.email in (m.get("To") or "") and _mentions(m, record.job_id)]
    return mine[-1] if mine else None


def _payload(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _mentions(email: Message, text: str) -> bool:
    """Whether ``text`` appears in the email's subject or any decoded text part."""
    parts = [email.get("Subject") or ""]
    parts += [_payload(part).decode(errors="replace") for part in email.walk() if part.get_content_maintype() == "text"]
    return any(text in part for part in parts)
