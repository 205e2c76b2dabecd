"""SageMaker jobs: a :class:`~spaceport.contracts.jobspec.StageJobSpec` becomes ``CreateProcessingJob``
(sfm, compress) or ``CreateTrainingJob`` (train).

Job names are deterministic (:class:`~spaceport.contracts.topology.SageMakerJobKey`), so a
duplicate delivery meets SageMaker's ``ResourceInUse`` and starts nothing.

>>> from spaceport.contracts.stages import Stage
>>> spec = StageJobSpec(
...     key=SageMakerJobKey("local", Stage.TRAIN, "0a1b2c3d4e5f6a7b", "r1"), command=("spaceport", "train"),
...     inputs={"sfm": "s3://sfm/0a1b2c3d4e5f6a7b/r1/"}, output_uri="s3://train/0a1b2c3d4e5f6a7b/r1/",
...     instance_type="ml.g5.2xlarge", volume_gb=100, max_runtime_s=3600, role_arn="arn:aws:iam::1:role/r",
...     image_uri="1.dkr.ecr.us-east-1.amazonaws.com/spaceport-train:abc", use_spot=True,
... )
>>> request = training_job_request(spec)
>>> request["StoppingCondition"], request["ResourceConfig"]["VolumeSizeInGB"]
({'MaxRuntimeInSeconds': 3600, 'MaxWaitTimeInSeconds': 7200}, 100)
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from spaceport.adapters.aws_errors import error_code
from spaceport.container import CHECKPOINTS, PROCESSING_INPUT, PROCESSING_OUTPUT, PROCESSING_PROGRESS
from spaceport.contracts.jobspec import StageJobSpec
from spaceport.contracts.topology import SageMakerJobKey
from spaceport.ports import JobState, LaunchError

__all__ = ["LaunchError", "SageMakerLauncher", "processing_job_request", "refusal_reason", "training_job_request"]


# SageMaker's codes for a refusal that the same request may not meet again.
RETRYABLE_CODES = frozenset({"ThrottlingException", "Throttling", "InternalFailure", "ServiceUnavailable"})


def _tags(spec: StageJobSpec) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in spec.tags.items()]


def processing_job_request(spec: StageJobSpec) -> dict[str, Any]:
    """The ``CreateProcessingJob`` arguments for ``spec``."""
    single = len(spec.inputs) == 1
    inputs = [
        {
            "InputName": name,
            "S3Input": {
                "S3Uri": uri,
                # One input lands in the input folder itself, as the jobs expect; several get a folder each.
                "LocalPath": PROCESSING_INPUT if single else f"{PROCESSING_INPUT}/{name}",
                "S3DataType": "ManifestFile" if name in spec.manifests else "S3Prefix",
                "S3InputMode": "File",
            },
        }
        for name, uri in spec.inputs.items()
    ]
    # The outputs go up once the job ends (a job may build them in place); only the progress
    # folder goes up while it runs.
    outputs = [
        {
            "OutputName": "output",
            "S3Output": {"S3Uri": spec.output_uri, "LocalPath": PROCESSING_OUTPUT, "S3UploadMode": "EndOfJob"},
        }
    ]
    if spec.progress_uri:
        outputs.append(
            {
                "OutputName": "progress",
                "S3Output": {
                    "S3Uri": spec.progress_uri,
                    "LocalPath": PROCESSING_PROGRESS,
                    "S3UploadMode": "Continuous",
                },
            }
        )
    request: dict[str, Any] = {
        "ProcessingJobName": spec.name,
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {"Outputs": outputs},
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": 1,
                "InstanceType": spec.instance_type,
                "VolumeSizeInGB": spec.volume_gb,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": spec.max_runtime_s},
        "AppSpecification": {"ImageUri": spec.image_uri, "ContainerEntrypoint": list(spec.command)},
        # No job calls AWS (SageMaker moves its data), and SfM parses untrusted images: no network.
        "NetworkConfig": {"EnableNetworkIsolation": True},
        "RoleArn": spec.role_arn,
        "Tags": _tags(spec),
    }
    if spec.environment:
        request["Environment"] = dict(spec.environment)
    return request


def training_job_request(spec: StageJobSpec) -> dict[str, Any]:
    """The ``CreateTrainingJob`` arguments for ``spec`` (Spot with checkpoints when asked)."""
    stopping = {"MaxRuntimeInSeconds": spec.max_runtime_s}
    request: dict[str, Any] = {
        "TrainingJobName": spec.name,
        # The job calls no AWS API: SageMaker moves its channels, model and checkpoints.
        "EnableNetworkIsolation": True,
        "AlgorithmSpecification": {
            "TrainingImage": spec.image_uri,
            "TrainingInputMode": "File",
            "ContainerEntrypoint": list(spec.command),
        },
        "HyperParameters": dict(spec.hyperparameters),
        "InputDataConfig": [
            {
                "ChannelName": name,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "ManifestFile" if name in spec.manifests else "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for name, uri in spec.inputs.items()
        ],
        "OutputDataConfig": {"S3OutputPath": spec.output_uri},
        "ResourceConfig": {"InstanceType": spec.instance_type, "InstanceCount": 1, "VolumeSizeInGB": spec.volume_gb},
        "StoppingCondition": stopping,
        "RoleArn": spec.role_arn,
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


def refusal_reason(spec: StageJobSpec, code: str, detail: str) -> str:
    """SageMaker's refusal of ``spec`` in words a user (and the operator) can act on."""
    stage, kind = spec.key.stage.value, spec.kind
    if code == "ResourceLimitExceeded":
        return (
            f"SageMaker would not start the {stage} job: this AWS account's quota of {spec.instance_type} "
            f"{kind} jobs is used up (a new account's GPU quota is 0). Ask AWS for a higher quota "
            "(Service Quotas, Amazon SageMaker), then reprocess the job."
        )
    if code in ("AccessDenied", "AccessDeniedException"):
        return f"SageMaker refused the {stage} job: the pipeline is not allowed to start it ({detail})."
    if code == "ValidationException":
        return f"SageMaker refused the {stage} job's settings: {detail}"
    return f"SageMaker did not start the {stage} job ({code}: {detail})."


