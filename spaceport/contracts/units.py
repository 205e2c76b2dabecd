"""The deploy units and what each may touch: the one source of every IAM policy.

A *unit* is one Lambda app (the gateway and the four services) or one stage's SageMaker job.
Its :class:`Grant` list says which port of its code reaches which resources with which
actions. Everything else follows from it:

* its IAM policy (:meth:`Unit.policy`), which ``infra/`` gives the unit's role and the local
  runtime gives the same role in moto, where it is enforced;
* which ports an app builds (:func:`spaceport.adapters.build_ports`): a port the unit was not
  granted is not built, so code that reaches for it fails in the first test that runs it.

Resources are templates over the names the stack outputs (``${JobsTableArn}``, ...), filled in
by whoever deploys: CDK tokens in ``infra/``, the stack's parameters for ``chalice deploy``,
moto's ARNs locally (:meth:`Unit.policy`).

>>> sorted(port.value for port in UNITS["gateway"].ports)
['objects', 'publisher', 'store']
>>> policy = UNITS["notify"].policy({key: f"<{key}>" for key in UNITS["notify"].placeholders()})
>>> [statement["Sid"] for statement in policy["Statement"]][:3]
['OwnLogs', 'ConsumeOwnQueue', 'JobRecords']
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from spaceport.contracts.job import OWNER_INDEX, SHARE_INDEX
from spaceport.contracts.layout import (
    JOB_INPUTS,
    JOB_REPORT,
    PROGRESS,
    STAGE_REPORT,
    USER_UPLOADS,
    BlockOutputs,
    CompressOutputs,
    SfmOutputs,
    TrainOutputs,
)
from spaceport.contracts.stages import JOB_STAGES, Stage
from spaceport.contracts.topology import SERVICES, stage_service


class Port(StrEnum):
    """The ports of :mod:`spaceport.ports` a unit's code may build, and what only its runtime uses."""

    STORE = "store"
    PUBLISHER = "publisher"
    OBJECTS = "objects"
    MAILER = "mailer"
    LAUNCHER = "launcher"
    IDEMPOTENCY = "idempotency"
    RUNTIME = "runtime"  # the unit's host (Lambda or SageMaker): its queue, its logs, its image


@dataclass(frozen=True)
class Grant:
    """One policy statement, and the port whose calls need it."""

    sid: str
    port: Port
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: Mapping[str, Any] | None = None

    def statement(self) -> dict[str, Any]:
        statement: dict[str, Any] = {
            "Sid": self.sid,
            "Effect": "Allow",
            "Action": list(self.actions),
            "Resource": list(self.resources),
        }
        if self.condition:
            statement["Condition"] = json.loads(json.dumps(self.condition))
        return statement


@dataclass(frozen=True)
class Unit:
    """A deploy unit: its name (its role is ``spaceport-<name>-<deployment>``) and its grants."""

    name: str
    grants: tuple[Grant, ...]
    # Who may assume the unit's role.
    service_principal: str = "lambda.amazonaws.com"

    @property
    def ports(self) -> frozenset[Port]:
        return frozenset(grant.port for grant in self.grants if grant.port is not Port.RUNTIME)

    def placeholders(self) -> set[str]:
        """The ``${Key}`` names the unit's policy uses."""
        template = json.dumps([grant.statement() for grant in self.grants])
        return set(string.Template(template).get_identifiers())

    def policy(self, names: Mapping[str, str], without: str | None = None) -> dict[str, Any]:
        """The IAM policy with ``names`` filled in; ``without`` leaves one statement out (tests)."""
        missing = self.placeholders() - set(names)
        if missing:
            raise KeyError(f"the {self.name} policy needs {sorted(missing)}")
        statements = [grant.statement() for grant in self.grants if grant.sid != without]
        rendered = string.Template(json.dumps(statements)).substitute(names)
        return {"Version": "2012-10-17", "Statement": json.loads(rendered)}

    def role_name(self, deployment: str) -> str:
        # Chalice's own name for an app's role is <app_name>-<stage>: spaceport-<unit>-<deployment>.
        return f"spaceport-{self.name}-{deployment}"


# --- the resources, as templates over the stack's outputs

