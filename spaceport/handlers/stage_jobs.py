"""What each stage's job is asked to do, and what it left behind.

:func:`stage_job_spec` turns a stage, a job's key and its options into the
:class:`~spaceport.contracts.jobspec.StageJobSpec` any runner launches. :func:`collect_outputs`
reads a finished job's report or metrics from S3 and names its artifacts.

Example::

    spec = stage_job_spec(config, SageMakerJobKey(Stage.TRAIN, "0a1b2c3d4e5f6a7b", "r1"),
                          input_uri="s3://spaceport-sfm/0a1b2c3d4e5f6a7b/r1/", options=JobOptions(preset="quick"))
    spec.kind, spec.hyperparameters["preset"]     # ("training", "quick")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spaceport.adapters.ports import ObjectStore
from spaceport.config import PipelineConfig
from spaceport.contracts.events import JobOptions
from spaceport.contracts.jobspec import StageJobSpec
from spaceport.contracts.stages import Stage
from spaceport.contracts.topology import SageMakerJobKey, service

# The input name (processing) or channel (training) each stage's job reads.
INPUT_NAMES = {Stage.SFM: "photos", Stage.TRAIN: "sfm", Stage.COMPRESS: "model"}

# Headline figures copied from each job's report into the job's summary (and the email).
SUMMARY_FIELDS = {
    Stage.SFM: ("images_used", "images_registered", "points3d", "mean_reprojection_error_px", "gps_used"),
    # The training job's "psnr" is measured on the held-out photos.
    Stage.TRAIN: ("psnr", "ssim", "lpips", "initial_psnr", "num_gaussians", "steps", "wall_time_s", "preset", "device"),
    Stage.COMPRESS: ("input_bytes", "output_bytes", "ratio", "psnr", "splats_out", "sh_bands_out", "wall_time_s"),
}


def stage_job_spec(config: PipelineConfig, key: SageMakerJobKey, input_uri: str, options: JobOptions) -> StageJobSpec:
    """The job that runs ``key``'s stage on ``input_uri`` with ``options``."""
    stage = key.stage
    settings = config.stages[stage]
    output_uri = config.stage_output_uri(stage, key.job_id, key.run_id)
    environment = {"SPACEPORT_JOB_ID": key.job_id, "SPACEPORT_RUN_ID": key.run_id}
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
        # One checkpoint folder per run: a Spot interruption or a retried attempt resumes from it.
        checkpoint_uri = f"{output_uri}checkpoints/"
    elif fewer_bands:
        command += ("--sh-bands", str(options.sh_bands))
    return StageJobSpec(
        key=key,
        kind=service(stage.value).sagemaker_job,  # type: ignore[arg-type]
        command=command,
        inputs={INPUT_NAMES[stage]: input_uri},
        output_uri=output_uri,
        environment=environment,
        hyperparameters=hyperparameters,
        checkpoint_uri=checkpoint_uri,
        instance_type=settings.instance_type,
        max_runtime_s=settings.max_runtime_s,
        use_spot=stage is Stage.TRAIN and config.train_spot,
        tags={"spaceport:job": key.job_id, "spaceport:stage": stage.value, "spaceport:run": key.run_id},
    )


@dataclass(frozen=True)
class StageOutputs:
    """What a finished job left: the next stage's input (for training, the plain ``splat.ply``
    when the model archive held one), named artifacts, headline figures.

    ``report`` is the job's whole report/metrics (``None`` when it wrote none); an expected
    failure leaves its ``error`` there.
    """

    output_uri: str
    artifacts: dict[str, str] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] | None = None


def _summary(stage: Stage, report: dict[str, Any] | None) -> dict[str, Any]:
    if not report:
        return {}
    figures = {
        name: report[name] for name in SUMMARY_FIELDS[stage] if isinstance(report.get(name), (int, float, str, bool))
    }
    return {f"{stage.value}_{name}": value for name, value in figures.items()}


def training_model_uri(output_uri: str, job_name: str) -> str:
    """Where SageMaker leaves a training job's ``/opt/ml/model``."""
    return f"{output_uri}{job_name}/output/model.tar.gz"


def collect_outputs(config: PipelineConfig, objects: ObjectStore, key: SageMakerJobKey) -> StageOutputs:
    """Read what ``key``'s job wrote (its report; for training, the splat out of the model archive)."""
    stage = key.stage
    prefix = config.stage_output_uri(stage, key.job_id, key.run_id)
    if stage is Stage.SFM:
        report = objects.read_json(prefix + "report.json")
        artifacts = {"sfm": prefix, "sfm_report": prefix + "report.json"}
        return StageOutputs(prefix, artifacts, _summary(stage, report), report)
    if stage is Stage.TRAIN:
        model = training_model_uri(prefix, key.name)
        small = f"{prefix}{key.name}/output/output.tar.gz"
        report = objects.read_json_from_tar(small, "metrics.json")
        # The user downloads the plain .ply; the archive also holds metrics.json when output.tar.gz does not.
        wanted = {"splat.ply": prefix + "splat.ply"}
        if report is None:
            wanted["metrics.json"] = prefix + "metrics.json"
        found = objects.extract_from_tar(model, wanted)
        if report is None and "metrics.json" in found:
            report = objects.read_json(found["metrics.json"])
        artifacts = {"train": model}
        summary = _summary(stage, report)
        if "splat.ply" in found:
            artifacts["ply"] = found["splat.ply"]
            head = objects.head(found["splat.ply"])
            if head is not None:
                summary["train_ply_bytes"] = head.size
        return StageOutputs(artifacts.get("ply", model), artifacts, summary, report)
    report = objects.read_json(prefix + "metrics.json")
    artifacts = {"compress": prefix, "sog": prefix + "scene.sog", "compress_metrics": prefix + "metrics.json"}
    head = objects.head(prefix + "scene.sog")
    summary = _summary(stage, report)
    if head is not None:
        summary["compress_sog_bytes"] = head.size
    return StageOutputs(prefix, artifacts, summary, report)


def stage_input(stage: Stage, input_uri: str, artifacts: dict[str, str]) -> str:
    """A stage's input for a job: the photos for sfm, else the previous stage's artifact."""
    if stage is Stage.SFM:
        return input_uri
    if stage is Stage.TRAIN:
        return artifacts.get("sfm", input_uri)
    # Compression reads the plain splat the train service took out of the model archive, else the archive.
    return artifacts.get("ply") or artifacts.get("train", input_uri)
