"""Provision Spaceport's resources into local AWS, reading only the topology and the config.

What it creates (all through boto3, so it works against any endpoint):

* the buckets of :attr:`PipelineConfig.buckets` (the upload bucket accepts browser PUTs);
* the pipeline event bus and an archive of every event on it (for ``StartReplay``);
* per service in :data:`~spaceport.contracts.topology.SERVICES`: its dead-letter queue, its
  queue (visibility timeout and ``maxReceiveCount`` redrive from the topology), and one
  EventBridge rule per subscription, on the pipeline bus or the default bus (SageMaker's
  state changes), with the queue as target;
* the jobs and idempotency tables;
* the verified SES sender;
* per stage, an ECR repository (immutable tags) holding the image the local jobs name;
* one IAM role per deploy unit of :data:`~spaceport.contracts.units.UNITS`, named as in AWS
  (``spaceport-<unit>-<deployment>``), trusted by the unit's service and holding the very
  policy that deploys, filled in with the local resources' ARNs (:func:`policy_names`); the
  local IAM (:mod:`spaceport.local.iam`) enforces it on every call the unit makes;
* an operator: an IAM user with an access key, for tools that inspect the local account.

>>> from spaceport.local.aws import LocalAws
>>> with LocalAws():
...     resources = provision(PipelineConfig.from_env())
...     resources.queue_urls["sfm"].endswith("/123456789012/spaceport-local-sfm")
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3

from spaceport.adapters.jobstore import idempotency_table_definition, jobs_table_definition
from spaceport.config import PipelineConfig
from spaceport.contracts.deployment import resource_name
from spaceport.contracts.stages import JOB_STAGES, Stage
from spaceport.contracts.topology import DEFAULT_BUS, PIPELINE_BUS, SERVICES, ServiceSpec
from spaceport.contracts.units import UNITS, Unit, job_role_key, job_unit, queue_arn_key, repository_key

# moto's account (every local resource lives in it).
LOCAL_ACCOUNT_ID = "123456789012"
# The inline policy each unit's role holds (the unit's whole policy).
UNIT_POLICY = "spaceport"
# The tag the local jobs' image carries, and the one layer its stand-in manifest lists.
LOCAL_IMAGE_TAG = "local"
LOCAL_LAYER = "sha256:" + "0" * 64


def role_arn(unit: Unit, deployment: str) -> str:
    """The local role of ``unit``."""
    return f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/{unit.role_name(deployment)}"


def job_role_arn(deployment: str, stage: Stage) -> str:
    """The role the local SageMaker jobs of ``stage`` run as."""
    return role_arn(job_unit(stage), deployment)


def image_uri(deployment: str, stage: Stage, region: str) -> str:
    """The ECR image the local jobs of ``stage`` name (the runner runs this checkout's code)."""
    return (
        f"{LOCAL_ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{resource_name(deployment, stage.value)}:{LOCAL_IMAGE_TAG}"
    )


@dataclass
class Provisioned:
    bus_arn: str
    archive_arn: str
    queue_urls: dict[str, str] = field(default_factory=dict)
    dead_letter_queue_urls: dict[str, str] = field(default_factory=dict)
    queue_arns: dict[str, str] = field(default_factory=dict)
    repository_arns: dict[Stage, str] = field(default_factory=dict)
    # unit name -> the ARN of its role
    role_arns: dict[str, str] = field(default_factory=dict)
    operator: OperatorKey | None = None


@dataclass(frozen=True)
class OperatorKey:
    """The local account's operator: an IAM user with every permission, for tools and people."""

    user: str
    access_key_id: str
    secret_access_key: str


def provision(config: PipelineConfig) -> Provisioned:
    """Create every resource the pipeline uses; returns what the runtime needs to find them."""
    _create_buckets(config)
    events = boto3.client("events")
    bus_arn = events.create_event_bus(Name=config.bus_name)["EventBusArn"]
    archive_arn = events.create_archive(
        ArchiveName=config.archive_name,
        EventSourceArn=bus_arn,
        Description="Every Spaceport pipeline event, for reprocessing by replay.",
    )["ArchiveArn"]
    provisioned = Provisioned(bus_arn=bus_arn, archive_arn=archive_arn)
    sqs = boto3.client("sqs")
    for spec in SERVICES:
        queue_url, dlq_url = _create_service_queues(spec, config.deployment)
        provisioned.queue_urls[spec.name] = queue_url
        provisioned.dead_letter_queue_urls[spec.name] = dlq_url
        provisioned.queue_arns[spec.name] = _queue_arn(sqs, queue_url)
        _subscribe(spec, queue_url, config)
    _create_tables(config)
    boto3.client("ses").verify_email_identity(EmailAddress=config.sender_email)
    provisioned.repository_arns = _create_repositories(config.deployment)
    names = policy_names(config, provisioned)
    provisioned.role_arns = {unit.name: _create_unit_role(unit, config.deployment, names) for unit in UNITS.values()}
    provisioned.operator = _create_operator(config.deployment)
    return provisioned


def policy_names(config: PipelineConfig, provisioned: Provisioned) -> dict[str, str]:
    """What the units' policies name as ``${Key}``, for the local resources (infra's ``arns()`` in AWS)."""
    region = boto3.session.Session().region_name or "us-east-1"

    def arn(service: str, rest: str) -> str:
        return f"arn:aws:{service}:{region}:{LOCAL_ACCOUNT_ID}:{rest}"

    names = {
        "Deployment": config.deployment,
        "Partition": "aws",
        "Region": region,
        "AccountId": LOCAL_ACCOUNT_ID,
        "UploadsBucketArn": f"arn:aws:s3:::{config.uploads_bucket}",
        "SfmBucketArn": f"arn:aws:s3:::{config.sfm_bucket}",
        "TrainBucketArn": f"arn:aws:s3:::{config.train_bucket}",
        "CompressedBucketArn": f"arn:aws:s3:::{config.compressed_bucket}",
        "SiteBucketArn": f"arn:aws:s3:::{config.site_bucket}",
        "JobsTableArn": arn("dynamodb", f"table/{config.jobs_table}"),
        "IdempotencyTableArn": arn("dynamodb", f"table/{config.idempotency_table}"),
        "EventBusArn": provisioned.bus_arn,
        "ArchiveArn": provisioned.archive_arn,
        "SenderIdentityArn": arn("ses", f"identity/{config.sender_email}"),
        "SenderEmail": config.sender_email,
    }
    names.update({queue_arn_key(name): queue for name, queue in provisioned.queue_arns.items()})
    names.update({job_role_key(stage): job_role_arn(config.deployment, stage) for stage in JOB_STAGES})
    names.update({repository_key(stage): repository for stage, repository in provisioned.repository_arns.items()})
    return names


def _create_buckets(config: PipelineConfig) -> None:
    s3 = boto3.client("s3")
    for bucket in config.buckets:
        s3.create_bucket(Bucket=bucket)
    # The web app PUTs the photos ZIP straight to a presigned URL from the browser.
    s3.put_bucket_cors(
        Bucket=config.uploads_bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedMethods": ["PUT", "GET", "HEAD"],
                    "AllowedOrigins": [config.cors_origin],
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["ETag"],
                    "MaxAgeSeconds": 3600,
                }
            ]
        },
    )


