"""Where the stack leaves what the Chalice apps and operators read: SSM parameter names.

The stack writes three trees under ``/spaceport/<deployment>/``:

* ``env/<VARIABLE>``: one Lambda environment variable each, exactly as
  :meth:`spaceport.config.PipelineConfig.from_env` reads it;
* ``arn/<Key>``: names and ARNs the apps' IAM policy templates refer to as ``${Key}``;
* ``rules/<rule name>``: each EventBridge rule's ARN (what ``spaceport replay --archive``
  passes to StartReplay as filter ARNs).

>>> env_path("prod"), arn_parameter("prod", "JobsTableArn")
('/spaceport/prod/env/', '/spaceport/prod/arn/JobsTableArn')
"""

from __future__ import annotations

from spaceport.config import PipelineConfig
from spaceport.contracts.stages import JOB_STAGES
from spaceport.contracts.topology import SERVICES
from spaceport.contracts.units import job_role_key, queue_arn_key, repository_key

ROOT = "/spaceport"
# The API key is a secret: the stack keeps it in Secrets Manager, and the deploy step copies it
# into the gateway's environment (Lambda encrypts environment variables at rest).
API_KEY_VARIABLE = PipelineConfig.variable("api_key")


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
    "ApiKeySecretArn",
    *(queue_arn_key(spec.name) for spec in SERVICES),
    *(repository_key(stage) for stage in JOB_STAGES),
)
