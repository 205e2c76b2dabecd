"""SageMaker's container contract: where a job finds its inputs and leaves its outputs.

Every stage job runs the same entrypoint in a SageMaker container and on a laptop. The
paths below are SageMaker's; the local job runner lays out the same tree in a temporary
folder and points ``SPACEPORT_SAGEMAKER_ROOT`` at it (default ``/opt/ml``).

Example::

    paths = ProcessingPaths.from_env()
    photos = paths.input          # /opt/ml/processing/input
    report = paths.output / "report.json"
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT_ENV = "SPACEPORT_SAGEMAKER_ROOT"


def sagemaker_root() -> Path:
    return Path(os.environ.get(ROOT_ENV, "/opt/ml"))


@dataclass(frozen=True)
class ProcessingPaths:
    """A SageMaker processing job: one input folder, one output folder."""

    root: Path

    @classmethod
    def from_env(cls) -> ProcessingPaths:
        return cls(sagemaker_root())

    @property
    def input(self) -> Path:
        return self.root / "processing" / "input"

    @property
    def output(self) -> Path:
        return self.root / "processing" / "output"

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"


@dataclass(frozen=True)
class TrainingPaths:
    """A SageMaker training job: channels, hyperparameters, model and checkpoint folders."""

    root: Path

    @classmethod
    def from_env(cls) -> TrainingPaths:
        return cls(sagemaker_root())

    def channel(self, name: str) -> Path:
        return self.root / "input" / "data" / name

    @property
    def hyperparameters_file(self) -> Path:
        return self.root / "input" / "config" / "hyperparameters.json"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"

    def hyperparameters(self) -> dict[str, Any]:
        """SageMaker passes every hyperparameter as a string; callers parse the values."""
        if not self.hyperparameters_file.exists():
            return {}
        return json.loads(self.hyperparameters_file.read_text())


def write_failure_reason(failure_file: Path, message: str) -> None:
    """Leave the plain reason where SageMaker shows it (``FailureReason``, 1 KiB max)."""
    failure_file.parent.mkdir(parents=True, exist_ok=True)
    failure_file.write_text(message[:1024])
