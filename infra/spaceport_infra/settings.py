"""Everything an operator may choose for one deployment, in one dataclass, read from CDK context.

Example::

    settings = InfraSettings.from_context(app.node.try_get_context)
    settings.stage                      # "prod"
    settings.instance_type[Stage.TRAIN] # "ml.g5.2xlarge"

``cdk synth -c sender_email=photos@example.org -c train_instance=ml.g5.4xlarge`` overrides a
value; ``infra/cdk.json`` holds the defaults an operator edits once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from spaceport.contracts.stages import JOB_STAGES, Stage
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode

DEFAULT_INSTANCE: Mapping[Stage, str] = {
    Stage.SFM: "ml.c6i.2xlarge",
    Stage.TRAIN: "ml.g5.2xlarge",
    Stage.COMPRESS: "ml.g4dn.xlarge",
}
DEFAULT_MAX_RUNTIME_S: Mapping[Stage, int] = {Stage.SFM: 4 * 3600, Stage.TRAIN: 8 * 3600, Stage.COMPRESS: 3600}

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9]{1,15}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class InfraSettingsError(SpaceportError):
    """A CDK context value that cannot make a valid deployment."""

    code = "bad_infra_setting"
    exit_code = ExitCode.BAD_INFRA_SETTING


@dataclass(frozen=True)
class InfraSettings:
    # Names the SSM parameter tree (/spaceport/<stage>/...) and the Chalice stage that reads it.
    stage: str = "prod"
    sender_email: str = "spaceport@example.com"
    # Operators' address for alarms; empty = subscribe to the SNS topic yourself.
    operator_email: str = ""
    archive_retention_days: int = 90
    uploads_expire_days: int = 30
    runs_to_infrequent_access_days: int = 30
    image_tag: str = "latest"
    # Version of AWS's public Powertools v3 layer (python3.11, x86_64): pydantic and Powertools
    # reach Lambda through it, so no deployment package carries compiled wheels.
    powertools_layer_version: int = 23
    train_spot: bool = True
    instance_type: Mapping[Stage, str] = field(default_factory=lambda: dict(DEFAULT_INSTANCE))
    max_runtime_s: Mapping[Stage, int] = field(default_factory=lambda: dict(DEFAULT_MAX_RUNTIME_S))

    def __post_init__(self) -> None:
        if not _STAGE_NAME.match(self.stage):
            raise InfraSettingsError(f"stage must be 2-16 lowercase letters or digits, not {self.stage!r}.")
        if not _EMAIL.match(self.sender_email):
            raise InfraSettingsError(f"sender_email {self.sender_email!r} is not an email address.")
        if self.operator_email and not _EMAIL.match(self.operator_email):
            raise InfraSettingsError(f"operator_email {self.operator_email!r} is not an email address.")
        for name in ("archive_retention_days", "uploads_expire_days", "runs_to_infrequent_access_days"):
            if getattr(self, name) < 1:
                raise InfraSettingsError(f"{name} must be at least 1 day.")
        if self.runs_to_infrequent_access_days < 30:
            # S3 refuses a STANDARD_IA transition earlier than 30 days.
            raise InfraSettingsError("runs_to_infrequent_access_days must be at least 30 (an S3 rule).")

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> InfraSettings:
        """Build from CDK context (``app.node.try_get_context``); absent keys keep their default."""
        base = cls()
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.name in ("instance_type", "max_runtime_s"):
                continue
            raw = get(item.name)
            if raw is None:
                continue
            default = getattr(base, item.name)
            values[item.name] = _coerce(item.name, raw, default)
        instance_type = {s: str(get(f"{s.value}_instance") or DEFAULT_INSTANCE[s]) for s in JOB_STAGES}
        max_runtime_s = {
            s: _coerce(f"{s.value}_max_runtime_s", get(f"{s.value}_max_runtime_s") or DEFAULT_MAX_RUNTIME_S[s], 0)
            for s in JOB_STAGES
        }
        return cls(**values, instance_type=instance_type, max_runtime_s=max_runtime_s)


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