class SageMakerLauncher:
    """The ``JobLauncher`` adapter. ``client`` is a boto3 SageMaker client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def start(self, spec: StageJobSpec) -> bool:
        if not spec.image_uri or not spec.role_arn:
            raise LaunchError(f"No container image or role is configured for the {spec.key.stage.value} stage.")
        try:
            if spec.kind == "training":
                self.client.create_training_job(**training_job_request(spec))
            else:
                self.client.create_processing_job(**processing_job_request(spec))
        except ClientError as error:
            code = error_code(error)
            if code in ("ResourceInUse", "ResourceInUseException"):
                return False
            detail = str(error.response.get("Error", {}).get("Message", "")) or str(error)
            raise LaunchError(
                refusal_reason(spec, code, detail), aws_code=code, retryable=code in RETRYABLE_CODES
            ) from error
        return True

    def stop(self, name: str) -> None:
        try:
            if SageMakerJobKey.parse(name).kind == "training":
                self.client.stop_training_job(TrainingJobName=name)
            else:
                self.client.stop_processing_job(ProcessingJobName=name)
        except ClientError as error:
            # A job that already ended (or never started) cannot be stopped; that is what we wanted.
            if error_code(error) not in ("ValidationException", "ResourceNotFound"):
                raise

    def describe(self, name: str) -> JobState:
        if SageMakerJobKey.parse(name).kind == "training":
            answer = self.client.describe_training_job(TrainingJobName=name)
            status = answer["TrainingJobStatus"]
        else:
            answer = self.client.describe_processing_job(ProcessingJobName=name)
            status = answer["ProcessingJobStatus"]
        return JobState(name=name, status=str(status), failure_reason=answer.get("FailureReason"))
