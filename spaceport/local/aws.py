"""Local AWS: a moto server on 127.0.0.1 that every thread and subprocess talks to via boto3.

The runtime points ``AWS_ENDPOINT_URL`` at the server (boto3 honours it natively) with
dummy credentials and a region, so adapters run the same code paths as in AWS.

Where moto differs from AWS, the smallest workaround lives here and is named:

* ``StartReplay`` in moto replays the whole archive to every rule, ignoring
  ``EventStartTime`` / ``EventEndTime`` and ``Destination.FilterArns``;
  :func:`_replay_like_eventbridge` makes it honour the window (by the events' ``time``)
  and the filter, as EventBridge does.
* moto's DynamoDB evaluates a write's condition and applies it in two steps, so two threads'
  conditional writes can both pass; :func:`_dynamodb_writes_atomically` serialises its
  requests, as DynamoDB makes each conditional write atomic.
* moto's server parses an S3 ``PUT`` whose body is sent as
  ``application/x-www-form-urlencoded`` (what ``curl --data-binary`` and Python's ``urllib``
  send by default) as a form, and hangs; S3 stores the body. :func:`_bodies_are_bodies` hands
  moto such a body as ``application/octet-stream``, so it stores it.
* moto checks IAM policies against resources for S3 alone and ignores conditions;
  :class:`~spaceport.local.iam.IamEnforcer` (in front of the server) checks every call a role
  makes against its policies, resources and conditions included.
* moto's SageMaker records a job as ``Completed`` the moment it is created, overwrites a job
  of the same name and has no ``StopTrainingJob``; :func:`_sagemaker_runs_jobs` makes it refuse
  a name in use (``ResourceInUse``) and what :func:`~spaceport.local.runner.check_request`
  refuses, and hands each job to the local job runner, which runs it and keeps moto's record
  of it current (``InProgress``, then ``Completed``/``Failed``/``Stopped`` with its reason).

>>> import boto3
>>> with LocalAws() as aws:
...     _ = boto3.client("s3").create_bucket(Bucket="photos")   # goes to the moto server
...     aws.endpoint.startswith("http://127.0.0.1:")
True
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email import message_from_string
from email.message import Message
from typing import Any

from spaceport.contracts.topology import SageMakerJobKind
from spaceport.local.environ import EnvironmentOverlay
from spaceport.local.iam import LOCAL_ACCOUNT_ID, ROOT_ACCESS_KEY, IamEnforcer
from spaceport.local.runner import LocalJob, LocalJobRunner, RequestRefused, check_request

REGION = "us-east-1"
# The account's SageMaker quotas: instance type -> jobs of it that may run at once (absent: no
# limit). A new AWS account's GPU quota is 0; tests set it to see what a user then gets.
SAGEMAKER_QUOTAS: dict[str, int] = {}
# The job runner the moto server in this process hands SageMaker jobs to (one stack at a time).
_active_runner: LocalJobRunner | None = None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class LocalAws:
    """A moto server in a thread of this process, and the environment that points boto3 at it."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, runner: LocalJobRunner | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.runner = runner
        self._server: Any = None
        self._environ = EnvironmentOverlay()
        self.iam: IamEnforcer | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def environment(self) -> dict[str, str]:
        """What a process needs to use this server through the ordinary boto3 code paths."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            # The account's root: the runtime's harness; each unit signs with its own role's keys.
            "AWS_ACCESS_KEY_ID": ROOT_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": ROOT_ACCESS_KEY,
            "AWS_SESSION_TOKEN": ROOT_ACCESS_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def start(self) -> LocalAws:
        from moto.server import ThreadedMotoServer

        # The server logs every request; the runtime's own output is what the user reads.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        answer_like_aws()
        global _active_runner
        _active_runner = self.runner
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        wsgi = self._server._server
        assert wsgi is not None
        # IAM first: a refused call never reaches moto.
        self.iam = IamEnforcer(_sent_emails_route(_bodies_are_bodies(wsgi.app)))
        wsgi.app = self.iam
        # moto keeps its accounts per process: a new local AWS starts as an empty account.
        urllib.request.urlopen(
            urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=10
        ).close()
        self._environ.set(self.environment())
        return self

    def stop(self) -> None:
        global _active_runner
        if self.runner is not None:
            self.runner.stop_all(timeout_s=self.runner.stop_grace_s + 5)
        if _active_runner is self.runner:
            _active_runner = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._environ.restore()

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sent_emails(self) -> list[Message]:
        """Every email SES accepted (see :func:`sent_emails`)."""
        return sent_emails(self.endpoint)


# The local AWS's own route for the emails SES accepted. Not moto's ``/moto-api/data.json``: that
# reads every attribute of every object moto ever made, and reading an S3 object's restore status
# advances it, until an object whose bucket is gone fails the whole answer.
SENT_EMAILS_PATH = "/moto-api/spaceport/sent-emails"


def sent_emails(endpoint: str) -> list[Message]:
    """The raw emails the local SES at ``endpoint`` accepted, oldest first, as :class:`email.message.Message`."""
    with urllib.request.urlopen(f"{endpoint}{SENT_EMAILS_PATH}", timeout=10) as response:
        raw: list[str] = json.loads(response.read())
    return [message_from_string(item) for item in raw]


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]
_FORM = "application/x-www-form-urlencoded"


def _sent_emails_route(app: WsgiApp) -> WsgiApp:
    """Answers :data:`SENT_EMAILS_PATH` with the raw emails the account's SES accepted in the runtime's region."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") != SENT_EMAILS_PATH:
            return app(environ, start_response)
        from moto.ses.models import ses_backends

        raw = [
            message.raw_data if isinstance(message.raw_data, str) else message.raw_data.decode()
            for message in ses_backends[LOCAL_ACCOUNT_ID][REGION].sent_messages
            if hasattr(message, "raw_data")
        ]
        body = json.dumps(raw).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return middleware


