"""The ports the gateway and the services work through, and the values that cross them.

Handlers take a :class:`Ports` bundle, never boto3 clients; :mod:`spaceport.adapters` holds
the boto3 adapters behind each port, and a test may put any object of the same shape in its
place. Dependencies point one way: :mod:`spaceport.contracts` <- this module <- the adapters
and the handlers <- the apps.

>>> Email("a@b.co", "spaceport@example.com", "Hi", "text", "<p>html</p>").to_mime()[:5]
b'From:'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

from spaceport.config import PipelineConfig
from spaceport.contracts.events import PipelineEvent
from spaceport.contracts.job import JobRecord, JobStatus, OperatorAction
from spaceport.contracts.jobspec import StageJobSpec
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode


class LaunchError(SpaceportError):
    """SageMaker refused to start a job for a reason other than its already existing.

    ``aws_code`` is SageMaker's error code; ``retryable`` says whether the same request may
    succeed later (throttling, a service fault), so the message should be delivered again.
    """

    code = "launch_failed"
    exit_code = ExitCode.LAUNCH_FAILED

    def __init__(self, message: str, aws_code: str = "", retryable: bool = False) -> None:
        super().__init__(message, aws_code=aws_code)
        self.aws_code = aws_code
        self.retryable = retryable


@dataclass(frozen=True)
class CreateResult:
    """``created`` is False when the job already existed; ``fingerprint`` is then the stored one."""

    created: bool
    fingerprint: str


@dataclass(frozen=True)
class ObjectHead:
    size: int
    content_type: str | None
    # Which version of the object this is (S3's ETag): a later read or copy can insist on it.
    etag: str | None = None


@dataclass(frozen=True)
class PresignedPost:
    """A form a browser POSTs a file to: ``fields`` first, the file last, to ``url``."""

    url: str
    fields: dict[str, str]


@dataclass(frozen=True)
class JobState:
    """What a launcher knows of a launched job."""

    name: str
    status: str  # SageMaker's: InProgress | Completed | Failed | Stopping | Stopped
    failure_reason: str | None = None


@dataclass(frozen=True)
class Email:
    """One message in HTML and plain text; its MIME bytes are what SES sends and ``.eml`` keeps."""

    to: str
    sender: str
    subject: str
    text: str
    html: str

    def to_mime(self) -> bytes:
        """The message as ``multipart/alternative`` MIME (text first, HTML preferred)."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = self.to
        message["Subject"] = self.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.sender.rsplit("@", 1)[-1])
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message.as_bytes()


class JobStore(Protocol):
    def create(self, record: JobRecord, fingerprint: str = "") -> CreateResult: ...
    def get(self, job_id: str) -> JobRecord | None: ...
    def list_by_owner(self, owner: str, limit: int | None = 50, since: datetime | None = None) -> list[JobRecord]: ...
    def find_shared(self, token_hash: str) -> JobRecord | None: ...
    def set_share_token(self, job_id: str, token_hash: str | None) -> bool: ...
    def record_operator_action(self, job_id: str, action: OperatorAction) -> None: ...
    def bind_api_key(self, key_id: str, owner: str, email: str) -> None: ...
    def api_key_binding(self, key_id: str) -> tuple[str, str] | None: ...
    def list_unchanged_since(self, status: JobStatus, before: datetime) -> list[JobRecord]: ...
    def transition(self, job_id: str, to_position: int, **changes: Any) -> bool: ...
    def move_part(
        self, job_id: str, run_id: str, part: str, to_position: int, changes: dict[str, Any], count_done: bool = False
    ) -> int | None: ...
    def claim_notification(self, job_id: str, marker: str, stale_after_s: float) -> bool: ...
    def confirm_notification(self, job_id: str, marker: str, message_id: str) -> None: ...
    def release_notification(self, job_id: str, marker: str) -> None: ...


class EventPublisher(Protocol):
    def publish(self, event: PipelineEvent) -> None: ...


class ObjectStore(Protocol):
    def head(self, uri: str) -> ObjectHead | None: ...
    def read_prefix(self, uri: str, length: int, etag: str | None = None) -> bytes: ...
    def read_json(self, uri: str) -> dict[str, Any] | None: ...
    def put_bytes(self, uri: str, data: bytes, content_type: str = ...) -> None: ...
    def has_prefix(self, uri: str) -> bool: ...
    def presign_get(self, uri: str, expires_s: int, filename: str | None = None) -> str: ...
    def presign_put(self, uri: str, expires_s: int) -> str: ...
    def presign_post(self, uri: str, expires_s: int, max_bytes: int, content_type: str) -> PresignedPost: ...
    def copy(self, source: str, destination: str, etag: str) -> bool: ...


class Mailer(Protocol):
    def send(self, email: Email) -> str: ...


class Idempotency(Protocol):
    def run(self, key: str, action: Callable[[], str], lambda_context: Any = None) -> str: ...


class JobLauncher(Protocol):
    """How a stage service starts, stops and looks at its job (SageMaker, or whatever stands in for it)."""

    def start(self, spec: StageJobSpec) -> bool:
        """Start the job; ``False`` when a job of that name already exists (nothing started).

        Raises :class:`LaunchError` when the job cannot be started.
        """
        ...

    def stop(self, name: str) -> None:
        """Ask a running job to stop; a job that already ended is left as it is."""
        ...

    def describe(self, name: str) -> JobState:
        """The job's current state."""
        ...


@dataclass
class Ports:
    """Everything a handler talks to. ``launcher`` is only needed by the stage services;
    without ``idempotency`` the job record's positions alone keep handlers idempotent."""

    config: PipelineConfig
    store: JobStore
    publisher: EventPublisher
    objects: ObjectStore
    mailer: Mailer
    launcher: JobLauncher | None = None
    idempotency: Idempotency | None = None
