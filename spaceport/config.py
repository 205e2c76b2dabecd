"""The control plane's settings: every resource name and knob, read from the environment here only.

Lambda functions, the local runtime and the tests all build their configuration with
:meth:`PipelineConfig.from_env`; ``infra/`` writes the same variables with
:meth:`PipelineConfig.to_env`, so a variable's name is spelled once: in the ``env`` of its
field below. Defaults are the local runtime's names, and the stages' machines come from
:mod:`spaceport.contracts.deployment`, so a laptop needs no variables at all (boto3 itself
reads ``AWS_ENDPOINT_URL``, the region and the credentials).

>>> config = PipelineConfig.from_env({"SPACEPORT_TRAIN_INSTANCE": "ml.g5.4xlarge"})
>>> config.stages[Stage.TRAIN].instance_type, config.stage_bucket(Stage.TRAIN)
('ml.g5.4xlarge', 'spaceport-local-train')
>>> PipelineConfig.from_env(config.to_env()) == config
True
>>> sorted(PipelineConfig.variables())[:3]
['SPACEPORT_BLOCK_MAX_GAUSSIANS', 'SPACEPORT_BLOCK_MAX_MEGAPIXELS', 'SPACEPORT_BUS_NAME']
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from spaceport.contracts.deployment import (
    LOCAL_DEPLOYMENT,
    LOCAL_PUBLIC_BASE_URL,
    STAGE_MACHINES,
    check_deployment,
    resource_name,
)
from spaceport.contracts.layout import ArtifactLayout
from spaceport.contracts.stages import JOB_STAGES, Stage
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode

PREFIX = "SPACEPORT_"


class ConfigError(SpaceportError):
    """A setting that is missing or malformed."""

    code = "bad_config"
    exit_code = ExitCode.BAD_CONFIG


def _setting(env: str, default: Any, help: str) -> Any:
    return field(default=default, metadata={"env": env, "help": help})


@dataclass(frozen=True)
class StageSettings:
    """How one stage's job runs: its image, the role it runs as, its machine and time limit."""

    image_uri: str = _setting("IMAGE", "", "the job's container image (by immutable tag or digest)")
    role_arn: str = _setting("ROLE_ARN", "", "the IAM role the job runs as")
    instance_type: str = _setting("INSTANCE", "", "the ML instance type")
    volume_gb: int = _setting("VOLUME_GB", 0, "the job's storage volume")
    max_runtime_s: int = _setting("MAX_RUNTIME_S", 0, "the job's time limit")


def _stage_defaults() -> dict[Stage, StageSettings]:
    return {
        stage: StageSettings(
            instance_type=STAGE_MACHINES[stage].instance_type,
            volume_gb=STAGE_MACHINES[stage].volume_gb,
            max_runtime_s=STAGE_MACHINES[stage].max_runtime_s,
        )
        for stage in JOB_STAGES
    }


# Resource fields whose default is the deployment's own name for them: field -> name suffix.
_NAMED_BY_DEPLOYMENT = {
    "bus_name": "",
    "jobs_table": "jobs",
    "idempotency_table": "idempotency",
    "uploads_bucket": "uploads",
    "sfm_bucket": "sfm",
    "train_bucket": "train",
    "compressed_bucket": "compressed",
    "site_bucket": "site",
}