def _queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _create_service_queues(spec: ServiceSpec, deployment: str) -> tuple[str, str]:
    sqs = boto3.client("sqs")
    dlq_url = sqs.create_queue(
        QueueName=spec.dead_letter_queue_name(deployment), Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)}
    )["QueueUrl"]
    redrive = {"deadLetterTargetArn": _queue_arn(sqs, dlq_url), "maxReceiveCount": str(spec.max_receive_count)}
    queue_url = sqs.create_queue(
        QueueName=spec.queue_name(deployment),
        Attributes={
            "VisibilityTimeout": str(spec.visibility_timeout_s),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    return queue_url, dlq_url


def _subscribe(spec: ServiceSpec, queue_url: str, config: PipelineConfig) -> None:
    events = boto3.client("events")
    queue_arn = _queue_arn(boto3.client("sqs"), queue_url)
    buses = {PIPELINE_BUS: config.bus_name, DEFAULT_BUS: "default"}
    for subscription in spec.subscriptions(config.deployment):
        bus = buses[subscription.bus]
        events.put_rule(
            Name=subscription.rule_name,
            EventBusName=bus,
            EventPattern=json.dumps(subscription.pattern),
            State="ENABLED",
        )
        events.put_targets(Rule=subscription.rule_name, EventBusName=bus, Targets=[{"Id": spec.name, "Arn": queue_arn}])


def _create_tables(config: PipelineConfig) -> None:
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(**jobs_table_definition(config.jobs_table))
    dynamodb.create_table(**idempotency_table_definition(config.idempotency_table))


def _create_repositories(deployment: str) -> dict[Stage, str]:
    """Per stage an immutable repository with the image the local jobs name (a manifest of one layer)."""
    return {stage: publish_local_image(resource_name(deployment, stage.value), LOCAL_IMAGE_TAG) for stage in JOB_STAGES}


def publish_local_image(repository: str, tag: str) -> str:
    """An immutable ECR repository holding a stand-in image (one layer) under ``tag``; its ARN.

    The runner pulls it as SageMaker would, then runs this checkout's code.
    """
    ecr = boto3.client("ecr")
    created = ecr.create_repository(repositoryName=repository, imageTagMutability="IMMUTABLE")["repository"]
    layer = {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 1, "digest": LOCAL_LAYER}
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": LOCAL_LAYER},
        "layers": [layer],
    }
    ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag)
    return str(created["repositoryArn"])


def _create_unit_role(unit: Unit, deployment: str, names: dict[str, str]) -> str:
    iam = boto3.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": unit.service_principal}, "Action": "sts:AssumeRole"}
        ],
    }
    name = unit.role_name(deployment)
    arn = str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])
    iam.put_role_policy(RoleName=name, PolicyName=UNIT_POLICY, PolicyDocument=json.dumps(unit.policy(names)))
    return arn


def _create_operator(deployment: str) -> OperatorKey:
    iam = boto3.client("iam")
    user = f"spaceport-operator-{deployment}"
    iam.create_user(UserName=user)
    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName=user, PolicyName="administrator", PolicyDocument=json.dumps(admin))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return OperatorKey(user, str(key["AccessKeyId"]), str(key["SecretAccessKey"]))
