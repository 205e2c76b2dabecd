"""Adapters against AWS: the SageMaker launcher's requests (botocore Stubber, to see each request whole),
the config, idempotency and the shared ports (moto)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from spaceport.adapters.sagemaker_jobs import SageMakerLauncher
from spaceport.config import ConfigError, PipelineConfig
from spaceport.contracts.events import JobOptions
from spaceport.contracts.stages import Stage
from spaceport.contracts.topology import SageMakerJobKey
from spaceport.handlers.stage_jobs import stage_job_spec

ROLE = "arn:aws:iam::123456789012:role/spaceport-train-job"
JOB_ENV = {
    "SPACEPORT_TRAIN_IMAGE": "train:1",
    "SPACEPORT_TRAIN_ROLE_ARN": ROLE,
    "SPACEPORT_COMPRESS_IMAGE": "compress:1",
    "SPACEPORT_COMPRESS_ROLE_ARN": ROLE,
    "SPACEPORT_SFM_IMAGE": "sfm:1",
    "SPACEPORT_SFM_ROLE_ARN": ROLE,
}


@pytest.fixture
def sagemaker():
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_training_job_uses_spot_checkpoints_time_limit_and_tags(sagemaker):
    client, stubber = sagemaker
    config = PipelineConfig.from_env({**JOB_ENV, "SPACEPORT_TRAIN_MAX_RUNTIME_S": "7200"})
    key = SageMakerJobKey("local", Stage.TRAIN, "0a1b2c3d4e5f6a7b", "r2", 3)
    spec = stage_job_spec(
        config, key, "s3://spaceport-local-sfm/0a1b2c3d4e5f6a7b/r1/", JobOptions(preset="quick", steps=900)
    )
    expected = {
        "TrainingJobName": "spaceport-local-train-0a1b2c3d4e5f6a7b-r2-a3",
        "AlgorithmSpecification": {
            "TrainingImage": "train:1",
            "TrainingInputMode": "File",
            "ContainerEntrypoint": ["spaceport", "train"],
        },
        "HyperParameters": {"preset": "quick", "steps": "900"},
        "InputDataConfig": [
            {
                "ChannelName": "sfm",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://spaceport-local-sfm/0a1b2c3d4e5f6a7b/r1/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://spaceport-local-train/0a1b2c3d4e5f6a7b/r2/"},
        "ResourceConfig": {"InstanceType": "ml.g5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 100},
        "StoppingCondition": {"MaxRuntimeInSeconds": 7200, "MaxWaitTimeInSeconds": 14400},
        "EnableManagedSpotTraining": True,
        "EnableNetworkIsolation": True,
        "CheckpointConfig": {
            "S3Uri": "s3://spaceport-local-train/0a1b2c3d4e5f6a7b/r2/outputs/",
            "LocalPath": "/opt/ml/checkpoints",
        },
        "Environment": {
            "SPACEPORT_JOB_ID": "0a1b2c3d4e5f6a7b",
            "SPACEPORT_RUN_ID": "r2",
            "SPACEPORT_JOB_NAME": "spaceport-local-train-0a1b2c3d4e5f6a7b-r2-a3",
            "SPACEPORT_PROGRESS_FILE": "checkpoints/progress.json",
        },
        "RoleArn": ROLE,
        "Tags": [
            {"Key": "spaceport:deployment", "Value": "local"},
            {"Key": "spaceport:job", "Value": "0a1b2c3d4e5f6a7b"},
            {"Key": "spaceport:stage", "Value": "train"},
            {"Key": "spaceport:run", "Value": "r2"},
        ],
    }
    stubber.add_response("create_training_job", {"TrainingJobArn": "arn:x"}, expected)
    assert SageMakerLauncher(client).start(spec) is True


def test_a_job_that_exists_already_starts_nothing(sagemaker):
    client, stubber = sagemaker
    config = PipelineConfig.from_env(JOB_ENV)
    spec = stage_job_spec(config, SageMakerJobKey("local", Stage.SFM, "abc", "r1"), "s3://u/p.zip", JobOptions())
    stubber.add_client_error(
        "create_processing_job", service_error_code="ResourceInUse", service_message="Job name must be unique"
    )
    assert SageMakerLauncher(client).start(spec) is False


def test_processing_job_and_stop_of_an_ended_job(sagemaker):
    client, stubber = sagemaker
    spec = stage_job_spec(
        PipelineConfig.from_env(JOB_ENV),
        SageMakerJobKey("local", Stage.COMPRESS, "abc", "r1"),
        "s3://spaceport-local-train/abc/r1/j/output/model.tar.gz",
        JobOptions(sh_bands=1),
    )
    stubber.add_response(
        "create_processing_job",
        {"ProcessingJobArn": "arn:x"},
        {
            "ProcessingJobName": "spaceport-local-compress-abc-r1-a1",
            "ProcessingInputs": [
                {
                    "InputName": "model",
                    "S3Input": {
                        "S3Uri": "s3://spaceport-local-train/abc/r1/j/output/model.tar.gz",
                        "LocalPath": "/opt/ml/processing/input",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                }
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": "output",
                        "S3Output": {
                            "S3Uri": "s3://spaceport-local-compressed/abc/r1/",
                            "LocalPath": "/opt/ml/processing/output",
                            "S3UploadMode": "EndOfJob",
                        },
                    },
                    {
                        "OutputName": "progress",
                        "S3Output": {
                            "S3Uri": "s3://spaceport-local-compressed/abc/r1/progress/",
                            "LocalPath": "/opt/ml/processing/progress",
                            "S3UploadMode": "Continuous",
                        },
                    },
                ]
            },
            "ProcessingResources": ANY,
            "NetworkConfig": {"EnableNetworkIsolation": True},
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
            "AppSpecification": {
                "ImageUri": "compress:1",
                "ContainerEntrypoint": ["spaceport", "compress", "--sh-bands", "1"],
            },
            "Environment": {
                "SPACEPORT_JOB_ID": "abc",
                "SPACEPORT_RUN_ID": "r1",
                "SPACEPORT_JOB_NAME": "spaceport-local-compress-abc-r1-a1",
                "SPACEPORT_PROGRESS_FILE": "processing/progress/progress.json",
            },
            "RoleArn": ROLE,
            "Tags": ANY,
        },
    )
    stubber.add_client_error(
        "stop_processing_job", service_error_code="ValidationException", service_message="The job is not in progress"
    )
    launcher = SageMakerLauncher(client)
    assert launcher.start(spec) is True
    launcher.stop(spec.name)  # already ended: nothing to do, no error


def test_config_reads_the_environment_once():
    config = PipelineConfig.from_env(
        {
            "SPACEPORT_UPLOADS_BUCKET": "u",
            "SPACEPORT_PUBLIC_BASE_URL": "https://x.example/",
            "SPACEPORT_TRAIN_SPOT": "0",
            "SPACEPORT_SFM_INSTANCE": "ml.c6i.4xlarge",
        }
    )
    assert (config.uploads_bucket, config.public_base_url, config.train_spot) == ("u", "https://x.example", False)
    assert config.stages[Stage.SFM].instance_type == "ml.c6i.4xlarge"
    assert config.layout.run_prefix(Stage.COMPRESS, "j", "r2") == "s3://spaceport-local-compressed/j/r2/"
    with pytest.raises(ConfigError):
        PipelineConfig.from_env({"SPACEPORT_TRAIN_SPOT": "maybe"})
    with pytest.raises(ConfigError):
        PipelineConfig.from_env({"SPACEPORT_MAX_ATTEMPTS": "three"})


def test_once_only_runs_an_action_once_and_a_failed_one_again(world):
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

    once = world.ports.idempotency
    calls: list[str] = []

    def action() -> str:
        calls.append("ran")
        return f"answer {len(calls)}"

    assert once.run("k1", action) == once.run("k1", action) == "answer 1"

    def broken() -> str:
        raise RuntimeError("SageMaker throttled us")

    with pytest.raises(RuntimeError):
        once.run("k2", broken)
    assert once.run("k2", action) == "answer 2"  # the failure left no record behind

    def nested() -> str:
        return once.run("k3", action)  # the same key while the first run still holds it

    with pytest.raises(IdempotencyAlreadyInProgressError):
        once.run("k3", nested)
    assert calls == ["ran", "ran"]


def test_default_ports_serve_every_thread(world):
    import threading

    from spaceport.adapters import default_ports, reset_default_ports

    mine = default_ports("gateway")
    theirs = []
    threads = [
        threading.Thread(target=lambda: theirs.append(default_ports("gateway").store.get("none"))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert theirs == [None] * 4 and default_ports("gateway") is mine
    reset_default_ports()
    assert default_ports("gateway") is not mine