@dataclass(frozen=True)
class PipelineConfig:
    deployment: str = _setting("DEPLOYMENT", LOCAL_DEPLOYMENT, "the deployment: in every resource's name")
    # Empty: the deployment's own name (spaceport-<deployment>-<what>); infra sets the real ones.
    bus_name: str = _setting("BUS_NAME", "", "the pipeline's EventBridge bus")
    jobs_table: str = _setting("JOBS_TABLE", "", "the job store's DynamoDB table")
    idempotency_table: str = _setting("IDEMPOTENCY_TABLE", "", "Powertools' idempotency records")
    uploads_bucket: str = _setting("UPLOADS_BUCKET", "", "photos ZIPs and flight logs")
    sfm_bucket: str = _setting("SFM_BUCKET", "", "the SfM stage's outputs")
    train_bucket: str = _setting("TRAIN_BUCKET", "", "the training stage's outputs")
    compressed_bucket: str = _setting("COMPRESSED_BUCKET", "", "the compressed scenes")
    site_bucket: str = _setting("SITE_BUCKET", "", "the web app")
    sender_email: str = _setting("SENDER_EMAIL", "spaceport@example.com", "SES sender of every email")
    # Sign-in: the gateway accepts ID tokens of this pool's app client (API Gateway's Cognito
    # authorizer in AWS, the local gateway's check locally); empty until the stack made the pool.
    user_pool_id: str = _setting("USER_POOL_ID", "", "the Cognito user pool people sign in to")
    user_pool_client_id: str = _setting("USER_POOL_CLIENT_ID", "", "the pool's app client: the ID tokens' audience")
    user_pool_arn: str = _setting("USER_POOL_ARN", "", "the pool's ARN, which the gateway's authorizer names")
    operators_group: str = _setting("OPERATORS_GROUP", "operators", "the pool's group whose members act on every job")
    max_concurrent_jobs: int = _setting("MAX_CONCURRENT_JOBS", 2, "jobs one user may have queued or running at once")
    daily_gpu_minutes: int = _setting(
        "DAILY_GPU_MINUTES", 240, "GPU minutes one user's jobs may use in any 24 hours (new jobs are refused past it)"
    )
    public_base_url: str = _setting("PUBLIC_BASE_URL", LOCAL_PUBLIC_BASE_URL, "where the web app is served")
    cors_origin: str = _setting("CORS_ORIGIN", "*", "the origin browsers may call the API from")
    train_spot: bool = _setting("TRAIN_SPOT", True, "train on Spot capacity, resuming from checkpoints")
    max_attempts: int = _setting("MAX_ATTEMPTS", 3, "attempts per stage before a transient failure is final")
    max_upload_bytes: int = _setting("MAX_UPLOAD_BYTES", 5 * 1024**3, "the largest photos ZIP accepted")
    max_body_bytes: int = _setting(
        "MAX_BODY_BYTES", 256 * 1024, "the largest request body the gateway reads (flight logs included)"
    )
    link_ttl_s: int = _setting("LINK_TTL_S", 7 * 24 * 3600, "how long presigned download links work")
    stall_margin_s: int = _setting(
        "STALL_MARGIN_S", 1800, "how much longer than its stage may run a job may sit still before the sweeper fails it"
    )
    # What one training job may hold before a capture is trained in blocks (handlers.block_plan),
    # sized for the training stage's GPU instance (STAGE_MACHINES): the default preset's cap on
    # Gaussians, and about 1,500 photos at its 1600 px, each then seen some 20 times in 30k steps.
    block_max_gaussians: int = _setting(
        "BLOCK_MAX_GAUSSIANS", 3_000_000, "predicted Gaussians one training job may hold; more: train in blocks"
    )
    block_max_megapixels: int = _setting(
        "BLOCK_MAX_MEGAPIXELS", 3_000, "training-size megapixels one training job may hold; more: train in blocks"
    )
    stages: Mapping[Stage, StageSettings] = field(default_factory=_stage_defaults)

    def __post_init__(self) -> None:
        try:
            check_deployment(self.deployment)
        except ValueError as error:
            raise ConfigError(f"{PREFIX}DEPLOYMENT: {error}.") from None
        for name, suffix in _NAMED_BY_DEPLOYMENT.items():
            if not getattr(self, name):
                parts = (suffix,) if suffix else ()
                object.__setattr__(self, name, resource_name(self.deployment, *parts))

    @property
    def archive_name(self) -> str:
        """The archive that keeps every event of the pipeline bus (``spaceport replay --archive``)."""
        return f"{self.bus_name}-archive"

    @classmethod
    def variable(cls, name: str) -> str:
        """The environment variable of the setting ``name`` (a field of this class)."""
        [item] = [f for f in _settings(cls) if f.name == name]
        return f"{PREFIX}{item.metadata['env']}"

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Every environment variable read here, with what it sets."""
        names = {f"{PREFIX}{f.metadata['env']}": f.metadata["help"] for f in _settings(cls)}
        for stage in JOB_STAGES:
            for item in _settings(StageSettings):
                names[_stage_variable(stage, item)] = f"{stage.value}: {item.metadata['help']}"
        return names

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PipelineConfig:
        """Read every setting from ``environ`` (default ``os.environ``); unset ones keep their default."""
        env = os.environ if environ is None else environ
        base = cls()
        values = {f.name: _read(env, f"{PREFIX}{f.metadata['env']}", getattr(base, f.name)) for f in _settings(cls)}
        stages = {
            stage: StageSettings(
                **{
                    item.name: _read(env, _stage_variable(stage, item), getattr(base.stages[stage], item.name))
                    for item in _settings(StageSettings)
                }
            )
            for stage in JOB_STAGES
        }
        config = cls(**values, stages=stages)
        if config.max_attempts < 1:
            raise ConfigError(f"{PREFIX}MAX_ATTEMPTS must be at least 1, not {config.max_attempts}.")
        return dataclasses.replace(config, public_base_url=config.public_base_url.rstrip("/"))

    def to_env(self) -> dict[str, str]:
        """The environment that :meth:`from_env` reads back as this configuration."""
        env = {f"{PREFIX}{f.metadata['env']}": _text(getattr(self, f.name)) for f in _settings(type(self))}
        for stage, settings in self.stages.items():
            for item in _settings(StageSettings):
                env[_stage_variable(stage, item)] = _text(getattr(settings, item.name))
        return env

    def stage_bucket(self, stage: Stage) -> str:
        """The bucket a stage's job writes its outputs to."""
        buckets = {Stage.SFM: self.sfm_bucket, Stage.TRAIN: self.train_bucket, Stage.COMPRESS: self.compressed_bucket}
        return buckets[stage]

    @property
    def layout(self) -> ArtifactLayout:
        """Every artifact's S3 URI in this deployment."""
        return ArtifactLayout(self.uploads_bucket, {stage: self.stage_bucket(stage) for stage in JOB_STAGES})

    @property
    def buckets(self) -> tuple[str, ...]:
        """Every bucket the pipeline uses (what the local runtime creates)."""
        return (self.uploads_bucket, self.sfm_bucket, self.train_bucket, self.compressed_bucket, self.site_bucket)


def _settings(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if "env" in f.metadata]


def _stage_variable(stage: Stage, item: dataclasses.Field[Any]) -> str:
    return f"{PREFIX}{stage.name}_{item.metadata['env']}"


def _text(value: Any) -> str:
    return ("1" if value else "0") if isinstance(value, bool) else str(value)


def _read(env: Mapping[str, str], name: str, default: Any) -> Any:
    """``name``'s value in the type of ``default``; unset or empty keeps ``default``."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes"):
            return True
        if raw.lower() in ("0", "false", "no"):
            return False
        raise ConfigError(f"{name} must be 1 or 0, not {raw!r}.")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, not {raw!r}.") from None
    return raw
