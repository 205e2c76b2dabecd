"""The control plane's settings: every resource name and knob, read from the environment here only.

Lambda functions, the local runtime and the tests all build their configuration with
:meth:`PipelineConfig.from_env`; nothing else in Spaceport reads these variables. Defaults
are the local runtime's names, so a laptop needs no variables at all (boto3 itself reads
``AWS_ENDPOINT_URL``, the region and the credentials).

==================================  ==========================================  =====================
variable                            field                                       default
==================================  ==========================================  =====================
SPACEPORT_BUS_NAME                  bus_name                                    spaceport
SPACEPORT_JOBS_TABLE                jobs_table                                  spaceport-jobs
SPACEPORT_IDEMPOTENCY_TABLE         idempotency_table                           spaceport-idempotency
SPACEPORT_UPLOADS_BUCKET            uploads_bucket                              spaceport-uploads
SPACEPORT_SFM_BUCKET                sfm_bucket                                  spaceport-sfm
SPACEPORT_TRAIN_BUCKET              train_bucket                                spaceport-train
SPACEPORT_COMPRESSED_BUCKET         compressed_bucket                           spaceport-compressed
SPACEPORT_SITE_BUCKET               site_bucket                                 spaceport-site
SPACEPORT_SENDER_EMAIL              sender_email                                spaceport@example.com
SPACEPORT_API_KEY                   api_key                                     (empty: every call refused)
SPACEPORT_PUBLIC_BASE_URL           public_base_url                             http://127.0.0.1:8000
SPACEPORT_CORS_ORIGIN               cors_origin                                 *
SPACEPORT_JOB_RUNNER                job_runner (sagemaker | local)              sagemaker
SPACEPORT_SAGEMAKER_ROLE_ARN        role_arn                                    (empty)
SPACEPORT_{SFM,TRAIN,COMPRESS}_IMAGE      image URI per stage                   (empty)
SPACEPORT_{SFM,TRAIN,COMPRESS}_INSTANCE   instance type per stage               ml.c6i.2xlarge / ml.g5.xlarge
SPACEPORT_{SFM,TRAIN,COMPRESS}_MAX_RUNTIME_S  time limit per stage              4 h / 8 h / 1 h
SPACEPORT_TRAIN_SPOT                train_spot (1/0)                            1
SPACEPORT_MAX_ATTEMPTS              max_attempts per stage                      3
SPACEPORT_MAX_UPLOAD_BYTES          max_upload_bytes                            5 GiB
SPACEPORT_LINK_TTL_S                link_ttl_s (presigned links)                7 days
==================================  ==========================================  =====================

Example::

    config = PipelineConfig.from_env()
    config.stage_bucket(Stage.TRAIN)      # "spaceport-train"
    config.stage_image(Stage.SFM)         # the container image the sfm job runs
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from spaceport.contracts.stages import JOB_STAGES, Stage
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode

JobRunnerKind = Literal["sagemaker", "local"]

_DEFAULT_INSTANCE = {Stage.SFM: "ml.c6i.2xlarge", Stage.TRAIN: "ml.g5.xlarge", Stage.COMPRESS: "ml.c6i.2xlarge"}
_DEFAULT_MAX_RUNTIME_S = {Stage.SFM: 4 * 3600, Stage.TRAIN: 8 * 3600, Stage.COMPRESS: 3600}


class ConfigError(SpaceportError):
    """A setting that is missing or malformed."""

    code = "bad_config"
    exit_code = ExitCode.BAD_CONFIG


@dataclass(frozen=True)
class StageSettings:
    """How one stage's job runs: its image, machine, and time limit."""

    image_uri: str
    instance_type: str
    max_runtime_s: int


