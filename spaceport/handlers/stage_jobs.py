"""What each stage's job is asked to do, and what it left behind.

:func:`stage_job_spec` turns a stage, a job's key and its options into the
:class:`~spaceport.contracts.jobspec.StageJobSpec` a launcher starts. :func:`collect_outputs`
reads a finished job's report from S3 and names its artifacts. Every URI comes from the
deployment's :class:`~spaceport.contracts.layout.ArtifactLayout`.

>>> from spaceport.config import PipelineConfig
>>> spec = stage_job_spec(PipelineConfig(), SageMakerJobKey("local", Stage.TRAIN, "0a1b2c3d4e5f6a7b", "r1"),
...                       input_uri="s3://spaceport-local-sfm/0a1b2c3d4e5f6a7b/r1/", options=JobOptions(preset="quick"))
>>> spec.kind, spec.hyperparameters["preset"], spec.checkpoint_uri
('training', 'quick', 's3://spaceport-local-train/0a1b2c3d4e5f6a7b/r1/outputs/')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from spaceport.config import PipelineConfig
from spaceport.container import PROGRESS_FILE_ENV, progress_path
from spaceport.contracts.deployment import MERGE_MACHINE
from spaceport.contracts.events import JobOptions
from spaceport.contracts.jobspec import (
    BLOCK_HYPERPARAMETER,
    BLOCK_PLAN_INPUT,
    FLIGHT_LOG_INPUT,
    INPUT_NAMES,
    MERGE_BLOCKS_INPUT,
    StageJobSpec,
)
from spaceport.contracts.layout import CompressOutputs, TrainOutputs, block_index
from spaceport.contracts.stages import Stage
from spaceport.contracts.topology import MERGE_PART, SageMakerJobKey
from spaceport.ports import ObjectStore
from spaceport.progress import JOB_NAME_ENV

# Headline figures copied from each job's report into the job's summary (and the email).
SUMMARY_FIELDS = {
    Stage.SFM: ("images_used", "images_registered", "points3d", "mean_reprojection_error_px", "gps_used"),
    # The training job's "psnr" is measured on the held-out photos.
    Stage.TRAIN: ("psnr", "ssim", "lpips", "initial_psnr", "num_gaussians", "steps", "wall_time_s", "preset", "device"),
    Stage.COMPRESS: ("input_bytes", "output_bytes", "ratio", "psnr", "splats_out", "sh_bands_out", "wall_time_s"),
}


def stage_job_spec(
    config: PipelineConfig,
    key: SageMakerJobKey,
    input_uri: str,
    options: JobOptions,
    flight_log_uri: str | None = None,
) -> StageJobSpec:
    """The job that runs ``key``'s stage on ``input_uri`` with ``options`` (SfM: and the job's flight log)."""
    stage = key.stage
    settings = config.stages[stage]
    output_uri = config.layout.run_prefix(stage, key.job_id, key.run_id)
    environment = {
        "SPACEPORT_JOB_ID": key.job_id,
        "SPACEPORT_RUN_ID": key.run_id,
        JOB_NAME_ENV: key.name,
        PROGRESS_FILE_ENV: progress_path(key.kind),
    }
    hyperparameters: dict[str, str] = {}
    command: tuple[str, ...] = ("spaceport", stage.value)
    checkpoint_uri = None
    # Three SH bands is the default: then the training preset and the trained splat decide.
    fewer_bands = options.sh_bands != JobOptions.model_fields["sh_bands"].default
    if stage is Stage.SFM:
        environment.update(SPACEPORT_SFM_MATCHER=options.matcher, SPACEPORT_SFM_MAPPER=options.mapper)
    elif stage is Stage.TRAIN:
        hyperparameters = {"preset": options.preset}
        if fewer_bands:
            hyperparameters["sh_degree"] = str(options.sh_bands)
        if options.steps is not None:
            hyperparameters["steps"] = str(options.steps)
        hyperparameters.update(options.hyperparameters)
        # The job's checkpoint folder also holds its progress and final outputs: SageMaker syncs it
        # to S3 as it changes, one object per file, so nothing large passes through a Lambda.
        checkpoint_uri = config.layout.outputs_prefix(stage, key.job_id, key.run_id)
    elif fewer_bands:
        command += ("--sh-bands", str(options.sh_bands))
    inputs = {INPUT_NAMES[stage]: input_uri}
    if stage is Stage.SFM and flight_log_uri:
        inputs[FLIGHT_LOG_INPUT] = flight_log_uri
    return StageJobSpec(
        key=key,
        command=command,
        inputs=inputs,
        output_uri=output_uri,
        instance_type=settings.instance_type,
        volume_gb=settings.volume_gb,
        max_runtime_s=settings.max_runtime_s,
        role_arn=settings.role_arn,
        image_uri=settings.image_uri,
        environment=environment,
        hyperparameters=hyperparameters,
        checkpoint_uri=checkpoint_uri,
        use_spot=stage is Stage.TRAIN and config.train_spot,
        progress_uri=config.layout.progress_prefix(stage, key.job_id, key.run_id) if key.kind == "processing" else None,
    )


def block_job_spec(
    config: PipelineConfig, key: SageMakerJobKey, sfm_uri: str, plan_uri: str, options: JobOptions
) -> StageJobSpec:
    """The training job of one block (``key.part``) of a run trained in blocks.

    It is the run's training job with the plan as a second channel and its block named in the
    hyperparameters; it writes under the block's own prefix.
    """
    index = block_index(key.part)
    if key.stage is not Stage.TRAIN or index is None:
        raise ValueError(f"{key.name} is not a block's training job")
    whole = stage_job_spec(config, key, sfm_uri, options)
    layout = config.layout
    return replace(
        whole,
        inputs={**whole.inputs, BLOCK_PLAN_INPUT: plan_uri},
        hyperparameters={**whole.hyperparameters, BLOCK_HYPERPARAMETER: str(index)},
        output_uri=layout.block_prefix(key.job_id, key.run_id, index),
        checkpoint_uri=layout.block_outputs_prefix(key.job_id, key.run_id, index),
    )


def merge_job_spec(config: PipelineConfig, key: SageMakerJobKey, plan_uri: str, manifest_uri: str) -> StageJobSpec:
    """The processing job that merges a run's blocks into the run's own splat and metrics."""
    if key.stage is not Stage.TRAIN or key.part != MERGE_PART:
        raise ValueError(f"{key.name} is not a merge job")
    settings = config.stages[Stage.TRAIN]
    outputs = config.layout.outputs_prefix(Stage.TRAIN, key.job_id, key.run_id)
    return StageJobSpec(
        key=key,
        command=("spaceport", "merge"),
        inputs={BLOCK_PLAN_INPUT: plan_uri, MERGE_BLOCKS_INPUT: manifest_uri},
        manifests=frozenset({MERGE_BLOCKS_INPUT}),
        output_uri=outputs,
        instance_type=MERGE_MACHINE.instance_type,
        volume_gb=MERGE_MACHINE.volume_gb,
        max_runtime_s=MERGE_MACHINE.max_runtime_s,
        role_arn=settings.role_arn,
        image_uri=settings.image_uri,
        environment={
            "SPACEPORT_JOB_ID": key.job_id,
            "SPACEPORT_RUN_ID": key.run_id,
            JOB_NAME_ENV: key.name,
            PROGRESS_FILE_ENV: progress_path(key.kind),
        },
        progress_uri=outputs,
    )


def merge_manifest(config: PipelineConfig, job_id: str, sources: Mapping[int, str]) -> list[Any]:
    """SageMaker's manifest of every block's splat and metrics; ``sources``: block -> the run that trained it.

    A manifest is one common prefix, then keys under it; the merge job finds each block in its
    folder (:func:`~spaceport.contracts.layout.block_name`) below the run.
    """
    layout = config.layout
    files = [
        layout.block_output(job_id, run_id, index, name)
        for index, run_id in sorted(sources.items())
        for name in (TrainOutputs.SPLAT, TrainOutputs.METRICS)
    ]
    prefix = f"s3://{config.stage_bucket(Stage.TRAIN)}/{job_id}/"
    if not all(uri.startswith(prefix) for uri in files):
        raise ValueError(f"the blocks of job {job_id} lie outside {prefix}")
    return [{"prefix": prefix}, *(uri[len(prefix) :] for uri in files)]


def read_block_report(
    config: PipelineConfig, objects: ObjectStore, job_id: str, run_id: str, index: int
) -> dict[str, Any] | None:
    """The metrics (or the error) a block's training job left."""
    return objects.read_json(config.layout.block_output(job_id, run_id, index, TrainOutputs.METRICS))


