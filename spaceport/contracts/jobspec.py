"""What a stage service asks SageMaker for: the whole request for one job, whoever runs it.

A :class:`StageJobSpec` is the container command, where the inputs are, where the outputs go
and the machine it runs on. The SageMaker adapter turns it into ``CreateProcessingJob`` /
``CreateTrainingJob``; the local runtime's stand-in for SageMaker runs what that request
describes. Where outputs land follows SageMaker:

* processing jobs: the files of ``/opt/ml/processing/output`` under ``output_uri`` when the job
  ends, and those of ``/opt/ml/processing/progress`` under ``progress_uri`` while it runs;
* training jobs: the :class:`~spaceport.contracts.layout.TrainingArchives` under
  ``{output_uri}{job name}/output/`` (see :meth:`~spaceport.contracts.layout.ArtifactLayout.training_archive`).

>>> spec = StageJobSpec(
...     key=SageMakerJobKey("local", Stage.SFM, "0a1b2c3d4e5f6a7b", "r1"),
...     command=("spaceport", "sfm"),
...     inputs={"photos": "s3://spaceport-local-uploads/u/photos.zip"},
...     output_uri="s3://spaceport-local-sfm/0a1b2c3d4e5f6a7b/r1/",
...     instance_type="ml.c6i.2xlarge", volume_gb=50, max_runtime_s=3600,
... )
>>> spec.name, spec.kind, spec.tags["spaceport:stage"]
('spaceport-local-sfm-0a1b2c3d4e5f6a7b-r1-a1', 'processing', 'sfm')
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spaceport.contracts.stages import Stage
from spaceport.contracts.topology import SageMakerJobKey, SageMakerJobKind

__all__ = [
    "BLOCK_HYPERPARAMETER",
    "BLOCK_PLAN_INPUT",
    "FLIGHT_LOG_INPUT",
    "INPUT_NAMES",
    "MERGE_BLOCKS_INPUT",
    "SageMakerJobKey",
    "Stage",
    "StageJobSpec",
]

# The input (processing) or channel (training) each stage's job reads its main input from.
INPUT_NAMES = {Stage.SFM: "photos", Stage.TRAIN: "sfm", Stage.COMPRESS: "model"}
# The SfM job's second input, when the job was posted with a flight log.
FLIGHT_LOG_INPUT = "flight_log"
# A block's training job: the plan's channel, and the hyperparameter naming its block.
BLOCK_PLAN_INPUT = "plan"
BLOCK_HYPERPARAMETER = "block"
# The merge job's inputs: the plan, and a manifest of every block's splat and metrics.
MERGE_BLOCKS_INPUT = "blocks"


@dataclass(frozen=True)
class StageJobSpec:
    key: SageMakerJobKey
    # The container's entrypoint and arguments, e.g. ("spaceport", "sfm").
    command: tuple[str, ...]
    # Processing: input name -> S3 URI, downloaded into /opt/ml/processing/input/ (objects keep
    # their file name). Training: channel name -> S3 prefix, into /opt/ml/input/data/<channel>/.
    inputs: dict[str, str]
    output_uri: str
    instance_type: str
    volume_gb: int
    max_runtime_s: int
    role_arn: str = ""
    image_uri: str = ""
    environment: dict[str, str] = field(default_factory=dict)
    # Training only; SageMaker hands every value to the job as a string.
    hyperparameters: dict[str, str] = field(default_factory=dict)
    checkpoint_uri: str | None = None
    use_spot: bool = False
    # Processing only: where the progress folder is uploaded while the job runs.
    progress_uri: str | None = None
    # The inputs whose URI is a SageMaker manifest file (a list of objects) rather than a prefix.
    manifests: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return self.key.name

    @property
    def kind(self) -> SageMakerJobKind:
        return self.key.kind

    @property
    def tags(self) -> dict[str, str]:
        return self.key.tags()
