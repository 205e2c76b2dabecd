"""SageMaker's container contract: where a job finds its inputs and leaves its outputs.

Every stage job runs the same entrypoint in a SageMaker container and on a laptop. The
paths below are SageMaker's; the local runtime lays out the same tree in a temporary folder
and points :data:`ROOT_ENV` at it (default ``/opt/ml``).

>>> paths = ProcessingPaths(Path("/opt/ml"))
>>> str(paths.input), str(paths.output), PROCESSING_INPUT
('/opt/ml/processing/input', '/opt/ml/processing/output', '/opt/ml/processing/input')
>>> str(TrainingPaths(Path("/opt/ml")).channel("sfm"))
'/opt/ml/input/data/sfm'
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spaceport.contracts.layout import PROGRESS

ROOT_ENV = "SPACEPORT_SAGEMAKER_ROOT"
# Where a job keeps its progress file, relative to the SageMaker root: set by the launcher to a
# folder SageMaker uploads while the job runs (see :func:`progress_path`).
PROGRESS_FILE_ENV = "SPACEPORT_PROGRESS_FILE"
SAGEMAKER_ROOT = Path("/opt/ml")
# SageMaker shows the first 1 KiB of the failure file as the job's FailureReason.
FAILURE_REASON_LIMIT = 1024


def sagemaker_root() -> Path:
    return Path(os.environ.get(ROOT_ENV, str(SAGEMAKER_ROOT)))


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
    def progress(self) -> Path:
        """Uploaded while the job runs (``Continuous``); the outputs only when it ends."""
        return self.root / "processing" / "progress"

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"


@dataclass(frozen=True)
class TrainingPaths:
    """A SageMaker training job: channels, hyperparameters, model, output data and checkpoint folders."""

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
    def output_data(self) -> Path:
        return self.root / "output" / "data"

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
        value = json.loads(self.hyperparameters_file.read_text())
        return value if isinstance(value, dict) else {}


PROCESSING_INPUT = str(ProcessingPaths(SAGEMAKER_ROOT).input)
PROCESSING_OUTPUT = str(ProcessingPaths(SAGEMAKER_ROOT).output)
PROCESSING_PROGRESS = str(ProcessingPaths(SAGEMAKER_ROOT).progress)
CHECKPOINTS = str(TrainingPaths(SAGEMAKER_ROOT).checkpoints)


def progress_path(kind: str) -> str:
    """The progress file of a ``processing`` or ``training`` job, relative to the SageMaker root.

    >>> progress_path("processing") == f"processing/progress/{PROGRESS}", progress_path("training").split("/")[0]
    (True, 'checkpoints')
    """
    root = Path("/")
    folder = ProcessingPaths(root).progress if kind == "processing" else TrainingPaths(root).checkpoints
    return (folder / PROGRESS).relative_to(root).as_posix()


def progress_file() -> Path | None:
    """This job's progress file, when its launcher asked for one."""
    relative = os.environ.get(PROGRESS_FILE_ENV)
    return sagemaker_root() / relative if relative else None


def write_failure_reason(failure_file: Path, message: str) -> None:
    """Leave the plain reason where SageMaker shows it (``FailureReason``)."""
    failure_file.parent.mkdir(parents=True, exist_ok=True)
    failure_file.write_text(message[:FAILURE_REASON_LIMIT])
