"""The ports the gateway and the services work through, and the boto3 adapters behind them.

Handlers take a :class:`Ports` bundle, never boto3 clients, so a test or the local runtime
can swap any one of them (the local runtime swaps the :class:`JobLauncher` for its runner).

Example::

    ports = build_ports(PipelineConfig.from_env())                       # AWS (or AWS_ENDPOINT_URL)
    ports = build_ports(config, launcher=MyLocalRunner(...))             # the local runtime
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from spaceport.adapters.jobstore import CreateResult
from spaceport.adapters.mail import Email
from spaceport.adapters.s3 import ObjectHead
from spaceport.config import PipelineConfig
from spaceport.contracts.events import PipelineEvent
from spaceport.contracts.job import JobRecord
from spaceport.contracts.jobspec import JobLauncher
from spaceport.contracts.stages import Stage


class JobStore(Protocol):
    def create(self, record: JobRecord, fingerprint: str = "") -> CreateResult: ...
    def get(self, job_id: str) -> JobRecord | None: ...
    def list_by_email(self, email: str, limit: int = 50) -> list[JobRecord]: ...
    def transition(self, job_id: str, to_position: int, **changes: Any) -> bool: ...
    def record_progress(self, job_id: str, run_id: str, stage: Stage, attempt: int, percent: float) -> bool: ...
    def claim_notification(self, job_id: str, marker: str) -> bool: ...
    def release_notification(self, job_id: str, marker: str) -> None: ...


class EventPublisher(Protocol):
    def publish(self, event: PipelineEvent) -> None: ...


class ObjectStore(Protocol):
    def head(self, uri: str) -> ObjectHead | None: ...
    def read_prefix(self, uri: str, length: int) -> bytes: ...
    def read_json(self, uri: str) -> dict[str, Any] | None: ...
    def read_json_from_tar(self, uri: str, name: str) -> dict[str, Any] | None: ...
    def extract_from_tar(self, uri: str, members: dict[str, str]) -> dict[str, str]: ...
    def put_bytes(self, uri: str, data: bytes, content_type: str = ...) -> None: ...
    def has_prefix(self, uri: str) -> bool: ...
    def presign_get(self, uri: str, expires_s: int, filename: str | None = None) -> str: ...
    def presign_put(self, uri: str, expires_s: int) -> str: ...


class Mailer(Protocol):
    def send(self, email: Email) -> str: ...


class Idempotency(Protocol):
    def run(self, key: str, action: Callable[[], str], lambda_context: Any = None) -> str: ...


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


def build_ports(config: PipelineConfig, launcher: JobLauncher | None = None, session: Any = None) -> Ports:
    """The boto3 adapters for ``config``; the SageMaker launcher unless ``launcher`` is given.

    boto3 reads ``AWS_ENDPOINT_URL``, so the same call reaches the local moto server.
    """
    import boto3
    from botocore.config import Config

    from spaceport.adapters.events import EventBridgePublisher
    from spaceport.adapters.idempotency import OnceOnly
    from spaceport.adapters.jobstore import DynamoJobStore
    from spaceport.adapters.mail import SesMailer
    from spaceport.adapters.s3 import S3Objects
    from spaceport.adapters.sagemaker_jobs import SageMakerLauncher

    session = session or boto3.session.Session()
    # Presigned links signed with SigV4, which every region accepts.
    s3 = session.client("s3", config=Config(signature_version="s3v4"))
    if launcher is None and config.job_runner == "local":
        # The only place the runtime differs: the local stack's runner stands in for SageMaker.
        from spaceport.local.runner import shared_runner

        launcher = shared_runner()
    elif launcher is None:
        launcher = SageMakerLauncher(
            session.client("sagemaker"),
            role_arn=config.role_arn,
            image_uris={stage: settings.image_uri for stage, settings in config.stages.items()},
        )
    return Ports(
        config=config,
        store=DynamoJobStore(session.resource("dynamodb").Table(config.jobs_table)),
        publisher=EventBridgePublisher(session.client("events"), config.bus_name),
        objects=S3Objects(s3),
        mailer=SesMailer(session.client("ses")),
        launcher=launcher,
        idempotency=OnceOnly(session.client("dynamodb"), config.idempotency_table),
    )


_default_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _cached_default_ports() -> Ports:
    return build_ports(PipelineConfig.from_env())


def default_ports() -> Ports:
    """The process's ports from :meth:`PipelineConfig.from_env`, built on first use (what the apps call).

    Shared by every thread (the local runtime's workers and gateway): the adapters hold
    boto3 clients only, which are thread-safe. ``default_ports.cache_clear()`` makes the
    next call read the environment again.
    """
    with _default_lock:
        return _cached_default_ports()


default_ports.cache_clear = _cached_default_ports.cache_clear  # type: ignore[attr-defined]
