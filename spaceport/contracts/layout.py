"""The artifact layout: what each stage's job writes, and where every artifact of a job lives.

The stage jobs write their outputs under the names below, the services read them back under
the same names, and the gateway, the local runtime and the notify service build every URI
with :class:`ArtifactLayout`. No other module spells an output's file name.

An output folder per stage (what ``spaceport sfm|train|compress OUT_DIR`` fills):

>>> SfmOutputs.REPORT, TrainOutputs.SPLAT, CompressOutputs.SCENE
('report.json', 'splat.ply', 'scene.sog')

and in S3, one prefix per (stage bucket, job, run):

>>> layout = ArtifactLayout("uploads", {Stage.SFM: "sfm", Stage.TRAIN: "train", Stage.COMPRESS: "out"})
>>> layout.run_prefix(Stage.SFM, "0a1b2c3d4e5f6a7b", "r1")
's3://sfm/0a1b2c3d4e5f6a7b/r1/'
>>> layout.report(Stage.COMPRESS, "0a1b2c3d4e5f6a7b", "r2")
's3://out/0a1b2c3d4e5f6a7b/r2/metrics.json'

A training job's own files (its checkpoint, progress, splat and metrics) are synced from its
checkpoint folder to an ``outputs/`` folder of the run, apart from SageMaker's archives:

>>> layout.output(Stage.TRAIN, "0a1b2c3d4e5f6a7b", "r1", TrainOutputs.SPLAT)
's3://train/0a1b2c3d4e5f6a7b/r1/outputs/splat.ply'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from spaceport.contracts.stages import Stage


class SfmOutputs:
    """The SfM job's output folder (COLMAP layout, undistorted to PINHOLE)."""

    REPORT: Final = "report.json"
    SPARSE: Final = "sparse/0"
    IMAGES: Final = "images"
    POINTS: Final = "points.ply"
    # The cameras and a ground grid of the points: what the train service plans blocks from.
    SCENE_SUMMARY: Final = "scene-summary.json"


class TrainOutputs:
    """The training job's output folder (``/opt/ml/model`` in SageMaker) and its checkpoints."""

    SPLAT: Final = "splat.ply"
    METRICS: Final = "metrics.json"
    CONFIG: Final = "train-config.json"
    RENDERS: Final = "renders"
    CHECKPOINTS: Final = "checkpoints"
    CHECKPOINT: Final = "checkpoint.pt"


class CompressOutputs:
    """The compression job's output folder."""

    SCENE: Final = "scene.sog"
    METRICS: Final = "metrics.json"
    # The streamed scene (levels of detail): its index; every chunk lies under the same folder.
    STREAMED: Final = "lod/lod-meta.json"
    SPZ: Final = "scene.spz"
    GLB: Final = "scene.glb"


class BlockOutputs:
    """A run trained in blocks: its plan, each block's outputs and the merge job's inputs.

    Under the run's training prefix: the plan, the merge job's manifest, and per block a folder
    (:func:`block_name`) with the block training job's synced ``outputs/`` (as a whole-scene
    training job's) and SageMaker's archives. The merge writes the run's own
    :attr:`TrainOutputs.SPLAT` and :attr:`TrainOutputs.METRICS`, so the next stage cannot tell.
    """

    PLAN: Final = "block-plan.json"
    MERGE_INPUTS: Final = "merge-inputs.json"
    FOLDER: Final = "blocks"


class TrainingArchives:
    """What SageMaker makes of a training job's folders, under ``<output>/<job name>/output/``."""

    MODEL: Final = "model.tar.gz"  # /opt/ml/model
    OUTPUT: Final = "output.tar.gz"  # /opt/ml/output/data


# What a running job last said of its progress (fraction, message, ETA), uploaded as it changes.
PROGRESS: Final = "progress.json"
# The small JSON each stage's job writes, with its figures or, on an expected failure, its error.
STAGE_REPORT: Mapping[Stage, str] = {
    Stage.SFM: SfmOutputs.REPORT,
    Stage.TRAIN: TrainOutputs.METRICS,
    Stage.COMPRESS: CompressOutputs.METRICS,
}
JOB_REPORT: Final = "job-report.json"
_TRAINING_OUTPUTS = "outputs/"
_PROCESSING_PROGRESS = "progress/"
FLIGHT_PLAN: Final = "flight-plan.csv"
# The photos ZIP a job runs on: the gateway's copy of the user's upload, made once the upload was
# checked, under a prefix that only the pipeline writes (a user's presigned POST cannot reach it).
LOCKED_PHOTOS: Final = "checked-photos.zip"
# Where a user's presigned POSTs may write: one folder per user, named by the user's id.
USER_UPLOADS: Final = "uploads"
# Where the gateway keeps what a job was submitted with (its locked photos, its flight plan).
JOB_INPUTS: Final = "jobs"
# The job record's artifact that names the flight plan it was posted with.
FLIGHT_PLAN_ARTIFACT: Final = "csv"


def block_name(index: int) -> str:
    """The name of block ``index``: its folder and the part of its SageMaker job names.

    >>> block_name(3), block_index("b3"), block_index("merge")
    ('b3', 3, None)
    """
    return f"b{index}"