@dataclass(frozen=True)
class StageOutputs:
    """What a finished job left: the next stage's input (for training, the plain splat
    when the model archive held one), named artifacts, headline figures.

    ``report`` is the job's whole report (``None`` when it wrote none); an expected failure
    leaves its ``error`` there.
    """

    output_uri: str
    artifacts: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] | None = None


# The compression job's other formats of the scene: artifact name -> file name.
EXPORTS: Mapping[str, str] = {"spz": CompressOutputs.SPZ, "glb": CompressOutputs.GLB}

# What the job page, the viewer and the email need of SfM's georeference (the camera centres,
# one per photo, stay in the report: a summary travels in events, which are at most 256 KB).
GEOREFERENCE_FIELDS = ("used", "reason", "frame", "origin", "horizontal_rms_m", "vertical_rms_m", "max_error_m")


def _summary(stage: Stage, report: dict[str, Any] | None) -> dict[str, Any]:
    if not report:
        return {}
    figures: dict[str, Any] = {
        name: report[name] for name in SUMMARY_FIELDS[stage] if isinstance(report.get(name), (int, float, str, bool))
    }
    georeference = report.get("georeference")
    if stage is Stage.SFM and isinstance(georeference, dict):
        figures["georeference"] = {name: georeference[name] for name in GEOREFERENCE_FIELDS if name in georeference}
    return {f"{stage.value}_{name}": value for name, value in figures.items()}


