"""Talking to a local stack: finding the running ``spaceport serve``, its HTTP API, and its archive.

``spaceport serve`` leaves :data:`STATE_FILE` (the gateway's URL, its API key, the local AWS
endpoint) in ``OUT/.stack/``, readable by its owner only; the other commands find the stack
through it. :class:`GatewayClient` calls the API as the web app does (standard library only).

>>> api = GatewayClient("http://127.0.0.1:1", api_key="k", timeout_s=0.5)
>>> try:
...     api.get_job("0a1b")
... except GatewayRequestError as error:
...     print(error.status, "Cannot reach the gateway" in error.message)
0 True
"""

from __future__ import annotations

import json
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from spaceport.api.endpoints import API_KEY_HEADER, IDEMPOTENCY_HEADER
from spaceport.config import PipelineConfig
from spaceport.contracts.topology import PIPELINE_BUS, service
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode
from spaceport.files import write_json_atomic
from spaceport.local.aws import LocalAws
from spaceport.local.provision import OperatorKey

STATE_FILE = "serve.json"
AWS_FILE = "aws.json"


class GatewayRequestError(SpaceportError):
    """The gateway refused a request; ``message`` carries its JSON error."""

    code = "gateway_refused"
    exit_code = ExitCode.GATEWAY_REFUSED

    def __init__(self, message: str, status: int, body: Any = None) -> None:
        super().__init__(message, status=status)
        self.status = status
        self.body = body


class NoStackError(SpaceportError):
    code = "no_local_stack"
    exit_code = ExitCode.NO_LOCAL_STACK


@dataclass(frozen=True)
class RunningStack:
    """What another command needs to reach a running ``spaceport serve``."""

    gateway_url: str
    api_key: str
    aws_endpoint: str
    pid: int

    def api(self) -> GatewayClient:
        return GatewayClient(self.gateway_url, self.api_key)

    def use(self) -> None:
        """Point this process's boto3 at the stack's local AWS."""
        os.environ.update({**LocalAws().environment(), "AWS_ENDPOINT_URL": self.aws_endpoint})


def state_file(out_root: Path) -> Path:
    return out_root / ".stack" / STATE_FILE


def write_stack_state(out_root: Path, stack: RunningStack) -> Path:
    """Leave the state file for the other commands (it holds the API key: owner-readable only)."""
    path = state_file(out_root)
    write_json_atomic(path, asdict(stack), mode=0o600)
    return path


def aws_file(out_root: Path) -> Path:
    return out_root / ".stack" / AWS_FILE


def write_aws_state(out_root: Path, endpoint: str, region: str, operator: OperatorKey) -> Path:
    """Where the local AWS is and an operator's key for it, for tools and people (owner-readable only).

    ``aws --endpoint-url "$(jq -r .endpoint OUT/.stack/aws.json)" sqs list-queues`` with the key's
    ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` inspects the local account as an administrator.
    """
    path = aws_file(out_root)
    state = {
        "endpoint": endpoint,
        "region": region,
        "accessKeyId": operator.access_key_id,
        "secretAccessKey": operator.secret_access_key,
        "user": operator.user,
    }
    write_json_atomic(path, state, mode=0o600)
    return path


def running_stack(out_root: Path) -> RunningStack | None:
    """The ``spaceport serve`` that left its state in ``out_root``, or ``None`` when none is running."""
    path = state_file(out_root)
    if not path.exists():
        return None
    try:
        stack = RunningStack(**json.loads(path.read_text()))
        os.kill(stack.pid, 0)
    except (ProcessLookupError, ValueError, TypeError):
        return None
    return stack


def require_running_stack(out_root: Path) -> RunningStack:
    stack = running_stack(out_root)
    if stack is None:
        raise NoStackError("No local stack is running: start `spaceport serve` (in another terminal) first.")
    return stack