def _bodies_are_bodies(app: WsgiApp) -> WsgiApp:
    """A PUT's body is the object, whatever content type the client named (S3 stores it as sent)."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("REQUEST_METHOD") == "PUT" and environ.get("CONTENT_TYPE", "").startswith(_FORM):
            environ["CONTENT_TYPE"] = "application/octet-stream"
        return app(environ, start_response)

    return middleware


def answer_like_aws() -> None:
    """Install the workarounds above into moto (once per process; in-process mocks get them too)."""
    _replay_like_eventbridge()
    _dynamodb_writes_atomically()
    _sagemaker_runs_jobs()


def _dynamodb_writes_atomically() -> None:
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler.call_action, "_spaceport_atomic", False):
        return
    original = DynamoHandler.call_action
    lock = threading.Lock()

    def call_action(self: Any) -> Any:
        with lock:
            return original(self)

    setattr(call_action, "_spaceport_atomic", True)  # noqa: B010
    setattr(DynamoHandler, "call_action", call_action)  # noqa: B010


def _replay_like_eventbridge() -> None:
    """Make moto's ``StartReplay`` send only the events inside its time window, and only to
    the rules in ``Destination.FilterArns`` when it names any."""
    from moto.core.utils import unix_time
    from moto.events import models

    if getattr(models.Replay.replay_events, "_spaceport_eventbridge", False):
        return

    def replay_events(self: Any, archive: Any) -> None:
        start, end = _epoch(self.event_start_time), _epoch(self.event_end_time)
        chosen = set(self.destination.get("FilterArns") or ())
        backend = models.events_backends[self.account_id][self.region]
        bus = backend.describe_event_bus(self.destination["Arn"].split("/")[-1])
        rules = [rule for rule in bus.rules.values() if not chosen or rule.arn in chosen]
        for event in list(archive.events):
            if start <= _epoch(event.get("time")) <= end:
                for rule in rules:
                    replayed: Any = dict(event, **{"id": str(uuid.uuid4()), "replay-name": self.name})
                    rule.send_to_targets(replayed, transform_input=False)
        self.state = models.ReplayState.COMPLETED
        self.end_time = unix_time()

    setattr(replay_events, "_spaceport_eventbridge", True)  # noqa: B010
    setattr(models.Replay, "replay_events", replay_events)  # noqa: B010


def _epoch(value: Any) -> float:
    """Seconds since the epoch from moto's mix of floats and ISO strings."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return 0.0