def block_index(name: str) -> int | None:
    """The block a :func:`block_name` names; ``None`` for anything else."""
    if len(name) > 1 and name[0] == "b" and name[1:].isdigit():
        return int(name[1:])
    return None


def download_name(job_id: str, artifact: str) -> str:
    """The file name a user's download of ``artifact`` gets: the job id and the artifact's suffix.

    >>> download_name("0a1b", CompressOutputs.SCENE), download_name("0a1b", JOB_REPORT)
    ('0a1b.sog', '0a1b-report.json')
    """
    if artifact == JOB_REPORT:
        return f"{job_id}-report.json"
    return f"{job_id}{PurePosixPath(artifact).suffix}"


@dataclass(frozen=True)
class ArtifactLayout:
    """Every S3 URI of a deployment's artifacts, from its buckets."""

    uploads_bucket: str
    stage_buckets: Mapping[Stage, str]

    def run_prefix(self, stage: Stage, job_id: str, run_id: str) -> str:
        """``s3://<stage bucket>/<job>/<run>/``: where one run of a stage writes."""
        return f"s3://{self.stage_buckets[stage]}/{job_id}/{run_id}/"

    def outputs_prefix(self, stage: Stage, job_id: str, run_id: str) -> str:
        """Where a run's own output files land: the run prefix, or for training its synced ``outputs/``."""
        prefix = self.run_prefix(stage, job_id, run_id)
        return prefix + _TRAINING_OUTPUTS if stage is Stage.TRAIN else prefix

    def output(self, stage: Stage, job_id: str, run_id: str, name: str) -> str:
        """One named output file of a run of a stage."""
        return self.outputs_prefix(stage, job_id, run_id) + name

    def report(self, stage: Stage, job_id: str, run_id: str) -> str:
        """The stage's report (:data:`STAGE_REPORT`) for one run."""
        return self.output(stage, job_id, run_id, STAGE_REPORT[stage])

    def progress_prefix(self, stage: Stage, job_id: str, run_id: str) -> str:
        """What a job uploads while it runs: training's synced outputs, a processing job's ``progress/``."""
        if stage is Stage.TRAIN:
            return self.outputs_prefix(stage, job_id, run_id)
        return self.run_prefix(stage, job_id, run_id) + _PROCESSING_PROGRESS

    def progress(self, stage: Stage, job_id: str, run_id: str) -> str:
        """The running job's :data:`PROGRESS` file."""
        return self.progress_prefix(stage, job_id, run_id) + PROGRESS

    def training_archive(self, job_id: str, run_id: str, job_name: str, archive: str) -> str:
        """Where SageMaker leaves a training job's :class:`TrainingArchives` member."""
        return f"{self.run_prefix(Stage.TRAIN, job_id, run_id)}{job_name}/output/{archive}"

    def user_uploads(self, owner: str) -> str:
        """The folder a user's uploads go to: ``s3://<uploads>/uploads/<owner>/``."""
        return f"s3://{self.uploads_bucket}/{USER_UPLOADS}/{owner}/"

    def locked_photos(self, job_id: str, version: str) -> str:
        """The job's own copy of the photos it was checked with (``version``: the upload's ETag)."""
        return f"s3://{self.uploads_bucket}/{JOB_INPUTS}/{job_id}/{version}/{LOCKED_PHOTOS}"

    def block_plan(self, job_id: str, run_id: str) -> str:
        """The run's :attr:`BlockOutputs.PLAN`."""
        return self.run_prefix(Stage.TRAIN, job_id, run_id) + BlockOutputs.PLAN

    def block_prefix(self, job_id: str, run_id: str, index: int) -> str:
        """Where block ``index``'s training job writes (SageMaker's archives go under it)."""
        return f"{self.run_prefix(Stage.TRAIN, job_id, run_id)}{BlockOutputs.FOLDER}/{block_name(index)}/"

    def block_outputs_prefix(self, job_id: str, run_id: str, index: int) -> str:
        """Block ``index``'s own files (splat, metrics, progress, checkpoint), synced as it trains."""
        return self.block_prefix(job_id, run_id, index) + _TRAINING_OUTPUTS

    def block_output(self, job_id: str, run_id: str, index: int, name: str) -> str:
        return self.block_outputs_prefix(job_id, run_id, index) + name

    def merge_inputs(self, job_id: str, run_id: str) -> str:
        """The manifest of the files the run's merge job reads (:attr:`BlockOutputs.MERGE_INPUTS`)."""
        return self.run_prefix(Stage.TRAIN, job_id, run_id) + BlockOutputs.MERGE_INPUTS

    def flight_plan(self, job_id: str) -> str:
        """The flight-log CSV a job was submitted with, kept beside its uploads."""
        return f"s3://{self.uploads_bucket}/{JOB_INPUTS}/{job_id}/{FLIGHT_PLAN}"

    def job_report(self, job_id: str, run_id: str) -> str:
        """The whole job's report, written by the notify service beside the compressed scene."""
        return self.output(Stage.COMPRESS, job_id, run_id, JOB_REPORT)
