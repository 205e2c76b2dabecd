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
* one IAM role per stage's SageMaker job (:func:`job_role_arn`), which SageMaker may assume;
* the Cognito user pool people sign in to, its app client and the operators group
  (:mod:`spaceport.local.cognito`), and the usage plan integration keys are issued in.

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
from spaceport.contracts.units import job_unit
from spaceport.integrations import usage_plan_name
from spaceport.local.cognito import LocalUserPool, create_user_pool

# moto's account (every local resource lives in it).
LOCAL_ACCOUNT_ID = "123456789012"
SAGEMAKER_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def job_role_arn(deployment: str, stage: Stage) -> str:
    """The role the local SageMaker jobs of ``stage`` run as."""
    return f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/{job_unit(stage).role_name(deployment)}"


# Integration keys' throttle and quota, locally (AWS: the stack's settings).
LOCAL_INTEGRATION_THROTTLE = {"rateLimit": 5.0, "burstLimit": 10}
LOCAL_INTEGRATION_QUOTA = {"limit": 1000, "period": "DAY"}


@dataclass
class Provisioned:
    bus_arn: str
    archive_arn: str
    queue_urls: dict[str, str] = field(default_factory=dict)
    dead_letter_queue_urls: dict[str, str] = field(default_factory=dict)
    user_pool: LocalUserPool | None = None
    integration_usage_plan_id: str = ""

    def environment(self) -> dict[str, str]:
        """The settings (:class:`PipelineConfig` variables) that name what only exists once provisioned."""
        if self.user_pool is None:
            return {}
        return {
            PipelineConfig.variable("user_pool_id"): self.user_pool.pool_id,
            PipelineConfig.variable("user_pool_client_id"): self.user_pool.client_id,
            PipelineConfig.variable("user_pool_arn"): self.user_pool.arn,
        }


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
    for spec in SERVICES:
        queue_url, dlq_url = _create_service_queues(spec, config.deployment)
        provisioned.queue_urls[spec.name] = queue_url
        provisioned.dead_letter_queue_urls[spec.name] = dlq_url
        _subscribe(spec, queue_url, config)
    _create_tables(config)
    boto3.client("ses").verify_email_identity(EmailAddress=config.sender_email)
    _create_job_roles(config.deployment)
    provisioned.user_pool = create_user_pool(resource_name(config.deployment, "users"), config.operators_group)
    provisioned.integration_usage_plan_id = boto3.client("apigateway").create_usage_plan(
        name=usage_plan_name(config.deployment),
        description="Integration keys: each bound to one Spaceport user",
        throttle=LOCAL_INTEGRATION_THROTTLE,
        quota=LOCAL_INTEGRATION_QUOTA,
    )["id"]
    return provisioned


def _create_buckets(config: PipelineConfig) -> None:
    s3 = boto3.client("s3")
    for bucket in config.buckets:
        s3.create_bucket(Bucket=bucket)
    # The web app POSTs the photos ZIP straight to S3 from the browser (a presigned POST).
    s3.put_bucket_cors(
        Bucket=config.uploads_bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedMethods": ["POST", "GET", "HEAD"],
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


def _create_job_roles(deployment: str) -> None:
    iam = boto3.client("iam")
    for stage in JOB_STAGES:
        iam.create_role(
            RoleName=job_unit(stage).role_name(deployment), AssumeRolePolicyDocument=json.dumps(SAGEMAKER_TRUST)
        )
