"""The local runtime's own parts, on a moto server: its SageMaker, the gateway server, the replay window.

Fast (seconds): the jobs here are small Python commands, launched through the same SageMaker
adapter the stage services use and run as the stage jobs are, in a subprocess under
SageMaker's layout.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from spaceport.adapters.sagemaker_jobs import SageMakerLauncher
from spaceport.container import PROGRESS_FILE_ENV, progress_path
from spaceport.contracts.jobspec import StageJobSpec
from spaceport.contracts.stages import Stage
from spaceport.contracts.topology import SageMakerJobKey
from spaceport.local.provision import publish_local_image
from spaceport.local.runner import LocalJobRunner
from spaceport.ports import LaunchError

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/test:1"
# A stand-in job: reports progress, writes an output (and a model for training), then ends as asked.
JOB = """
import os, pathlib, sys, time
from spaceport.progress import ProgressReporter
from spaceport.container import write_failure_reason
root = pathlib.Path(os.environ["SPACEPORT_SAGEMAKER_ROOT"])
inputs = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
ProgressReporter("sfm").update(0.5, "half way")
out = root / ("model" if (root / "input" / "data").exists() else "processing/output")
(out / "sub").mkdir(parents=True, exist_ok=True)
(out / "report.json").write_text(repr(inputs))
(out / "sub" / "extra.txt").write_text("x")
mode = sys.argv[1]
if mode == "fail":
    write_failure_reason(root / "output" / "failure", "Only 2 photos could be placed.")
    sys.exit(12)
if mode == "slow":
    time.sleep(60)
if mode == "calls-aws":
    import boto3
    boto3.client("s3", region_name="us-east-1").list_buckets()
