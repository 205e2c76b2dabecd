"""Deployment facts in one place: the machine and time limit of each stage's job, and the local defaults.

``infra/`` writes these into the stack's parameters, the SageMaker launcher sends them with
every job (through :class:`spaceport.config.PipelineConfig`, where an operator's environment
may override them), and the local runtime checks each job request against
:data:`INSTANCE_TYPES` as SageMaker would.

>>> STAGE_MACHINES[Stage.TRAIN].instance_type, INSTANCE_TYPES["ml.g5.2xlarge"].gpus
('ml.g5.2xlarge', 1)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from spaceport.contracts.stages import Stage


@dataclass(frozen=True)
class InstanceType:
    """What SageMaker gives a job on one ML instance type."""

    vcpus: int
    memory_gib: int
    gpus: int


# The instance types the stages may run on (a job asking for another is refused locally, as a
# typo would be refused by SageMaker).
INSTANCE_TYPES: Mapping[str, InstanceType] = {
    "ml.c6i.2xlarge": InstanceType(vcpus=8, memory_gib=16, gpus=0),
    "ml.c6i.4xlarge": InstanceType(vcpus=16, memory_gib=32, gpus=0),
    "ml.r5.2xlarge": InstanceType(vcpus=8, memory_gib=64, gpus=0),
    "ml.g4dn.xlarge": InstanceType(vcpus=4, memory_gib=16, gpus=1),
    "ml.g5.xlarge": InstanceType(vcpus=4, memory_gib=16, gpus=1),
    "ml.g5.2xlarge": InstanceType(vcpus=8, memory_gib=32, gpus=1),
    "ml.g5.4xlarge": InstanceType(vcpus=16, memory_gib=64, gpus=1),
}


@dataclass(frozen=True)
class StageMachine:
    """Where one stage's job runs: instance type, storage volume and the longest it may run."""

    instance_type: str
    volume_gb: int
    max_runtime_s: int

    def __post_init__(self) -> None:
        if self.instance_type not in INSTANCE_TYPES:
            raise ValueError(f"{self.instance_type!r} is not one of {sorted(INSTANCE_TYPES)}")


# SfM is CPU-bound (pycolmap's CPU build); training needs a GPU with room for the images;
# compression sorts with PLAS on torch, which a small GPU runs best.
STAGE_MACHINES: Mapping[Stage, StageMachine] = {
    Stage.SFM: StageMachine("ml.c6i.2xlarge", volume_gb=50, max_runtime_s=4 * 3600),
    Stage.TRAIN: StageMachine("ml.g5.2xlarge", volume_gb=100, max_runtime_s=8 * 3600),
    Stage.COMPRESS: StageMachine("ml.g4dn.xlarge", volume_gb=50, max_runtime_s=3600),
}

# The job that merges the blocks of a run trained in blocks (a processing job of the train
# service, on the training image): numpy over every block's splat, so memory, not a GPU.
MERGE_MACHINE = StageMachine("ml.r5.2xlarge", volume_gb=100, max_runtime_s=2 * 3600)

# A deployment's name ("prod", "dev", "local") is in every physical resource's name, so that two
# deployments can share an account without sharing a queue, a table or a job.
DEPLOYMENT_ENV = "SPACEPORT_DEPLOYMENT"
LOCAL_DEPLOYMENT = "local"
_DEPLOYMENT_NAME = re.compile(r"^[a-z][a-z0-9]{1,11}$")


def check_deployment(name: str) -> str:
    """``name`` if it can name a deployment: 2-12 lowercase letters or digits, a letter first.

    >>> check_deployment("prod")
    'prod'
    """
    if not _DEPLOYMENT_NAME.match(name):
        raise ValueError(f"a deployment is named with 2-12 lowercase letters or digits, not {name!r}")
    return name


def deployment_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The deployment this process belongs to (its Lambda's or job's environment); local by default."""
    env = os.environ if environ is None else environ
    return check_deployment(env.get(DEPLOYMENT_ENV) or LOCAL_DEPLOYMENT)


def resource_name(deployment: str, *parts: str) -> str:
    """The physical name of one of a deployment's resources.

    >>> resource_name("prod", "jobs"), resource_name("dev", "sfm", "dlq")
    ('spaceport-prod-jobs', 'spaceport-dev-sfm-dlq')
    """
    return "-".join(("spaceport", deployment, *parts))


# The local runtime's gateway (`spaceport serve`), and so the public base URL of a local deployment.
LOCAL_GATEWAY_PORT = 8000
LOCAL_PUBLIC_BASE_URL = f"http://127.0.0.1:{LOCAL_GATEWAY_PORT}"