class GatewayClient:
    def __init__(self, base_url: str, api_key: str, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """Send one JSON request; returns ``(status, decoded JSON body)``; 4xx/5xx raise."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            data=data,
            method=method,
            headers={API_KEY_HEADER: self.api_key, "Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as error:
            answer = _decode(error.read())
            detail = answer.get("message") or answer.get("Message") or answer if isinstance(answer, dict) else answer
            raise GatewayRequestError(f"{method} {path} answered {error.code}: {detail}", error.code, answer) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise GatewayRequestError(f"Cannot reach the gateway at {self.base_url}: {reason}", 0) from None

    def upload(self, zip_path: Path) -> str:
        """``POST /uploads``, then PUT the ZIP to the presigned URL; returns its ``s3Url``."""
        _, answer = self.request("POST", "/uploads", {"filename": zip_path.name})
        with zip_path.open("rb") as photos:
            put = urllib.request.Request(
                answer["uploadUrl"], data=photos.read(), method="PUT", headers={"Content-Type": "application/zip"}
            )
        try:
            with urllib.request.urlopen(put, timeout=max(self.timeout_s, 300)) as response:
                response.read()
        except urllib.error.HTTPError as error:
            raise GatewayRequestError(
                f"The upload of {zip_path.name} was refused ({error.code}).", error.code
            ) from None
        return str(answer["s3Url"])

    def create_job(self, s3_url: str, email: str, options: dict[str, Any], idempotency_key: str | None = None) -> str:
        """``POST /jobs``; returns the job id."""
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key else None
        _, answer = self.request("POST", "/jobs", {"s3Url": s3_url, "email": email, "options": options}, headers)
        return str(answer["jobId"])

    def get_job(self, job_id: str) -> dict[str, Any]:
        """``GET /jobs/{id}``: the job as the API shows it (progress and links included)."""
        answer: dict[str, Any] = self.request("GET", f"/jobs/{job_id}")[1]
        return answer

    def cancel(self, job_id: str) -> dict[str, Any]:
        """``POST /jobs/{id}/cancel``: stop the running stage's job."""
        answer: dict[str, Any] = self.request("POST", f"/jobs/{job_id}/cancel", {})[1]
        return answer

    def reprocess(self, job_id: str, from_stage: str, options: dict[str, Any]) -> dict[str, Any]:
        """``POST /jobs/{id}/reprocess``: a new run of the job from ``from_stage``."""
        body = {"fromStage": from_stage, "options": options}
        answer: dict[str, Any] = self.request("POST", f"/jobs/{job_id}/reprocess", body)[1]
        return answer


def replay_archive(since: datetime, until: datetime, consumers: Sequence[str] = ()) -> str:
    """``StartReplay`` of the pipeline archive between ``since`` and ``until``; waits for it; returns its state.

    With ``consumers`` (service names), only those services' rules on the pipeline bus get
    the events (``FilterArns``); otherwise every rule on the bus does.
    """
    events = boto3.client("events")
    config = PipelineConfig.from_env()
    archive = events.describe_archive(ArchiveName=config.archive_name)
    destination: dict[str, Any] = {"Arn": archive["EventSourceArn"]}
    if consumers:
        bus = archive["EventSourceArn"].split("/")[-1]
        rules = [
            subscription.rule_name
            for name in consumers
            for subscription in service(name).subscriptions(config.deployment)
            if subscription.bus == PIPELINE_BUS
        ]
        destination["FilterArns"] = [events.describe_rule(Name=rule, EventBusName=bus)["Arn"] for rule in rules]
    name = f"{config.bus_name}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    events.start_replay(
        ReplayName=name,
        EventSourceArn=archive["ArchiveArn"],
        EventStartTime=since,
        EventEndTime=until,
        Destination=destination,
    )
    state = "STARTING"
    for _ in range(600):
        state = events.describe_replay(ReplayName=name)["State"]
        if state in ("COMPLETED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.5)
    print(f"replay {name}: {state} ({since.isoformat()} .. {until.isoformat()})")
    return str(state)


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {"message": raw.decode(errors="replace")[:500]}