@dataclass(frozen=True)
class PipelineConfig:
    bus_name: str = "spaceport"
    jobs_table: str = "spaceport-jobs"
    idempotency_table: str = "spaceport-idempotency"
    uploads_bucket: str = "spaceport-uploads"
    sfm_bucket: str = "spaceport-sfm"
    train_bucket: str = "spaceport-train"
    compressed_bucket: str = "spaceport-compressed"
    site_bucket: str = "spaceport-site"
    sender_email: str = "spaceport@example.com"
    api_key: str = ""
    public_base_url: str = "http://127.0.0.1:8000"
    cors_origin: str = "*"
    job_runner: JobRunnerKind = "sagemaker"
    role_arn: str = ""
    stages: Mapping[Stage, StageSettings] = field(
        default_factory=lambda: {
            stage: StageSettings("", _DEFAULT_INSTANCE[stage], _DEFAULT_MAX_RUNTIME_S[stage]) for stage in JOB_STAGES
        }
    )
    train_spot: bool = True
    max_attempts: int = 3
    max_upload_bytes: int = 5 * 1024**3
    # The largest request body the gateway reads (CSV flight plans included).
    max_body_bytes: int = 256 * 1024
    link_ttl_s: int = 7 * 24 * 3600

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PipelineConfig:
        """Read every setting from ``environ`` (default ``os.environ``); unset ones keep their default."""
        env = os.environ if environ is None else environ
        base = cls()

        def text(name: str, default: str) -> str:
            return env.get(f"SPACEPORT_{name}", default) or default

        def number(name: str, default: int) -> int:
            value = env.get(f"SPACEPORT_{name}")
            if not value:
                return default
            try:
                return int(value)
            except ValueError:
                raise ConfigError(f"SPACEPORT_{name} must be a whole number, not {value!r}.") from None

        runner = text("JOB_RUNNER", base.job_runner)
        if runner not in ("sagemaker", "local"):
            raise ConfigError(f"SPACEPORT_JOB_RUNNER must be 'sagemaker' or 'local', not {runner!r}.")
        stages = {
            stage: StageSettings(
                image_uri=text(f"{stage.name}_IMAGE", ""),
                instance_type=text(f"{stage.name}_INSTANCE", _DEFAULT_INSTANCE[stage]),
                max_runtime_s=number(f"{stage.name}_MAX_RUNTIME_S", _DEFAULT_MAX_RUNTIME_S[stage]),
            )
            for stage in JOB_STAGES
        }
        return cls(
            bus_name=text("BUS_NAME", base.bus_name),
            jobs_table=text("JOBS_TABLE", base.jobs_table),
            idempotency_table=text("IDEMPOTENCY_TABLE", base.idempotency_table),
            uploads_bucket=text("UPLOADS_BUCKET", base.uploads_bucket),
            sfm_bucket=text("SFM_BUCKET", base.sfm_bucket),
            train_bucket=text("TRAIN_BUCKET", base.train_bucket),
            compressed_bucket=text("COMPRESSED_BUCKET", base.compressed_bucket),
            site_bucket=text("SITE_BUCKET", base.site_bucket),
            sender_email=text("SENDER_EMAIL", base.sender_email),
            api_key=env.get("SPACEPORT_API_KEY", ""),
            public_base_url=text("PUBLIC_BASE_URL", base.public_base_url).rstrip("/"),
            cors_origin=text("CORS_ORIGIN", base.cors_origin),
            job_runner=runner,  # type: ignore[arg-type]
            role_arn=text("SAGEMAKER_ROLE_ARN", ""),
            stages=stages,
            train_spot=text("TRAIN_SPOT", "1") not in ("0", "false", "no"),
            max_attempts=max(1, number("MAX_ATTEMPTS", base.max_attempts)),
            max_upload_bytes=number("MAX_UPLOAD_BYTES", base.max_upload_bytes),
            max_body_bytes=number("MAX_BODY_BYTES", base.max_body_bytes),
            link_ttl_s=number("LINK_TTL_S", base.link_ttl_s),
        )

    def stage_bucket(self, stage: Stage) -> str:
        """The bucket a stage's job writes its outputs to."""
        buckets = {Stage.SFM: self.sfm_bucket, Stage.TRAIN: self.train_bucket, Stage.COMPRESS: self.compressed_bucket}
        return buckets[stage]

    def stage_output_uri(self, stage: Stage, job_id: str, run_id: str) -> str:
        """``s3://<stage bucket>/<job_id>/<run_id>/``: where one run of a stage writes."""
        return f"s3://{self.stage_bucket(stage)}/{job_id}/{run_id}/"

    @property
    def buckets(self) -> tuple[str, ...]:
        """Every bucket the pipeline uses (what the local runtime creates)."""
        return (self.uploads_bucket, self.sfm_bucket, self.train_bucket, self.compressed_bucket, self.site_bucket)
