"""What a stage service asks the job runner for, whichever runner it is.

A :class:`StageJobSpec` is the whole request: the container command, where the inputs are,
where the outputs go. The SageMaker adapter turns it into ``CreateProcessingJob`` /
``CreateTrainingJob``; the local job runner runs the same command in a subprocess under a
SageMaker-shaped folder. Both then emit SageMaker's state-change event.

Where outputs land follows SageMaker:

* processing jobs: the files of ``/opt/ml/processing/output`` under ``output_uri``;
* training jobs: ``{output_uri}/{job name}/output/model.tar.gz`` (``/opt/ml/model``) and
  ``{output_uri}/{job name}/output/output.tar.gz`` (``/opt/ml/output/data``; small files
  such as ``metrics.json`` that a Lambda can read without fetching the model).

Example::

    spec = StageJobSpec(
        key=SageMakerJobKey(Stage.SFM, "0a1b2c3d4e5f6a7b", "r1"),
        kind="processing",
        command=("spaceport", "sfm"),
        inputs={"photos": "s3://spaceport-uploads/u/photos.zip"},
        output_uri="s3://spaceport-sfm/0a1b2c3d4e5f6a7b/r1/",
    )
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from spaceport.contracts.topology import SageMakerJobKey, SageMakerJobKind


@dataclass(frozen=True)
class StageJobSpec:
    key: SageMakerJobKey
    kind: SageMakerJobKind
    # The container's entrypoint and arguments, e.g. ("spaceport", "sfm").
    command: tuple[str, ...]
    # Processing: input name -> S3 URI, downloaded into /opt/ml/processing/input/ (objects keep
    # their file name). Training: channel name -> S3 prefix, into /opt/ml/input/data/<channel>/.
    inputs: dict[str, str]
    output_uri: str
    environment: dict[str, str] = field(default_factory=dict)
    # Training only; SageMaker hands every value to the job as a string.
    hyperparameters: dict[str, str] = field(default_factory=dict)
    checkpoint_uri: str | None = None
    instance_type: str = "ml.c6i.2xlarge"
    max_runtime_s: int = 4 * 3600
    use_spot: bool = False
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.key.name


@dataclass(frozen=True)
class JobState:
    """What a runner knows of a launched job."""

    name: str
    status: str  # SageMaker's: InProgress | Completed | Failed | Stopping | Stopped
    failure_reason: str | None = None


class JobLauncher(Protocol):
    """The port a stage service launches its job through (SageMaker, or the local runner)."""

    def start(self, spec: StageJobSpec) -> bool:
        """Start the job; ``False`` when a job of that name already exists (nothing started)."""

    def stop(self, name: str) -> None:
        """Ask a running job to stop; a job that already ended is left as it is."""

    def describe(self, name: str) -> JobState:
        """The job's current state."""
