"""Helpers for the control plane's tests: the mocked account and the messages services receive."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from spaceport.adapters import build_ports, reset_default_ports
from spaceport.adapters.wiring import use_sessions
from spaceport.auth import Caller
from spaceport.config import PipelineConfig
from spaceport.contracts.deployment import LOCAL_DEPLOYMENT
from spaceport.contracts.events import EVENT_SOURCE
from spaceport.contracts.stages import JOB_STAGES
from spaceport.contracts.topology import SAGEMAKER_SOURCE, SageMakerJobKey, service, state_change_fields
from spaceport.local.aws import answer_like_aws
from spaceport.local.iam import InProcessIam, role_session
from spaceport.local.provision import image_uri, job_role_arn, provision
from spaceport.ports import Ports

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
# The signed-in users the control plane's tests act as (tests/auth checks how a caller is verified).
PILOT = Caller(subject="pilot-sub", email="pilot@example.com", email_verified=True)
OPERATOR = Caller(subject="operator-sub", email="ops@example.com", email_verified=True, operator=True)


# The mocked account's environment: the roles and images the local provisioning creates, as the
# local stack names them, and room for the many jobs these tests start as one user.
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "SPACEPORT_MAX_CONCURRENT_JOBS": "1000",
    **{f"SPACEPORT_{stage.name}_ROLE_ARN": job_role_arn(LOCAL_DEPLOYMENT, stage) for stage in JOB_STAGES},
    **{f"SPACEPORT_{stage.name}_IMAGE": image_uri(LOCAL_DEPLOYMENT, stage, REGION) for stage in JOB_STAGES},
    "SPACEPORT_MAX_UPLOAD_BYTES": str(64 * 1024),
    "SPACEPORT_PUBLIC_BASE_URL": "https://spaceport.example.com",
}


class World:
    """The mocked account, provisioned as the local stack is: the units' roles with the policies
    that deploy, IAM checked on every call a unit makes (:meth:`unit`), a queue that sees every
    event published on the bus, and ``ports`` with every port as the account's root, to set a
    scene up and look at it.
    """

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self.iam = InProcessIam()
        self.resources = provision(config)
        self._unit_ports: dict[str, Ports] = {}
        use_sessions(self._session)
        self.ports = build_ports(config)
        self.sqs = boto3.client("sqs")
        self.s3 = boto3.client("s3")
        self.sagemaker = boto3.client("sagemaker")
        self.dynamodb = boto3.client("dynamodb")
        events = boto3.client("events")
        self.observer = self.sqs.create_queue(QueueName="observer")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.observer, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name="observe", EventBusName=config.bus_name, EventPattern=json.dumps({"source": [EVENT_SOURCE]})
        )
        events.put_targets(Rule="observe", EventBusName=config.bus_name, Targets=[{"Id": "observer", "Arn": arn}])
        self._seen: list[dict[str, Any]] = []

    def _session(self, unit: str) -> Any:
        return self.iam.enforce_on(role_session(self.resources.role_arns[unit], f"{unit}-control-test"))

    def unit(self, name: str) -> Ports:
        """The ports the deploy unit ``name`` builds, calling AWS with its own role (IAM checked)."""
        if name not in self._unit_ports:
            self._unit_ports[name] = build_ports(self.config, name)
        return self._unit_ports[name]

    def refused(self) -> list[str]:
        """Every call a unit's role made that its policy refused, as ``role: action on resource``."""
        return [f"{d.role}: {d.action} on {d.resource}" for d in self.iam.decisions if not d.allowed]

    def reset(self) -> None:
        """Forget every job, idempotency record, event, email and SageMaker job of the previous test."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.sagemaker.models import sagemaker_backends
        from moto.ses.models import ses_backends

        for table, key in ((self.config.jobs_table, "job_id"), (self.config.idempotency_table, "id")):
            for item in self.dynamodb.scan(TableName=table, ProjectionExpression=key)["Items"]:
                self.dynamodb.delete_item(TableName=table, Key={key: item[key]})
        self.published()  # drains the observer queue
        self._seen.clear()
        self.iam.decisions.clear()
        ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages.clear()
        sagemaker = sagemaker_backends[DEFAULT_ACCOUNT_ID][REGION]
        sagemaker.processing_jobs.clear()
        sagemaker.training_jobs.clear()

    def published(self) -> list[dict[str, Any]]:
        """Every pipeline event published so far, as EventBridge delivered it (oldest first)."""
        while True:
            answer = self.sqs.receive_message(QueueUrl=self.observer, MaxNumberOfMessages=10)
            messages = answer.get("Messages", [])
            if not messages:
                return list(self._seen)
            for message in messages:
                self._seen.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.observer, ReceiptHandle=message["ReceiptHandle"])

    def published_types(self) -> list[str]:
        return [event["detail-type"] for event in self.published()]

    def job_count(self) -> int:
        return self.dynamodb.scan(TableName=self.config.jobs_table, Select="COUNT")["Count"]

    def processing_jobs(self) -> list[str]:
        return sorted(
            job["ProcessingJobName"] for job in self.sagemaker.list_processing_jobs()["ProcessingJobSummaries"]
        )

    def training_jobs(self) -> list[str]:
        return sorted(job["TrainingJobName"] for job in self.sagemaker.list_training_jobs()["TrainingJobSummaries"])

    def sent_emails(self) -> list[bytes]:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        return [
            message.raw_data.encode() if isinstance(message.raw_data, str) else message.raw_data
            for message in ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
        ]

    def put_zip(self, key: str = f"uploads/{PILOT.subject}/u1/photos.zip", files: int = 2) -> str:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for index in range(files):
                archive.writestr(f"img_{index:02d}.jpg", b"\xff\xd8\xff" + bytes(100))
        self.s3.put_object(Bucket=self.config.uploads_bucket, Key=key, Body=buffer.getvalue())
        return f"s3://{self.config.uploads_bucket}/{key}"

    def put_json(self, uri: str, value: dict[str, Any]) -> None:
        self.ports.objects.put_bytes(uri, json.dumps(value).encode(), "application/json")

    def put_tar(self, uri: str, files: dict[str, bytes]) -> None:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
        self.ports.objects.put_bytes(uri, buffer.getvalue())


def state_change(key: SageMakerJobKey, status: str, reason: str | None = None) -> str:
    """An SQS body holding SageMaker's state-change event for ``key``'s job."""
    kind = service(key.stage.value).sagemaker_job
    detail_type, name_field, status_field = state_change_fields(kind)
    detail = {name_field: key.name, status_field: status}
    if reason:
        detail["FailureReason"] = reason
    return json.dumps(
        {
            "version": "0",
            "id": "s1",
            "source": SAGEMAKER_SOURCE,
            "detail-type": detail_type,
            "account": "123456789012",
            "region": REGION,
            "time": "2026-11-27T00:00:00Z",
            "resources": [],
            "detail": detail,
        }
    )


def sqs_event(*bodies: str) -> dict[str, Any]:
    """The event Lambda hands an SQS consumer for ``bodies``."""
    return {
        "Records": [
            {
                "messageId": f"m{index}",
                "receiptHandle": f"h{index}",
                "body": body,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
                "awsRegion": REGION,
            }
            for index, body in enumerate(bodies)
        ]
    }


def load_app(relative: str):
    """Import a Chalice ``app.py`` under a unique module name."""
    name = "control_test_" + relative.replace("/", "_").removesuffix(".py")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / relative)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def mocked_account(env: dict[str, str]) -> Iterator[World]:
    """A module fixture's body: one mocked account provisioned under ``env``, for the fixture's scope.

    Module scope, not session (or package, which is session-wide for a folder without
    ``__init__.py``): the mock and these variables must end with each module, or they leak into the
    local-runtime and browser tests that run later in the same process.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        reset_default_ports()
        answer_like_aws()
        with mock_aws():
            yield World(PipelineConfig.from_env())
        use_sessions(None)


def fresh_world(account: World) -> Iterator[World]:
    """A test fixture's body: the account wiped; the test fails if any unit's policy refused a call."""
    account.reset()
    yield account
    assert account.refused() == [], "a unit's own policy refused a call it made"
