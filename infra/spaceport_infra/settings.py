"""Everything an operator may choose for one deployment, in one dataclass, read from CDK context.

``cdk synth -c sender_email=photos@example.org -c train_instance=ml.g5.4xlarge`` overrides a
value; ``infra/cdk.json`` holds what an operator sets once. Each stage's machine defaults to
:data:`spaceport.contracts.deployment.STAGE_MACHINES`.

>>> context = {"deployment": "dev", "image_tag": "1a2b3c4d5e6f", "train_instance": "ml.g5.4xlarge"}
>>> settings = InfraSettings.from_context(context.get)
>>> settings.deployment, settings.machines[Stage.TRAIN].instance_type, settings.machines[Stage.SFM].volume_gb
('dev', 'ml.g5.4xlarge', 50)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from spaceport.contracts.deployment import STAGE_MACHINES, StageMachine, check_deployment
from spaceport.contracts.links import is_email_address
from spaceport.contracts.stages import JOB_STAGES, Stage
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode

# ECR's rule for a tag; "latest" is refused: a deployment runs the image it names, for good.
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
# Per stage, the context keys that override its machine: <stage>_instance, <stage>_volume_gb, ...
_MACHINE_KEYS = {"instance_type": "instance", "volume_gb": "volume_gb", "max_runtime_s": "max_runtime_s"}


class InfraSettingsError(SpaceportError):
    """A CDK context value that cannot make a valid deployment."""

    code = "bad_infra_setting"
    exit_code = ExitCode.BAD_INFRA_SETTING


@dataclass(frozen=True)
class InfraSettings:
    # Names the SSM parameter tree (/spaceport/<deployment>/...) and the Chalice stage that reads it.
    deployment: str = "prod"
    sender_email: str = "spaceport@example.com"
    # Operators' address for alarms; empty = subscribe to the SNS topic yourself.
    operator_email: str = ""
    archive_retention_days: int = 90
    uploads_expire_days: int = 30
    runs_to_infrequent_access_days: int = 30
    # The job images' tag (``make images`` tags the git commit); the repositories are immutable.
    image_tag: str = ""
    # Version of AWS's public Powertools v3 layer (python3.11, x86_64): pydantic and Powertools
    # reach Lambda through it, so no deployment package carries compiled wheels.
    powertools_layer_version: int = 23
    train_spot: bool = True
    # What one user may start (the gateway refuses more with 429; GET /me shows them).
    max_concurrent_jobs: int = 2
    daily_gpu_minutes: int = 240
    # Every route of the gateway's stage (requests per second, and the burst above it), and each
    # integration key (its usage plan: per second, burst, requests per day).
    api_rate_limit: int = 50
    api_burst_limit: int = 100
    integration_rate_limit: int = 5
    integration_burst_limit: int = 10
    integration_daily_quota: int = 2000
    machines: Mapping[Stage, StageMachine] = field(default_factory=lambda: dict(STAGE_MACHINES))

    def __post_init__(self) -> None:
        try:
            check_deployment(self.deployment)
        except ValueError as error:
            raise InfraSettingsError(f"{error}.") from None
        if not _IMAGE_TAG.match(self.image_tag) or self.image_tag == "latest":
            raise InfraSettingsError(
                f"image_tag must name one pushed image (make images push tags the git commit), not {self.image_tag!r}."
            )
        if not is_email_address(self.sender_email):
            raise InfraSettingsError(f"sender_email {self.sender_email!r} is not an email address.")
        if self.operator_email and not is_email_address(self.operator_email):
            raise InfraSettingsError(f"operator_email {self.operator_email!r} is not an email address.")
        limits = ("max_concurrent_jobs", "daily_gpu_minutes", "api_rate_limit", "api_burst_limit")
        for name in (*limits, "integration_rate_limit", "integration_burst_limit", "integration_daily_quota"):
            if getattr(self, name) < 1:
                raise InfraSettingsError(f"{name} must be at least 1.")
        for name in ("archive_retention_days", "uploads_expire_days", "runs_to_infrequent_access_days"):
            if getattr(self, name) < 1:
                raise InfraSettingsError(f"{name} must be at least 1 day.")
        if self.runs_to_infrequent_access_days < 30:
            # S3 refuses a STANDARD_IA transition earlier than 30 days.
            raise InfraSettingsError("runs_to_infrequent_access_days must be at least 30 (an S3 rule).")

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> InfraSettings:
        """Build from CDK context (``app.node.try_get_context``); absent keys keep their default."""
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name == "machines":
                continue
            raw = get(item.name)
            if raw is None:
                continue
            values[item.name] = _coerce(item.name, raw, item.default)
        machines = {}
        for stage in JOB_STAGES:
            default = STAGE_MACHINES[stage]
            chosen: dict[str, Any] = {}
            for attribute, suffix in _MACHINE_KEYS.items():
                key = f"{stage.value}_{suffix}"
                raw = get(key)
                chosen[attribute] = (
                    getattr(default, attribute) if raw is None else _coerce(key, raw, getattr(default, attribute))
                )
            try:
                machines[stage] = StageMachine(**chosen)
            except ValueError as error:
                raise InfraSettingsError(f"{stage.value}: {error}.") from None
        return cls(**values, machines=machines)


def _coerce(name: str, raw: Any, default: Any) -> Any:
    """Context from ``-c key=value`` arrives as text; from cdk.json it keeps its JSON type."""
    if isinstance(default, bool):
        return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes")
    if isinstance(default, int):
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise InfraSettingsError(f"{name} must be a whole number, not {raw!r}.") from None
    return str(raw)
