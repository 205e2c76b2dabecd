"""Where the stack leaves what the Chalice apps and operators read: SSM parameter names.

The stack writes four trees under ``/spaceport/<deployment>/``:

* ``env/<VARIABLE>``: one Lambda environment variable each, exactly as
  :meth:`spaceport.config.PipelineConfig.from_env` reads it;
* ``arn/<Key>``: names and ARNs the apps' IAM policy templates refer to as ``${Key}``;
* ``rules/<rule name>``: each EventBridge rule's ARN (what ``spaceport replay --archive``
  passes to StartReplay as filter ARNs);
* ``api/<Setting>``: what the gateway's deploy step applies to its REST API, which Chalice
  creates: every route's throttle, and the usage plan integration keys are issued in
  (:data:`API_THROTTLE`).

>>> env_path("prod"), arn_parameter("prod", "JobsTableArn")
('/spaceport/prod/env/', '/spaceport/prod/arn/JobsTableArn')
"""

from __future__ import annotations

from spaceport.contracts.stages import JOB_STAGES
from spaceport.contracts.topology import SERVICES
from spaceport.contracts.units import job_role_key, queue_arn_key, repository_key

ROOT = "/spaceport"
# The api/ tree's names.
API_THROTTLE = {"rate": "RouteRateLimit", "burst": "RouteBurstLimit", "plan": "IntegrationUsagePlanId"}


def deployment_path(deployment: str) -> str:
    return f"{ROOT}/{deployment}/"


def env_path(deployment: str) -> str:
    return f"{ROOT}/{deployment}/env/"


def arn_path(deployment: str) -> str:
    return f"{ROOT}/{deployment}/arn/"


def rules_path(deployment: str) -> str:
    return f"{ROOT}/{deployment}/rules/"


def arn_parameter(deployment: str, key: str) -> str:
    return f"{arn_path(deployment)}{key}"


def api_path(deployment: str) -> str:
    return f"{ROOT}/{deployment}/api/"


def api_parameter(deployment: str, name: str) -> str:
    return f"{api_path(deployment)}{name}"


# Every key the stack writes under arn/; the units' policies may use exactly these.
ARN_KEYS: tuple[str, ...] = (
    "Deployment",
    "Partition",
    "Region",
    "AccountId",
    "UploadsBucketArn",
    "SfmBucketArn",
    "TrainBucketArn",
    "CompressedBucketArn",
    "SiteBucketArn",
    "JobsTableArn",
    "IdempotencyTableArn",
    "EventBusArn",
    "ArchiveArn",
    *(job_role_key(stage) for stage in JOB_STAGES),
    "SenderIdentityArn",
    "SenderEmail",
    "PowertoolsLayerArn",
    *(queue_arn_key(spec.name) for spec in SERVICES),
    *(repository_key(stage) for stage in JOB_STAGES),
)