def _sagemaker_runs_jobs() -> None:
    """Make moto's SageMaker refuse what SageMaker refuses and hand each job to the active runner."""
    from moto.sagemaker.exceptions import SagemakerClientError as SageMakerError
    from moto.sagemaker.responses import SageMakerResponse

    if getattr(SageMakerResponse.create_processing_job, "_spaceport_runs_jobs", False):
        return
    create_processing, create_training = SageMakerResponse.create_processing_job, SageMakerResponse.create_training_job

    def create(response: Any, kind: SageMakerJobKind, original: Callable[[Any], Any]) -> Any:
        request = json.loads(response.body)
        backend = response.sagemaker_backend
        records = backend.processing_jobs if kind == "processing" else backend.training_jobs
        name = request["ProcessingJobName" if kind == "processing" else "TrainingJobName"]
        if name in records:
            raise SageMakerError("ResourceInUse", f"Job {name} already exists.")
        try:
            check_request(kind, request)
        except RequestRefused as refused:
            raise SageMakerError(refused.code, refused.message) from None
        instance = _instance_type(kind, request)
        if instance in SAGEMAKER_QUOTAS and _running(backend, instance) >= SAGEMAKER_QUOTAS[instance]:
            raise SageMakerError(
                "ResourceLimitExceeded",
                f"The account-level service limit for {instance} for {kind} job usage is "
                f"{SAGEMAKER_QUOTAS[instance]} Instances.",
            )
        result = original(response)
        record = records[name]
        _keep_record(record, kind, "InProgress", None)
        record.environment = request.get("Environment") or {}
        record.spaceport_instance = instance
        runner = _active_runner
        if runner is not None:
            runner.start(kind, request, on_update=lambda job: _keep_record(record, kind, job.status, job))
        return result

    def create_processing_job(self: Any) -> Any:
        return create(self, "processing", create_processing)

    def create_training_job(self: Any) -> Any:
        return create(self, "training", create_training)

    def stop(response: Any, kind: SageMakerJobKind, name: str) -> Any:
        from moto.core.responses import EmptyResult

        backend = response.sagemaker_backend
        records = backend.processing_jobs if kind == "processing" else backend.training_jobs
        if name not in records:
            raise SageMakerError("ValidationException", f"Could not find job {name}.")
        status = records[name].processing_job_status if kind == "processing" else records[name].training_job_status
        if status in ("Completed", "Failed", "Stopped"):
            raise SageMakerError("ValidationException", f"The job {name} has already ended ({status}).")
        if _active_runner is not None:
            _active_runner.stop(name)
        else:  # nothing runs the job: it stops at once
            _keep_record(records[name], kind, "Stopped", None)
        return EmptyResult()

    def stop_processing_job(self: Any) -> Any:
        return stop(self, "processing", self._get_param("ProcessingJobName"))

    def stop_training_job(self: Any) -> Any:
        return stop(self, "training", self._get_param("TrainingJobName"))

    setattr(create_processing_job, "_spaceport_runs_jobs", True)  # noqa: B010
    for method in (create_processing_job, create_training_job, stop_processing_job, stop_training_job):
        setattr(SageMakerResponse, method.__name__, method)


def _instance_type(kind: SageMakerJobKind, request: dict[str, Any]) -> str:
    if kind == "processing":
        return str(request.get("ProcessingResources", {}).get("ClusterConfig", {}).get("InstanceType"))
    return str(request.get("ResourceConfig", {}).get("InstanceType"))


def _running(backend: Any, instance: str) -> int:
    """Jobs of ``instance`` that hold an instance now (moto keeps their requests' resources)."""
    count = 0
    for job in backend.processing_jobs.values():
        resources = getattr(job, "spaceport_instance", None)
        count += job.processing_job_status in ("InProgress", "Stopping") and resources == instance
    for job in backend.training_jobs.values():
        count += (
            job.training_job_status in ("InProgress", "Stopping")
            and job.resource_config.get("InstanceType") == instance
        )
    return count


def _keep_record(record: Any, kind: SageMakerJobKind, status: str, job: LocalJob | None) -> None:
    """Write a job's state into moto's record of it, as ``Describe*Job`` answers."""
    if kind == "processing":
        record.processing_job_status = status
    else:
        record.training_job_status = status
        record.secondary_status = (job.secondary_status if job else None) or status
    if job is not None and job.failure_reason:
        record.failure_reason = job.failure_reason