BUCKET_ARN = {
    Stage.SFM: "${SfmBucketArn}",
    Stage.TRAIN: "${TrainBucketArn}",
    Stage.COMPRESS: "${CompressedBucketArn}",
}
UPLOADS_BUCKET_ARN = "${UploadsBucketArn}"
DEPLOYMENT = "${Deployment}"
_ACCOUNT = "arn:${Partition}:{service}:${Region}:${AccountId}"


def queue_arn_key(service_name: str) -> str:
    """``"sfm"`` -> ``"SfmQueueArn"``: the stack's output for a service's queue."""
    return f"{service_name.capitalize()}QueueArn"


def job_role_key(stage: Stage) -> str:
    """``Stage.SFM`` -> ``"SfmJobRoleArn"``: the stack's output for a stage's SageMaker job role."""
    return f"{stage.value.capitalize()}JobRoleArn"


def repository_key(stage: Stage) -> str:
    return f"{stage.value.capitalize()}RepositoryArn"


def _arn(service: str, rest: str) -> str:
    return _ACCOUNT.replace("{service}", service) + ":" + rest


def _own_logs(unit: str) -> Grant:
    # Chalice names the app spaceport-<unit>, its REST API's function <app>-<deployment> and each
    # other function <app>-<deployment>-<handler>.
    function = f"log-group:/aws/lambda/spaceport-{unit}-{DEPLOYMENT}"
    groups = (_arn("logs", function), _arn("logs", f"{function}-*"))
    return Grant(
        "OwnLogs",
        Port.RUNTIME,
        ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"),
        (*groups, *(f"{group}:log-stream:*" for group in groups)),
    )


def _consume(service: str) -> Grant:
    return Grant(
        "ConsumeOwnQueue",
        Port.RUNTIME,
        ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"),
        ("${" + queue_arn_key(service) + "}",),
    )


def _job_records(*actions: str) -> Grant:
    return Grant("JobRecords", Port.STORE, tuple(f"dynamodb:{a}" for a in actions), ("${JobsTableArn}",))


_IDEMPOTENCY = Grant(
    "OncePerBusinessKey",
    Port.IDEMPOTENCY,
    ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
    ("${IdempotencyTableArn}",),
)
_PUBLISH = Grant("PublishPipelineEvents", Port.PUBLISHER, ("events:PutEvents",), ("${EventBusArn}",))


def _objects(sid: str, actions: tuple[str, ...], *resources: str) -> Grant:
    return Grant(sid, Port.OBJECTS, tuple(f"s3:{a}" for a in actions), resources)