def flight_path(report: Mapping[str, Any] | None, at_most: int = 1000) -> list[list[float]]:
    """The placed photos' centres (ENU metres, in name order) from SfM's report, every k-th past ``at_most``.

    >>> centres = [{"name": f"{i}.jpg", "enu": [i, 2 * i, 50.0]} for i in range(5)]
    >>> flight_path({"georeference": {"camera_centres": centres}}, at_most=3)
    [[0, 0, 50.0], [2, 4, 50.0], [4, 8, 50.0]]
    """
    georeference = (report or {}).get("georeference")
    centres = georeference.get("camera_centres") if isinstance(georeference, dict) else None
    if not isinstance(centres, list):
        return []
    points = [c["enu"] for c in centres if isinstance(c, dict) and isinstance(c.get("enu"), list)]
    step = max(1, -(-len(points) // at_most))
    return points[::step]


def read_stage_report(config: PipelineConfig, objects: ObjectStore, key: SageMakerJobKey) -> dict[str, Any] | None:
    """The report ``key``'s job wrote, with its figures or, after an expected failure, its error."""
    return objects.read_json(config.layout.report(key.stage, key.job_id, key.run_id))


def collect_outputs(config: PipelineConfig, objects: ObjectStore, key: SageMakerJobKey) -> StageOutputs:
    """Name what ``key``'s job wrote and read its report (the small JSON; never a large output)."""
    stage, layout = key.stage, config.layout
    prefix = layout.run_prefix(stage, key.job_id, key.run_id)
    report = read_stage_report(config, objects, key)
    summary = _summary(stage, report)
    reported = layout.report(stage, key.job_id, key.run_id)
    if stage is Stage.SFM:
        return StageOutputs(prefix, {"sfm": prefix, "sfm_report": reported}, summary, report)
    if stage is Stage.TRAIN:
        splat = layout.output(stage, key.job_id, key.run_id, TrainOutputs.SPLAT)
        artifacts = {"train": layout.outputs_prefix(stage, key.job_id, key.run_id), "train_metrics": reported}
        head = objects.head(splat)
        if head is not None:
            artifacts["ply"] = splat
            summary["train_ply_bytes"] = head.size
        return StageOutputs(splat, artifacts, summary, report)
    scene = layout.output(stage, key.job_id, key.run_id, CompressOutputs.SCENE)
    artifacts = {"compress": prefix, "sog": scene, "compress_metrics": reported}
    head = objects.head(scene)
    if head is not None:
        summary["compress_sog_bytes"] = head.size
    for name, file_name in EXPORTS.items():
        export = layout.output(stage, key.job_id, key.run_id, file_name)
        if objects.head(export) is not None:
            artifacts[name] = export
    return StageOutputs(prefix, artifacts, summary, report)


def stage_input(stage: Stage, input_uri: str, artifacts: Mapping[str, str]) -> str:
    """A stage's input for a job: the photos for sfm, else the previous stage's artifact."""
    if stage is Stage.SFM:
        return input_uri
    if stage is Stage.TRAIN:
        return artifacts.get("sfm", input_uri)
    # Compression reads the plain splat the train service took out of the model archive, else the archive.
    return artifacts.get("ply") or artifacts.get("train", input_uri)