"""


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    from spaceport.local.aws import LocalAws

    runner = LocalJobRunner(tmp_path_factory.mktemp("jobs"), stop_grace_s=5)
    with LocalAws(runner=runner) as local:
        s3, sqs, events = boto3.client("s3"), boto3.client("sqs"), boto3.client("events")
        for bucket in ("in-bucket", "out-bucket"):
            s3.create_bucket(Bucket=bucket)
        publish_local_image("test", "1")
        s3.put_object(Bucket="in-bucket", Key="u/photos.zip", Body=b"PK\x03\x04")
        url = sqs.create_queue(QueueName="state-changes")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="sagemaker", EventPattern=json.dumps({"source": ["aws.sagemaker"]}))
        events.put_targets(Rule="sagemaker", Targets=[{"Id": "q", "Arn": arn}])
        local.state_changes = url
        yield local


def _state_changes(aws) -> list[dict]:
    sqs = boto3.client("sqs")
    found = []
    while messages := sqs.receive_message(QueueUrl=aws.state_changes, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=aws.state_changes, ReceiptHandle=message["ReceiptHandle"])
    return found


def _spec(stage: Stage, mode: str, attempt: int = 1, **changes) -> StageJobSpec:
    key = SageMakerJobKey("local", stage, "job1", "r1", attempt)
    inputs = {"photos": "s3://in-bucket/u/photos.zip"} if key.kind == "processing" else {"sfm": "s3://in-bucket/u/"}
    fields = dict(
        key=key,
        command=(Path(sys.executable).name, "-c", JOB, mode),
        inputs=inputs,
        output_uri=f"s3://out-bucket/job1/r1/{stage.value}/",
        instance_type="ml.c6i.2xlarge",
        volume_gb=10,
        max_runtime_s=600,
        role_arn="arn:aws:iam::123456789012:role/test-job",
        image_uri=IMAGE,
        hyperparameters={"steps": "5"} if key.kind == "training" else {},
        environment={"SPACEPORT_JOB_NAME": key.name, PROGRESS_FILE_ENV: progress_path(key.kind)}
        if key.kind == "processing"
        else {},
        progress_uri=f"s3://out-bucket/job1/r1/{stage.value}/progress/" if key.kind == "processing" else None,
    )
    return StageJobSpec(**{**fields, **changes})


def _launcher() -> SageMakerLauncher:
    return SageMakerLauncher(boto3.client("sagemaker"))


def test_a_processing_job_runs_under_sagemakers_layout_and_reports_completion(aws):
    spec = _spec(Stage.SFM, "ok")
    launcher = _launcher()
    assert launcher.start(spec) is True
    assert launcher.start(spec) is False, "a second start of the same name starts nothing (ResourceInUse)"
    assert aws.runner.wait(spec.name, timeout_s=60).status == "Completed"
    assert launcher.describe(spec.name).status == "Completed"
    s3 = boto3.client("s3")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="out-bucket", Prefix="job1/r1/sfm/")["Contents"])
    assert keys == ["job1/r1/sfm/progress/progress.json", "job1/r1/sfm/report.json", "job1/r1/sfm/sub/extra.txt"]
    progress = json.loads(s3.get_object(Bucket="out-bucket", Key="job1/r1/sfm/progress/progress.json")["Body"].read())
    assert (progress["fraction"], progress["job"]) == (0.5, spec.name), "uploaded while it ran (Continuous mode)"
    report = s3.get_object(Bucket="out-bucket", Key="job1/r1/sfm/report.json")["Body"].read().decode()
    assert "processing/input/photos.zip" in report
    [event] = [e for e in _state_changes(aws) if e["detail"].get("ProcessingJobName") == spec.name]
    assert event["detail-type"] == "SageMaker Processing Job State Change"
    assert event["detail"]["ProcessingJobStatus"] == "Completed"
    assert event["resources"] == [event["detail"]["ProcessingJobArn"]]


def test_a_training_job_uploads_model_and_output_archives(aws):
    import io
    import tarfile

    spec = _spec(Stage.TRAIN, "ok", instance_type="ml.g5.2xlarge")
    _launcher().start(spec)
    assert aws.runner.wait(spec.name, timeout_s=60).status == "Completed"
    body = (
        boto3.client("s3")
        .get_object(Bucket="out-bucket", Key=f"job1/r1/train/{spec.name}/output/model.tar.gz")["Body"]
        .read()
    )
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        names = archive.getnames()
        report = archive.extractfile("report.json").read().decode()
    assert {"report.json", "sub/extra.txt"} <= set(names)
    assert "input/data/sfm/photos.zip" in report and "input/config/hyperparameters.json" in report
    [event] = [e for e in _state_changes(aws) if e["detail"].get("TrainingJobName") == spec.name]
    assert event["detail"]["TrainingJobStatus"] == "Completed"
    assert event["detail"]["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"{spec.name}/output/model.tar.gz")


def test_a_failed_job_carries_its_failure_reason(aws):
    spec = _spec(Stage.SFM, "fail", attempt=2)
    _launcher().start(spec)
    job = aws.runner.wait(spec.name, timeout_s=60)
    assert (job.status, job.failure_reason) == ("Failed", "Only 2 photos could be placed.")
    assert _launcher().describe(spec.name).failure_reason == "Only 2 photos could be placed."
    [event] = [e for e in _state_changes(aws) if e["detail"].get("ProcessingJobName") == spec.name]
    assert event["detail"]["FailureReason"] == "Only 2 photos could be placed."


def test_stop_ends_a_running_job_as_stopped(aws):
    spec = _spec(Stage.SFM, "slow", attempt=3)
    launcher = _launcher()
    launcher.start(spec)
    deadline = time.monotonic() + 30
    log = aws.runner.log_path(spec.name)
    while not log.exists() or "half way" not in log.read_text():
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)
    started = time.monotonic()
    launcher.stop(spec.name)
    assert aws.runner.wait(spec.name, timeout_s=20).status == "Stopped"
    assert time.monotonic() - started < 10, "SIGTERM, not the 60 s sleep, ended the job"
    launcher.stop(spec.name)  # stopping an ended job leaves it as it is
    assert launcher.describe(spec.name).status == "Stopped"
    [event] = [e for e in _state_changes(aws) if e["detail"].get("ProcessingJobName") == spec.name]
    assert event["detail"]["ProcessingJobStatus"] == "Stopped"


def test_a_job_past_its_time_limit_is_stopped_and_says_so(aws):
    spec = _spec(Stage.COMPRESS, "slow", max_runtime_s=1)
    _launcher().start(spec)
    job = aws.runner.wait(spec.name, timeout_s=30)
    assert (job.status, job.secondary_status) == ("Stopped", "MaxRuntimeExceeded")
    [event] = [e for e in _state_changes(aws) if e["detail"].get("ProcessingJobName") == spec.name]
    assert "MaxRuntimeInSeconds" in event["detail"]["FailureReason"]


@pytest.mark.parametrize(
    "changes, refusal",
    [
        ({"instance_type": "ml.p9.mega"}, "not a supported instance type"),
        ({"hyperparameters": {"notes": "x" * 2501}}, "longer than 2500"),
        ({"image_uri": ""}, "No container image"),
    ],
)
def test_requests_sagemaker_refuses_are_refused_locally_too(aws, changes, refusal):
    spec = _spec(Stage.TRAIN, "ok", attempt=7, **changes)
    with pytest.raises(LaunchError, match=refusal):
        _launcher().start(spec)
    with pytest.raises(ClientError):
        boto3.client("sagemaker").describe_training_job(TrainingJobName=spec.name)


def test_describe_of_an_unknown_job_is_a_named_error(tmp_path):
    from spaceport.local.runner import JobNotFoundError

    with pytest.raises(JobNotFoundError):
        LocalJobRunner(tmp_path).describe("spaceport-local-sfm-nope-r1-a1")


def test_start_replay_sends_only_the_archived_events_inside_its_window_to_the_chosen_rules(aws):
    events, sqs = boto3.client("events"), boto3.client("sqs")
    bus = events.create_event_bus(Name="replay-bus")["EventBusArn"]
    archive = events.create_archive(ArchiveName="replay-archive", EventSourceArn=bus)["ArchiveArn"]
    queues = {}
    for rule in ("chosen", "other"):
        url = sqs.create_queue(QueueName=f"replayed-{rule}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name=rule, EventBusName="replay-bus", EventPattern=json.dumps({"source": ["test"]}))
        events.put_targets(Rule=rule, EventBusName="replay-bus", Targets=[{"Id": "q", "Arn": arn}])
        queues[rule] = url
    events.put_events(
        Entries=[{"Source": "test", "DetailType": "T", "Detail": '{"n": 1}', "EventBusName": "replay-bus"}]
    )
    time.sleep(2.1)  # archived event times have one-second resolution
    middle = datetime.now(UTC)
    time.sleep(1.1)
    events.put_events(
        Entries=[{"Source": "test", "DetailType": "T", "Detail": '{"n": 2}', "EventBusName": "replay-bus"}]
    )

    def drain(url: str) -> list[dict]:
        bodies = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    def replay(name: str, destination: dict) -> dict[str, list[dict]]:
        for url in queues.values():
            drain(url)
        events.start_replay(
            ReplayName=name,
            EventSourceArn=archive,
            EventStartTime=middle,
            EventEndTime=datetime.now(UTC) + timedelta(seconds=1),
            Destination=destination,
        )
        return {rule: drain(url) for rule, url in queues.items()}

    everyone = replay("second-half", {"Arn": bus})
    assert [e["detail"]["n"] for e in everyone["chosen"]] == [e["detail"]["n"] for e in everyone["other"]] == [2]
    assert everyone["chosen"][0]["replay-name"] == "second-half"
    chosen_arn = events.describe_rule(Name="chosen", EventBusName="replay-bus")["Arn"]
    filtered = replay("chosen-only", {"Arn": bus, "FilterArns": [chosen_arn]})
    assert [e["detail"]["n"] for e in filtered["chosen"]] == [2] and filtered["other"] == []


def test_the_gateway_serves_config_the_web_app_and_the_api(tmp_path):
    from chalice import Chalice

    from spaceport.local.aws import free_port
    from spaceport.local.http_server import GatewayServer

    app = Chalice(app_name="test-gateway")

    @app.route("/jobs/{job_id}")
    def get_job(job_id):
        return {"jobId": job_id}

    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<html>app</html>")
    (tmp_path / "assets" / "app.js").write_text("console.log(1)")
    (tmp_path.parent / "secret.txt").write_text("no")
    server = GatewayServer(app, free_port(), web_dist=tmp_path).start()
    try:

        def get(path: str, accept: str = "*/*") -> tuple[int, str, str]:
            request = urllib.request.Request(server.base_url + path, headers={"Accept": accept})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return response.status, response.headers["Content-Type"], response.read().decode()
            except urllib.error.HTTPError as error:
                return error.code, error.headers["Content-Type"], error.read().decode()

        status, _, body = get("/config.json")
        # No user pool here (nothing provisioned): the site says so, and no secret is in it either way.
        assert status == 200 and json.loads(body) == {"apiBaseUrl": server.base_url, "auth": None}
        assert get("/")[2] == "<html>app</html>"
        assert get("/assets/app.js")[1].endswith("javascript")
        assert json.loads(get("/jobs/j1")[2]) == {"jobId": "j1"}, "the app's API calls reach the API"
        assert get("/jobs/j1", accept="text/html,application/xhtml+xml")[2] == "<html>app</html>"
        assert get("/%2e%2e/secret.txt")[0] != 200
    finally:
        server.stop()


def test_a_presigned_put_stores_the_body_whatever_content_type_the_client_sends(aws, tmp_path):
    """``curl --data-binary`` and ``urllib`` send application/x-www-form-urlencoded; S3 stores the bytes."""
    import os
    import shutil
    import subprocess
    import zipfile

    from botocore.config import Config

    photos = tmp_path / "photos.zip"
    with zipfile.ZipFile(photos, "w") as archive:
        archive.writestr("a.jpg", os.urandom(300_000))  # not text: a form parser chokes on it
    body = photos.read_bytes()
    s3 = boto3.client("s3", config=Config(signature_version="s3v4"))

    def put_url(key: str) -> str:
        return s3.generate_presigned_url("put_object", Params={"Bucket": "in-bucket", "Key": key}, ExpiresIn=600)

    with urllib.request.urlopen(
        urllib.request.Request(put_url("urllib.zip"), data=body, method="PUT"), timeout=30
    ) as answer:
        assert answer.status == 200
    stored = s3.get_object(Bucket="in-bucket", Key="urllib.zip")["Body"].read()
    assert stored == body
    if shutil.which("curl"):
        done = subprocess.run(
            [
                "curl",
                "-sS",
                "--fail",
                "--max-time",
                "30",
                "-X",
                "PUT",
                "--data-binary",
                f"@{photos}",
                put_url("curl.zip"),
            ],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert s3.get_object(Bucket="in-bucket", Key="curl.zip")["Body"].read() == body


def test_a_job_reaches_no_aws_api_it_has_no_network_and_no_credentials(aws):
    spec = _spec(Stage.SFM, "calls-aws", attempt=7)
    assert _launcher().start(spec) is True
    job = aws.runner.wait(spec.name, timeout_s=60)
    assert job.status == "Failed"
    assert "Unable to locate credentials" in aws.runner.log_path(spec.name).read_text()


def test_sent_emails_are_read_back_whatever_else_the_account_held(aws):
    """Reading the emails touches nothing else: moto's own model dump advanced every S3 object's
    restore status on each read and failed once an object's bucket was gone."""
    from email.message import EmailMessage

    from spaceport.local.aws import sent_emails

    s3, ses = boto3.client("s3"), boto3.client("ses")
    s3.create_bucket(Bucket="gone-bucket")
    s3.put_object(Bucket="gone-bucket", Key="k", Body=b"x")
    s3.delete_object(Bucket="gone-bucket", Key="k")
    s3.delete_bucket(Bucket="gone-bucket")
    ses.verify_email_identity(EmailAddress="sender@example.com")
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "sender@example.com", "pilot@example.com", "ready"
    message.set_content("your scene")
    ses.send_raw_email(Source="sender@example.com", RawMessage={"Data": message.as_bytes()})
    for _ in range(3):
        [read] = [m for m in sent_emails(aws.endpoint) if m["Subject"] == "ready"]
    assert read["To"] == "pilot@example.com" and "your scene" in read.get_payload()