def _stage_service(stage: Stage) -> Unit:
    service = stage_service(stage)
    kind = "Processing" if service.sagemaker_job == "processing" else "Training"
    job_arn = _arn("sagemaker", f"{kind.lower()}-job/{service.sagemaker_job_prefix(DEPLOYMENT)}*")
    report = STAGE_REPORT[stage]
    # What the service reads of its job's outputs: the report, and the file whose size it records.
    reads = {
        Stage.SFM: (report,),
        Stage.TRAIN: (report, TrainOutputs.SPLAT),
        Stage.COMPRESS: (report, CompressOutputs.SCENE, CompressOutputs.SPZ, CompressOutputs.GLB),
    }
    bucket = BUCKET_ARN[stage]
    return Unit(
        stage.value,
        (
            _own_logs(stage.value),
            _consume(stage.value),
            _job_records("GetItem", "UpdateItem"),
            _IDEMPOTENCY,
            _PUBLISH,
            Grant(
                "OwnSageMakerJobs",
                Port.LAUNCHER,
                (
                    f"sagemaker:Create{kind}Job",
                    f"sagemaker:Describe{kind}Job",
                    f"sagemaker:Stop{kind}Job",
                    "sagemaker:AddTags",
                ),
                (job_arn,),
            ),
            Grant(
                "PassOwnJobRole",
                Port.LAUNCHER,
                ("iam:PassRole",),
                ("${" + job_role_key(stage) + "}",),
                {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
            _objects("ReadOwnJobsReport", ("GetObject",), *(f"{bucket}/*{name}" for name in reads[stage])),
            # Without it S3 answers a missing report with 403, not 404.
            _objects("TellMissingReports", ("ListBucket",), bucket, *_ALSO_READ_BUCKETS.get(stage, ())),
            *_BLOCK_GRANTS.get(stage, ()),
        ),
    )


# The train service trains a capture too large for one job in blocks (spaceport.handlers.blocks): it
# plans from the SfM job's scene summary, writes the plan and the merge job's manifest beside the
# run, and launches and follows the merge, a processing job on the training image and role. Every
# run is planned (the summary is read); what follows only a run in blocks needs.
_BLOCKS_ONLY = (
    _objects(
        "WriteBlockPlansAndMergeInputs",
        ("PutObject",),
        *(f"{BUCKET_ARN[Stage.TRAIN]}/*{name}" for name in (BlockOutputs.PLAN, BlockOutputs.MERGE_INPUTS)),
    ),
    Grant(
        "OwnMergeJobs",
        Port.LAUNCHER,
        (
            "sagemaker:CreateProcessingJob",
            "sagemaker:DescribeProcessingJob",
            "sagemaker:StopProcessingJob",
            "sagemaker:AddTags",
        ),
        (_arn("sagemaker", f"processing-job/{stage_service(Stage.TRAIN).sagemaker_job_prefix(DEPLOYMENT)}*"),),
    ),
)
_BLOCK_GRANTS: Mapping[Stage, tuple[Grant, ...]] = {
    Stage.TRAIN: (
        _objects("ReadSceneSummaries", ("GetObject",), f"{BUCKET_ARN[Stage.SFM]}/*{SfmOutputs.SCENE_SUMMARY}"),
        *_BLOCKS_ONLY,
    ),
}
# A stage service's other buckets it reads from: a missing object there is a 404 too (the train
# service's scene summary, absent from SfM outputs made before summaries, means "train it whole").
_ALSO_READ_BUCKETS: Mapping[Stage, tuple[str, ...]] = {Stage.TRAIN: (BUCKET_ARN[Stage.SFM],)}
# What the merge job, run as the training job's role, needs beyond the training job's own grants.
_MERGE_JOB_GRANTS = (
    Grant(
        "MergeJobLogs",
        Port.RUNTIME,
        ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"),
        (
            _arn("logs", "log-group:/aws/sagemaker/ProcessingJobs"),
            _arn("logs", "log-group:/aws/sagemaker/ProcessingJobs:log-stream:*"),
        ),
    ),
)
# The statements, per unit, that only a run trained in blocks needs: a real local run in blocks
# (tests/blocks/test_local_run.py) proves each, the pipeline's run proves the others.
BLOCK_RUN_GRANTS: Mapping[str, frozenset[str]] = {
    Stage.TRAIN.value: frozenset(grant.sid for grant in _BLOCKS_ONLY),
    f"{Stage.TRAIN.value}-job": frozenset(grant.sid for grant in _MERGE_JOB_GRANTS),
}


def _job(stage: Stage, reads: tuple[str, ...], writes: str, extra: tuple[Grant, ...] = ()) -> Unit:
    """A stage's SageMaker job: its inputs, its outputs, its image and its logs (no other AWS call)."""
    kind = "ProcessingJobs" if stage_service(stage).sagemaker_job == "processing" else "TrainingJobs"
    logs = _arn("logs", f"log-group:/aws/sagemaker/{kind}")
    return Unit(
        f"{stage.value}-job",
        (
            _objects("ReadInputs", ("GetObject",), *(f"{bucket}/*" for bucket in reads)),
            _objects("ListInputs", ("ListBucket",), *reads),
            _objects("WriteOutputs", ("PutObject", "AbortMultipartUpload"), f"{writes}/*"),
            Grant(
                "PullOwnImage",
                Port.RUNTIME,
                ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"),
                ("${" + repository_key(stage) + "}",),
            ),
            # GetAuthorizationToken has no resource type: it is granted on "*", as AWS documents.
            Grant("EcrLogin", Port.RUNTIME, ("ecr:GetAuthorizationToken",), ("*",)),
            Grant(
                "JobLogs",
                Port.RUNTIME,
                ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"),
                (logs, f"{logs}:log-stream:*"),
            ),
            *extra,
        ),
        service_principal="sagemaker.amazonaws.com",
    )


UNITS: Mapping[str, Unit] = {
    unit.name: unit
    for unit in (
        Unit(
            "gateway",
            (
                _own_logs("gateway"),
                # Jobs, their share tokens and operator actions, and integration keys' bindings.
                _job_records("PutItem", "GetItem", "UpdateItem"),
                # GET /jobs and the per-user limits: the caller's own jobs.
                Grant("OwnersJobs", Port.STORE, ("dynamodb:Query",), (f"${{JobsTableArn}}/index/{OWNER_INDEX}",)),
                # GET /share/{token}: the job a token's hash names.
                Grant("SharedJobs", Port.STORE, ("dynamodb:Query",), (f"${{JobsTableArn}}/index/{SHARE_INDEX}",)),
                _PUBLISH,
                # The users' folders: the browser's presigned POST form (signed by the gateway, for one
                # key in the caller's folder), then the check of the ZIP on POST /jobs and the copy's source.
                _objects("UsersUploads", ("GetObject", "PutObject"), f"{UPLOADS_BUCKET_ARN}/{USER_UPLOADS}/*"),
                # What a job runs on, which no user's form can reach: the checked upload's copy and the
                # flight plan CSV.
                _objects("JobInputs", ("PutObject",), f"{UPLOADS_BUCKET_ARN}/{JOB_INPUTS}/*"),
                # Existence checks (ListBucket turns a missing key's 403 into a 404).
                _objects("CheckInputsExist", ("ListBucket",), UPLOADS_BUCKET_ARN, *BUCKET_ARN.values()),
                _objects(
                    "ReadProgressAndSignResultLinks",
                    ("GetObject",),
                    *(f"{bucket}/*{PROGRESS}" for bucket in BUCKET_ARN.values()),
                    # The flight path the job page draws, from SfM's report.
                    f"{BUCKET_ARN[Stage.SFM]}/*{SfmOutputs.REPORT}",
                    f"{BUCKET_ARN[Stage.TRAIN]}/*{TrainOutputs.SPLAT}",
                    f"{BUCKET_ARN[Stage.COMPRESS]}/*",
                ),
            ),
        ),
        *(_stage_service(stage) for stage in JOB_STAGES),
        Unit(
            "sweeper",
            (
                _own_logs("sweeper"),
                Grant("StalledJobs", Port.STORE, ("dynamodb:Query",), ("${JobsTableArn}/index/*",)),
                _job_records("GetItem", "UpdateItem"),
                _PUBLISH,
                _objects("ReadProgress", ("GetObject",), *(f"{bucket}/*{PROGRESS}" for bucket in BUCKET_ARN.values())),
                # Without it S3 answers a job without a progress file with 403, not 404.
                _objects("TellMissingProgress", ("ListBucket",), *BUCKET_ARN.values()),
            ),
        ),
        Unit(
            "notify",
            (
                _own_logs("notify"),
                _consume("notify"),
                _job_records("GetItem", "UpdateItem"),
                _IDEMPOTENCY,
                Grant(
                    "SendAsTheSender",
                    Port.MAILER,
                    ("ses:SendRawEmail",),
                    # The SES sandbox also checks the verified recipients' identities.
                    ("${SenderIdentityArn}", _arn("ses", "identity/*")),
                    {"StringEquals": {"ses:FromAddress": "${SenderEmail}"}},
                ),
                _objects("WriteJobReport", ("PutObject",), f"{BUCKET_ARN[Stage.COMPRESS]}/*{JOB_REPORT}"),
            ),
        ),
        _job(Stage.SFM, reads=(UPLOADS_BUCKET_ARN,), writes=BUCKET_ARN[Stage.SFM]),
        _job(
            Stage.TRAIN,
            reads=(BUCKET_ARN[Stage.SFM], BUCKET_ARN[Stage.TRAIN]),
            writes=BUCKET_ARN[Stage.TRAIN],
            extra=_MERGE_JOB_GRANTS,
        ),
        _job(Stage.COMPRESS, reads=(BUCKET_ARN[Stage.TRAIN],), writes=BUCKET_ARN[Stage.COMPRESS]),
    )
}

LAMBDA_UNITS: tuple[str, ...] = ("gateway", *(spec.name for spec in SERVICES), "sweeper")


def job_unit(stage: Stage) -> Unit:
    """The unit a stage's SageMaker job runs as."""
    return UNITS[f"{stage.value}-job"]
