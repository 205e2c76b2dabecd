"""The SageMaker job launcher: a :class:`~spaceport.contracts.jobspec.StageJobSpec` becomes
``CreateProcessingJob`` (sfm, compress) or ``CreateTrainingJob`` (train).

Job names are deterministic (:class:`~spaceport.contracts.topology.SageMakerJobKey`), so a
duplicate delivery meets SageMaker's ``ResourceInUse`` and starts nothing.

Example::

    launcher = SageMakerLauncher(boto3.client("sagemaker"), role_arn=config.role_arn, image_uris={...})
    started = launcher.start(spec)          # False: a job of that name already exists
    launcher.stop(spec.name)
    launcher.describe(spec.name).status     # "InProgress" | "Completed" | ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from spaceport.contracts.jobspec import JobState, StageJobSpec
from spaceport.contracts.stages import Stage
from spaceport.contracts.topology import SageMakerJobKey, service
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode

PROCESSING_INPUT = "/opt/ml/processing/input"
PROCESSING_OUTPUT = "/opt/ml/processing/output"
CHECKPOINTS = "/opt/ml/checkpoints"
VOLUME_GB = 50


class LaunchError(SpaceportError):
    """SageMaker refused to start a job for a reason other than its already existing."""

    code = "launch_failed"
    exit_code = ExitCode.LAUNCH_FAILED


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _tags(spec: StageJobSpec) -> list[dict[str, str]]:
    tags = {
        "spaceport:job": spec.key.job_id,
        "spaceport:stage": spec.key.stage.value,
        "spaceport:run": spec.key.run_id,
        **spec.tags,
    }
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def processing_job_request(spec: StageJobSpec, role_arn: str, image_uri: str) -> dict[str, Any]:
    """The ``CreateProcessingJob`` arguments for ``spec``."""
    single = len(spec.inputs) == 1
    inputs = [
        {
            "InputName": name,
            "S3Input": {
                "S3Uri": uri,
                # One input lands in the input folder itself, as the jobs expect; several get a folder each.
                "LocalPath": PROCESSING_INPUT if single else f"{PROCESSING_INPUT}/{name}",
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
            },
        }
        for name, uri in spec.inputs.items()
    ]
    request: dict[str, Any] = {
        "ProcessingJobName": spec.name,
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "output",
                    "S3Output": {"S3Uri": spec.output_uri, "LocalPath": PROCESSING_OUTPUT, "S3UploadMode": "EndOfJob"},
                }
            ]
        },
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": spec.instance_type,
                "VolumeSizeInGB": VOLUME_GB,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": spec.max_runtime_s},
        "AppSpecification": {"ImageUri": image_uri, "ContainerEntrypoint": list(spec.command)},
        "RoleArn": role_arn,
        "Tags": _tags(spec),
    }
    if spec.environment:
        request["Environment"] = dict(spec.environment)
    return request


def training_job_request(spec: StageJobSpec, role_arn: str, image_uri: str) -> dict[str, Any]:
    """The ``CreateTrainingJob`` arguments for ``spec`` (Spot with checkpoints when asked)."""
    stopping = {"MaxRuntimeInSeconds": spec.max_runtime_s}
    request: dict[str, Any] = {
        "TrainingJobName": spec.name,
        "AlgorithmSpecification": {
            "TrainingImage": image_uri,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": list(spec.command),
        },
        "HyperParameters": dict(spec.hyperparameters),
        "InputDataConfig": [
            {
                "ChannelName": name,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for name, uri in spec.inputs.items()
        ],
        "OutputDataConfig": {"S3OutputPath": spec.output_uri},
        "ResourceConfig": {"InstanceType": spec.instance_type, "InstanceCount": 1, "VolumeSizeInGB": VOLUME_GB},
        "StoppingCondition": stopping,
        "RoleArn": role_arn,
        "Tags": _tags(spec),
    }
    if spec.use_spot:
        request["EnableManagedSpotTraining"] = True
        # Waiting for Spot capacity counts too: allow as long again as the job may run.
        stopping["MaxWaitTimeInSeconds"] = 2 * spec.max_runtime_s
    if spec.checkpoint_uri:
        request["CheckpointConfig"] = {"S3Uri": spec.checkpoint_uri, "LocalPath": CHECKPOINTS}
    if spec.environment:
        request["Environment"] = dict(spec.environment)
    return request


class SageMakerLauncher:
    """The ``JobLauncher`` for AWS. ``image_uris`` maps each stage to its container image."""

    def __init__(self, client: Any, role_arn: str, image_uris: Mapping[Stage, str]) -> None:
        self.client = client
        self.role_arn = role_arn
        self.image_uris = dict(image_uris)

    def start(self, spec: StageJobSpec) -> bool:
        image = self.image_uris.get(spec.key.stage, "")
        if not image or not self.role_arn:
            raise LaunchError(f"No container image or role is configured for the {spec.key.stage.value} stage.")
        try:
            if spec.kind == "training":
                self.client.create_training_job(**training_job_request(spec, self.role_arn, image))
            else:
                self.client.create_processing_job(**processing_job_request(spec, self.role_arn, image))
        except ClientError as error:
            if _error_code(error) in ("ResourceInUse", "ResourceInUseException"):
                return False
            raise LaunchError(f"SageMaker did not start {spec.name}: {error}") from error
        return True

    def stop(self, name: str) -> None:
        kind = self._kind(name)
        try:
            if kind == "training":
                self.client.stop_training_job(TrainingJobName=name)
            else:
                self.client.stop_processing_job(ProcessingJobName=name)
        except ClientError as error:
            # A job that already ended (or never started) cannot be stopped; that is what we wanted.
            if _error_code(error) not in ("ValidationException", "ResourceNotFound"):
                raise

    def describe(self, name: str) -> JobState:
        if self._kind(name) == "training":
            answer = self.client.describe_training_job(TrainingJobName=name)
            status = answer["TrainingJobStatus"]
        else:
            answer = self.client.describe_processing_job(ProcessingJobName=name)
            status = answer["ProcessingJobStatus"]
        return JobState(name=name, status=status, failure_reason=answer.get("FailureReason"))

    @staticmethod
    def _kind(name: str) -> str | None:
        return service(SageMakerJobKey.parse(name).stage.value).sagemaker_job
