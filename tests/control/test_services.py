"""The stage services and notify on moto: launches, completions, retries, cancel, idempotency."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import subprocess
import sys

import pytest
import requests
from control_helpers import PILOT, REPO, load_app, sqs_event, state_change

from spaceport.api import cancel_job, create_job, get_job, reprocess_job
from spaceport.contracts.events import JobOptions
from spaceport.contracts.job import JobStatus
from spaceport.contracts.stages import Stage
from spaceport.contracts.topology import SageMakerJobKey
from spaceport.handlers import diagnose, handle_notify_message, handle_stage_message, process_sqs_batch
from spaceport.handlers.stage import _launch

SFM_REPORT = {
    "status": "succeeded",
    "images_used": 24,
    "images_registered": 23,
    "points3d": 5120,
    "mean_reprojection_error_px": 0.61,
    "gps_used": True,
}
TRAIN_METRICS = {"steps": 300, "num_gaussians": 40000, "psnr": 27.31, "ssim": 0.88, "eval_history": [{"step": 0}]}
COMPRESS_METRICS = {
    "status": "succeeded",
    "input_bytes": 540,
    "output_bytes": 2004,
    "ratio": 0.27,
    "psnr": 41.2,
    "texture_bytes": {"means_l.webp": 100},
}


def new_job(world, **options) -> str:
    photos = world.put_zip()
    answer = create_job(
        world.unit("gateway"), PILOT, {"s3Url": photos, "email": "pilot@example.com", "options": options}
    )
    return answer.body["jobId"]


def requested(world, job_id) -> str:
    [event] = [e for e in world.published() if e["detail-type"] == "JobRequested" and e["detail"]["job_id"] == job_id]
    return json.dumps(event)


def run_stage(world, stage: Stage, body: str) -> str:
    return handle_stage_message(stage, body, world.unit(stage.value))


def forgetful(world, unit: str):
    """``unit``'s ports without idempotency records: what an archive replay meets once they expired."""
    return dataclasses.replace(world.unit(unit), idempotency=None)


def complete_sfm(world, job_id, run_id="r1", attempt=1, ports=None) -> str:
    key = SageMakerJobKey("local", Stage.SFM, job_id, run_id, attempt)
    world.put_json(f"s3://spaceport-local-sfm/{job_id}/{run_id}/report.json", SFM_REPORT)
    return handle_stage_message(Stage.SFM, state_change(key, "Completed"), ports or world.unit("sfm"))


def complete_train(world, job_id, run_id="r1", attempt=1) -> str:
    key = SageMakerJobKey("local", Stage.TRAIN, job_id, run_id, attempt)
    # The training job writes its splat and metrics into its checkpoint folder, which SageMaker
    # syncs file by file to the run's outputs/ folder.
    outputs = f"s3://spaceport-local-train/{job_id}/{run_id}/outputs/"
    world.ports.objects.put_bytes(outputs + "splat.ply", b"ply\nformat binary_little_endian 1.0\n" + bytes(500))
    world.put_json(outputs + "metrics.json", TRAIN_METRICS)
    return run_stage(world, Stage.TRAIN, state_change(key, "Completed"))


def complete_compress(world, job_id, run_id="r1") -> str:
    prefix = f"s3://spaceport-local-compressed/{job_id}/{run_id}/"
    world.put_json(prefix + "metrics.json", COMPRESS_METRICS)
    world.ports.objects.put_bytes(prefix + "scene.sog", b"PK\x03\x04" + bytes(2000))
    return run_stage(
        world, Stage.COMPRESS, state_change(SageMakerJobKey("local", Stage.COMPRESS, job_id, run_id), "Completed")
    )


def finish_from_sfm(world, job_id) -> None:
    """Every stage completes, from the running SfM job of run 1 to the email."""
    complete_sfm(world, job_id)
    run_stage(world, Stage.TRAIN, last(world, "SfmCompleted"))
    complete_train(world, job_id)
    run_stage(world, Stage.COMPRESS, last(world, "TrainingCompleted"))
    complete_compress(world, job_id)
    handle_notify_message(last(world, "CompressionCompleted"), world.unit("notify"))


def last(world, detail_type: str) -> str:
    return json.dumps([e for e in world.published() if e["detail-type"] == detail_type][-1])


def test_a_job_flows_through_every_stage_to_one_email(world):
    job_id = new_job(world, preset="quick", matcher="exhaustive")
    sfm_app = load_app("services/sfm/app.py")
    # The Chalice app's handler, as Lambda calls it; a duplicate delivery in the same batch starts nothing more.
    answer = sfm_app.consume(sqs_event(requested(world, job_id), requested(world, job_id)), None)
    assert answer == {"batchItemFailures": []}
    assert world.processing_jobs() == [f"spaceport-local-sfm-{job_id}-r1-a1"]
    described = world.sagemaker.describe_processing_job(ProcessingJobName=f"spaceport-local-sfm-{job_id}-r1-a1")
    assert described["ProcessingInputs"][0]["S3Input"]["S3Uri"].endswith("photos.zip")
    assert {t["Key"]: t["Value"] for t in described.get("Tags", [])}.get("spaceport:stage", "sfm") == "sfm"
    record = world.ports.store.get(job_id)
    assert (record.status, record.stage, record.attempt) == (JobStatus.RUNNING, Stage.SFM, 1)

    assert complete_sfm(world, job_id) == "completed"
    assert run_stage(world, Stage.TRAIN, last(world, "SfmCompleted")) == "launched"
    training = world.sagemaker.describe_training_job(TrainingJobName=f"spaceport-local-train-{job_id}-r1-a1")
    assert (
        training["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
        == f"s3://spaceport-local-sfm/{job_id}/r1/"
    )
    assert training["HyperParameters"]["preset"] == "quick"
    assert complete_train(world, job_id) == "completed"
    assert run_stage(world, Stage.COMPRESS, last(world, "TrainingCompleted")) == "launched"
    compress_input = world.sagemaker.describe_processing_job(
        ProcessingJobName=f"spaceport-local-compress-{job_id}-r1-a1"
    )
    assert (
        compress_input["ProcessingInputs"][0]["S3Input"]["S3Uri"]
        == f"s3://spaceport-local-train/{job_id}/r1/outputs/splat.ply"
    )
    assert complete_compress(world, job_id) == "completed"

    completion = last(world, "CompressionCompleted")
    assert handle_notify_message(completion, world.unit("notify")) == "emailed"
    # Delivered again: the first answer, no second email; replayed after the idempotency records expired: the same.
    assert handle_notify_message(completion, world.unit("notify")) == "emailed"
    assert handle_notify_message(completion, forgetful(world, "notify")) == "duplicate"
    types = world.published_types()
    assert types == [
        "JobRequested",
        "StageStarted",
        "SfmCompleted",
        "StageStarted",
        "TrainingCompleted",
        "StageStarted",
        "CompressionCompleted",
    ]

    record = world.ports.store.get(job_id)
    assert record.status is JobStatus.SUCCEEDED and record.runs[0].status is JobStatus.SUCCEEDED
    assert record.summary["sfm_images_registered"] == 23 and record.summary["train_psnr"] == 27.31
    assert record.artifacts["ply"] == f"s3://spaceport-local-train/{job_id}/r1/outputs/splat.ply"
    assert world.ports.objects.head(record.artifacts["ply"]).size > 500

    [raw] = world.sent_emails()
    message = email.message_from_bytes(raw)
    assert message["To"] == "pilot@example.com"
    parts = {
        part.get_content_type(): part.get_payload(decode=True).decode()
        for part in message.walk()
        if not part.is_multipart()
    }
    text, html = parts["text/plain"], parts["text/html"]
    assert f"https://spaceport.example.com/view/{job_id}" in text and "23 of 24" in text and "27.31 dB" in text
    # No presigned link (it would die with the notify Lambda's credentials): the job page signs fresh ones.
    assert f"https://spaceport.example.com/jobs/{job_id}" in text and "X-Amz-" not in text + html
    assert "<a href=" in html and "Held-out PSNR" in html
    assert "(.sog, .spz, .glb)" in text, "the email names the formats the job page offers"


def test_each_unit_calls_with_its_own_role_and_a_call_beyond_its_policy_is_refused(world):
    job_id = new_job(world)
    run_stage(world, Stage.SFM, requested(world, job_id))
    finish_from_sfm(world, job_id)
    roles = {decision.role for decision in world.iam.decisions}
    assert roles == {f"spaceport-{unit}-local" for unit in ("gateway", "sfm", "train", "compress", "notify")}
    assert world.refused() == []
    # notify may write the job's report beside the scene, and nothing of the user's photos.
    with pytest.raises(Exception, match="AccessDenied"):
        world.unit("notify").objects.put_bytes(f"s3://{world.config.uploads_bucket}/uploads/u1/photos.zip", b"PK")
    assert world.refused() == [
        f"spaceport-notify-local: s3:PutObject on arn:aws:s3:::{world.config.uploads_bucket}/uploads/u1/photos.zip"
    ]
    world.iam.decisions.clear()


def test_duplicate_and_old_events_never_move_a_job_backwards(world):
    job_id = new_job(world)
    trigger = requested(world, job_id)
    assert run_stage(world, Stage.SFM, trigger) == "launched"
    assert run_stage(world, Stage.SFM, trigger) == "launched"  # the first delivery's answer, nothing run again
    assert handle_stage_message(Stage.SFM, trigger, forgetful(world, "sfm")) == "duplicate"
    assert complete_sfm(world, job_id) == "completed"
    assert complete_sfm(world, job_id, ports=forgetful(world, "sfm")) == "duplicate"
    sfm_done = last(world, "SfmCompleted")
    assert run_stage(world, Stage.TRAIN, sfm_done) == "launched"
    before = world.ports.store.get(job_id)
    # Replays of every earlier event after the idempotency records expired change nothing and launch nothing.
    assert handle_stage_message(Stage.TRAIN, sfm_done, forgetful(world, "train")) == "duplicate"
    assert handle_stage_message(Stage.SFM, trigger, forgetful(world, "sfm")) == "duplicate"
    assert complete_sfm(world, job_id, ports=forgetful(world, "sfm")) == "duplicate"
    after = world.ports.store.get(job_id)
    assert (after.position, after.stage, after.status) == (before.position, Stage.TRAIN, JobStatus.RUNNING)
    assert world.processing_jobs() == [f"spaceport-local-sfm-{job_id}-r1-a1"]
    assert world.training_jobs() == [f"spaceport-local-train-{job_id}-r1-a1"]
    assert world.published_types().count("StageStarted") == 2


def test_a_malformed_message_fails_alone(world):
    job_id = new_job(world)
    answer = process_sqs_batch(
        sqs_event("{not json", requested(world, job_id), '{"source": "somewhere"}'),
        lambda body: run_stage(world, Stage.SFM, body),
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}, {"itemIdentifier": "m2"}]}
    assert world.processing_jobs() == [f"spaceport-local-sfm-{job_id}-r1-a1"]


def test_transient_failures_retry_then_fail_with_one_failure_email(world):
    job_id = new_job(world)
    run_stage(world, Stage.SFM, requested(world, job_id))
    reason = "InternalServerError: We encountered an internal error. Please try again."
    for attempt in (1, 2):
        key = SageMakerJobKey("local", Stage.SFM, job_id, "r1", attempt)
        assert run_stage(world, Stage.SFM, state_change(key, "Failed", reason)) == "retried"
        assert run_stage(world, Stage.SFM, state_change(key, "Failed", reason)) == "retried"
        assert (
            handle_stage_message(Stage.SFM, state_change(key, "Failed", reason), forgetful(world, "sfm")) == "duplicate"
        )
    assert world.processing_jobs() == [f"spaceport-local-sfm-{job_id}-r1-a{n}" for n in (1, 2, 3)]
    assert world.ports.store.get(job_id).attempt == 3
    last_key = SageMakerJobKey("local", Stage.SFM, job_id, "r1", 3)
    assert run_stage(world, Stage.SFM, state_change(last_key, "Failed", reason)) == "failed"
    failed = json.loads(last(world, "JobFailed"))["detail"]
    assert failed["stage"] == "sfm" and failed["attempt"] == 3 and "internal error" in failed["reason"]
    record = world.ports.store.get(job_id)
    assert record.status is JobStatus.FAILED and record.error.stage is Stage.SFM

    assert handle_notify_message(last(world, "JobFailed"), world.unit("notify")) == "emailed"
    assert handle_notify_message(last(world, "JobFailed"), forgetful(world, "notify")) == "duplicate"
    [raw] = world.sent_emails()
    text = email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",)).get_content()
    assert "Stage: sfm" in text and "internal error" in text and "What to try" in text


def test_an_explained_failure_is_not_retried(world):
    job_id = new_job(world)
    run_stage(world, Stage.SFM, requested(world, job_id))
    world.put_json(
        f"s3://spaceport-local-sfm/{job_id}/r1/report.json",
        {
            "status": "failed",
            "error": {
                "code": "too_few_registered",
                "message": "Only 3 of 24 photos could be placed: the photos overlap too little.",
            },
        },
    )
    key = SageMakerJobKey("local", Stage.SFM, job_id, "r1", 1)
    assert run_stage(world, Stage.SFM, state_change(key, "Failed", "AlgorithmError: exit code 14")) == "failed"
    failed = json.loads(last(world, "JobFailed"))["detail"]
    assert failed["error_code"] == "too_few_registered" and failed["reason"].startswith("Only 3 of 24")
    assert len(world.processing_jobs()) == 1


def test_cancel_stops_the_running_job_and_ends_quietly(world):
    job_id = new_job(world)
    run_stage(world, Stage.SFM, requested(world, job_id))
    assert cancel_job(world.unit("gateway"), PILOT, job_id).status == 202
    cancelled = last(world, "JobCancelled")
    assert run_stage(world, Stage.SFM, cancelled) == "stopped"
    name = f"spaceport-local-sfm-{job_id}-r1-a1"
    assert world.sagemaker.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] == "Stopped"
    stopped = state_change(SageMakerJobKey("local", Stage.SFM, job_id, "r1", 1), "Stopped")
    assert run_stage(world, Stage.SFM, stopped) == "cancelled"
    # A completion that raced the cancel does not carry the job on either.
    assert complete_sfm(world, job_id) == "stale"
    assert world.published_types() == ["JobRequested", "StageStarted", "JobCancelled"]
    assert world.ports.store.get(job_id).status is JobStatus.CANCELLED
    assert world.sent_emails() == []


def test_reprocess_from_train_is_a_new_run_on_the_first_runs_sfm(world):
    job_id = new_job(world)
    run_stage(world, Stage.SFM, requested(world, job_id))
    finish_from_sfm(world, job_id)
    first_completion = last(world, "CompressionCompleted")

    answer = reprocess_job(world.unit("gateway"), PILOT, job_id, {"fromStage": "train", "options": {"steps": 500}})
    assert answer.status == 202 and answer.body["runId"] == "r2"
    again = last(world, "JobRequested")
    assert json.loads(again)["detail"]["input_uri"] == f"s3://spaceport-local-sfm/{job_id}/r1/"
    assert run_stage(world, Stage.TRAIN, again) == "launched"
    training = world.sagemaker.describe_training_job(TrainingJobName=f"spaceport-local-train-{job_id}-r2-a1")
    assert training["HyperParameters"]["steps"] == "500"
    assert training["OutputDataConfig"]["S3OutputPath"] == f"s3://spaceport-local-train/{job_id}/r2/"
    # The first run's completion, replayed now, belongs to an older run: no email, no change.
    assert handle_notify_message(first_completion, forgetful(world, "notify")) == "stale"
    complete_train(world, job_id, "r2")
    run_stage(world, Stage.COMPRESS, last(world, "TrainingCompleted"))
    complete_compress(world, job_id, "r2")
    assert handle_notify_message(last(world, "CompressionCompleted"), world.unit("notify")) == "emailed"
    record = world.ports.store.get(job_id)
    assert record.run_id == "r2" and record.status is JobStatus.SUCCEEDED and len(world.sent_emails()) == 2
    assert world.ports.objects.head(f"s3://spaceport-local-train/{job_id}/r1/outputs/splat.ply") is not None


def test_lambda_apps_import_no_heavy_modules():
    script = (
        "import importlib.util, sys\n"
        "for path in ['gateway/app.py', 'services/sfm/app.py', 'services/train/app.py',\n"
        "             'services/compress/app.py', 'services/notify/app.py']:\n"
        "    spec = importlib.util.spec_from_file_location(path.replace('/', '_')[:-3], path)\n"
        "    spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'pycolmap', 'numpy', 'gsplat'})\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.parametrize(
    "status, reason, report, code, transient",
    [
        ("Failed", "InternalServerError: We encountered an internal error.", None, "infrastructure", True),
        ("Failed", "CapacityError: Unable to provision requested ML compute capacity.", None, "infrastructure", True),
        ("Stopped", None, None, "job_stopped", True),  # a Spot interruption, or the time limit: resume from checkpoints
        ("Failed", None, None, "job_crashed", True),
        ("Failed", "AlgorithmError: The ZIP holds no photos.", None, "job_failed", False),
        (
            "Failed",
            "AlgorithmError: exit 12",
            {"error": {"code": "no_images", "message": "No photos."}},
            "no_images",
            False,
        ),
    ],
)
def test_diagnosis_tells_transient_from_explained_failures(status, reason, report, code, transient):
    diagnosis = diagnose(Stage.SFM, status, reason, report)
    assert (diagnosis.code, diagnosis.transient) == (code, transient)
    assert diagnosis.reason and not diagnosis.reason.startswith(("AlgorithmError", "InternalServerError"))


def test_finished_job_shows_presigned_links(world):
    job_id = new_job(world)
    run_stage(world, Stage.SFM, requested(world, job_id))
    assert "links" not in get_job(world.unit("gateway"), PILOT, job_id).body
    finish_from_sfm(world, job_id)
    view = get_job(world.unit("gateway"), PILOT, job_id).body
    assert view["status"] == "SUCCEEDED" and view["stage_percent"] == 100
    assert set(view["links"]) == {"sog", "ply", "report", "viewer"}
    assert requests.get(view["links"]["sog"], timeout=10).content.startswith(b"PK\x03\x04")
    report = requests.get(view["links"]["report"], timeout=10).json()
    assert report["summary"]["compress_sog_bytes"] == 2004 and report["summary"]["compress_psnr"] == 41.2
    assert report["artifacts"]["ply"].endswith("splat.ply")


def test_a_job_cancelled_while_its_stage_starts_is_stopped_by_the_starter(world):
    job_id = new_job(world)
    trigger = requested(world, job_id)
    cancel_job(world.unit("gateway"), PILOT, job_id)  # lands before the sfm service handles the trigger...
    assert run_stage(world, Stage.SFM, trigger) == "stale"
    assert world.processing_jobs() == []
    # ...or after it launched but before it recorded the start.
    other = new_job(world)
    record = world.ports.store.get(other)
    cancel_job(world.unit("gateway"), PILOT, other)
    assert (
        _launch(SageMakerJobKey("local", Stage.SFM, other, "r1"), record.input_uri, JobOptions(), world.unit("sfm"))
        == "cancelled"
    )
    name = f"spaceport-local-sfm-{other}-r1-a1"
    assert world.sagemaker.describe_processing_job(ProcessingJobName=name)["ProcessingJobStatus"] == "Stopped"


def test_a_training_failure_is_explained_by_the_metrics_it_left(world):
    job_id = new_job(world)
    run_stage(world, Stage.SFM, requested(world, job_id))
    complete_sfm(world, job_id)
    run_stage(world, Stage.TRAIN, last(world, "SfmCompleted"))
    key = SageMakerJobKey("local", Stage.TRAIN, job_id, "r1", 1)
    error = {"code": "too_few_points", "message": "The reconstruction has too few points to train from."}
    world.put_json(f"s3://spaceport-local-train/{job_id}/r1/outputs/metrics.json", {"error": error})
    assert run_stage(world, Stage.TRAIN, state_change(key, "Failed", "AlgorithmError: exit 31")) == "failed"
    failed = json.loads(last(world, "JobFailed"))["detail"]
    assert (failed["stage"], failed["error_code"], failed["reason"]) == ("train", "too_few_points", error["message"])


def test_a_success_that_was_emailed_stands_against_a_racing_cancel_and_a_stray_failure(world):
    """Three deliveries race at the end of a job: the success, a user's cancel, a stray JobFailed."""
    import threading
    import time

    from spaceport.contracts.events import JobFailed

    outcomes = []
    # The cancel and the stray failure start together with the success, or a little after it.
    for head_start_s in (0.0, 0.0, 0.02, 0.05, 0.1, 0.5):
        job_id = new_job(world)
        run_stage(world, Stage.SFM, requested(world, job_id))
        complete_sfm(world, job_id)
        run_stage(world, Stage.TRAIN, last(world, "SfmCompleted"))
        complete_train(world, job_id)
        run_stage(world, Stage.COMPRESS, last(world, "TrainingCompleted"))
        complete_compress(world, job_id)
        success = last(world, "CompressionCompleted")
        stray = JobFailed(job_id=job_id, run_id="r1", stage=Stage.COMPRESS, error_code="job_failed", reason="stray")
        stray_body = json.dumps(
            {"source": "spaceport.pipeline", "detail-type": "JobFailed", "detail": json.loads(stray.model_dump_json())}
        )
        barrier = threading.Barrier(3)
        answers: dict[str, object] = {}

        def race(name, call, delay_s=0.0, barrier=barrier, answers=answers):
            barrier.wait()
            time.sleep(delay_s)
            try:
                answers[name] = call()
            except Exception as error:  # the cancel may be refused with 409
                answers[name] = error

        threads = [
            threading.Thread(
                target=race, args=("success", lambda b=success: handle_notify_message(b, world.unit("notify")))
            ),
            threading.Thread(
                target=race, args=("cancel", lambda j=job_id: cancel_job(world.unit("gateway"), PILOT, j), head_start_s)
            ),
            threading.Thread(
                target=race,
                args=("stray", lambda b=stray_body: handle_notify_message(b, world.unit("notify")), head_start_s),
            ),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        record = world.ports.store.get(job_id)
        mails = [email.message_from_bytes(raw)["Subject"] for raw in world.sent_emails() if job_id.encode() in raw]
        outcomes.append(answers["success"])
        assert record.status.is_final
        if answers["success"] == "emailed":
            assert record.status is JobStatus.SUCCEEDED, "an emailed success is never overwritten"
            assert mails == [f"Your 3D scene is ready (job {job_id})"]
        else:
            assert not any("ready" in subject for subject in mails), "no success email for a run that ended otherwise"
        if record.status is JobStatus.CANCELLED:
            assert mails == []
    assert "emailed" in outcomes, "the success won some races, and then it stood"


def test_a_launch_sagemaker_refuses_ends_the_job_with_the_reason_in_the_email(world):
    from spaceport.local.aws import SAGEMAKER_QUOTAS

    job_id = new_job(world)
    run_stage(world, Stage.SFM, requested(world, job_id))
    complete_sfm(world, job_id)
    SAGEMAKER_QUOTAS["ml.g5.2xlarge"] = 0  # a new account's GPU quota
    try:
        assert run_stage(world, Stage.TRAIN, last(world, "SfmCompleted")) == "refused"
    finally:
        SAGEMAKER_QUOTAS.clear()
    failed = json.loads(last(world, "JobFailed"))["detail"]
    assert (failed["stage"], failed["error_code"]) == ("train", "launch_refused")
    assert "quota of ml.g5.2xlarge training jobs" in failed["reason"]
    assert handle_notify_message(last(world, "JobFailed"), world.unit("notify")) == "emailed"
    record = world.ports.store.get(job_id)
    assert record.status is JobStatus.FAILED and record.error.code == "launch_refused"
    [raw] = world.sent_emails()
    text = email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",)).get_content()
    assert "Service Quotas" in text and "Nothing is wrong with your photos" in text


def test_a_job_stopped_by_its_time_limit_is_not_retried_and_the_email_names_the_limit(world):
    job_id = new_job(world)
    run_stage(world, Stage.SFM, requested(world, job_id))
    key = SageMakerJobKey("local", Stage.SFM, job_id, "r1", 1)
    change = json.loads(state_change(key, "Stopped"))
    change["detail"].update(ExitMessage="MaxRuntimeExceeded", StoppingCondition={"MaxRuntimeInSeconds": 7200})
    assert run_stage(world, Stage.SFM, json.dumps(change)) == "failed"
    assert world.processing_jobs() == [key.name], "no second attempt"
    failed = json.loads(last(world, "JobFailed"))["detail"]
    assert failed["error_code"] == "time_limit" and "time limit of 2 h 0 min" in failed["reason"]
    handle_notify_message(last(world, "JobFailed"), world.unit("notify"))
    [raw] = world.sent_emails()
    assert b"time limit of 2 h 0 min" in raw


def test_the_sweeper_fails_a_job_nothing_moved_for_longer_than_its_stage_may_run(world):
    from datetime import UTC, datetime, timedelta

    from spaceport.handlers.sweeper import sweep

    stuck, lively = new_job(world), new_job(world)
    for job_id in (stuck, lively):
        run_stage(world, Stage.SFM, requested(world, job_id))
    limit = world.config.stages[Stage.SFM].max_runtime_s + world.config.stall_margin_s
    later = datetime.now(UTC) + timedelta(seconds=limit + 60)
    # The lively job's SfM keeps writing progress; the stuck one's SageMaker event was lost.
    world.put_json(
        world.config.layout.progress(Stage.SFM, lively, "r1"),
        {
            "fraction": 0.5,
            "job": f"spaceport-local-sfm-{lively}-r1-a1",
            "updated_at": (later - timedelta(minutes=5)).isoformat(),
        },
    )
    assert sweep(world.unit("sweeper"), now=datetime.now(UTC)) == [], "nothing is overdue yet"
    assert sweep(world.unit("sweeper"), now=later) == [stuck]
    record = world.ports.store.get(stuck)
    assert record.status is JobStatus.FAILED and record.error.code == "stalled"
    assert world.ports.store.get(lively).status is JobStatus.RUNNING
    [failed] = [e["detail"] for e in world.published() if e["detail-type"] == "JobFailed"]
    assert failed["job_id"] == stuck and "showed no progress for" in failed["reason"]
    assert handle_notify_message(last(world, "JobFailed"), world.unit("notify")) == "emailed"
    assert sweep(world.unit("sweeper"), now=later) == [], "a failed job is not failed twice"


def test_a_300_mb_model_never_passes_through_the_train_service(world):
    """The training job's outputs are objects of their own; the service reads only the small report."""
    job_id = new_job(world)
    run_stage(world, Stage.SFM, requested(world, job_id))
    complete_sfm(world, job_id)
    run_stage(world, Stage.TRAIN, last(world, "SfmCompleted"))
    outputs = f"{world.config.train_bucket}/{job_id}/r1/outputs"
    size = 300 * 1024**2
    # Straight into moto's store: the test is of the service, not of an upload.
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_object(
        "spaceport-local-train", f"{job_id}/r1/outputs/splat.ply", bytes(size)
    )
    world.put_json(f"s3://{outputs}/metrics.json", TRAIN_METRICS)
    read: list[int] = []

    def count(response, **_):
        if response.get("Body") is not None and hasattr(response["Body"], "_content_length"):
            read.append(int(response["Body"]._content_length or 0))

    client = world.ports.objects.client
    client.meta.events.register("after-call.s3.GetObject", lambda parsed, **kw: count(parsed))
    try:
        key = SageMakerJobKey("local", Stage.TRAIN, job_id, "r1", 1)
        assert run_stage(world, Stage.TRAIN, state_change(key, "Completed")) == "completed"
    finally:
        client.meta.events.unregister("after-call.s3.GetObject")
    record = world.ports.store.get(job_id)
    assert record.summary["train_ply_bytes"] == size and record.artifacts["ply"].endswith("outputs/splat.ply")
    assert sum(read) < 64 * 1024, f"the service downloaded {sum(read)} bytes"


def test_a_flight_log_posted_with_the_photos_reaches_the_sfm_job_as_its_second_input(world):
    photos = world.put_zip()
    log = "name,lat,lon,alt\nIMG_0001.jpg,46.1,7.2,80\n"
    answer = create_job(world.unit("gateway"), PILOT, {"s3Url": photos, "email": "pilot@example.com", "flightLog": log})
    job_id = answer.body["jobId"]
    assert run_stage(world, Stage.SFM, requested(world, job_id)) == "launched"
    [name] = world.processing_jobs()
    inputs = world.sagemaker.describe_processing_job(ProcessingJobName=name)["ProcessingInputs"]
    where = {i["InputName"]: (i["S3Input"]["S3Uri"], i["S3Input"]["LocalPath"]) for i in inputs}
    assert where == {
        "photos": (world.ports.store.get(job_id).input_uri, "/opt/ml/processing/input/photos"),
        "flight_log": (world.config.layout.flight_plan(job_id), "/opt/ml/processing/input/flight_log"),
    }


def test_the_job_view_shows_where_the_capture_is_and_every_format_of_the_scene(world):
    job_id = new_job(world)
    run_stage(world, Stage.SFM, requested(world, job_id))
    origin = {"lat": 42.87, "lon": -76.98, "alt": 180.0}
    centres = [{"name": f"IMG_{i:04d}.jpg", "enu": [3.0 * i, -2.0 * i, 60.0]} for i in range(1500)]
    georeferenced = {
        **SFM_REPORT,
        "georeference": {
            "used": True,
            "frame": "enu",
            "origin": origin,
            "horizontal_rms_m": 1.2,
            "camera_centres": centres,
        },
    }
    world.put_json(f"s3://spaceport-local-sfm/{job_id}/r1/report.json", georeferenced)
    handle_stage_message(
        Stage.SFM, state_change(SageMakerJobKey("local", Stage.SFM, job_id, "r1"), "Completed"), world.unit("sfm")
    )
    running = get_job(world.unit("gateway"), PILOT, job_id).body
    assert running["georeference"] == {"used": True, "frame": "enu", "origin": origin, "horizontal_rms_m": 1.2}
    assert "flightPath" not in running, "read once the job is done"
    # The completion event carries the small georeference, never the camera centres.
    assert "camera_centres" not in last(world, "SfmCompleted")

    run_stage(world, Stage.TRAIN, last(world, "SfmCompleted"))
    complete_train(world, job_id)
    run_stage(world, Stage.COMPRESS, last(world, "TrainingCompleted"))
    prefix = f"s3://spaceport-local-compressed/{job_id}/r1/"
    world.ports.objects.put_bytes(prefix + "scene.spz", b"spz")
    complete_compress(world, job_id)
    handle_notify_message(last(world, "CompressionCompleted"), world.unit("notify"))
    done = get_job(world.unit("gateway"), PILOT, job_id).body
    assert set(done["links"]) == {"sog", "spz", "ply", "report", "viewer"}  # no .glb was written
    assert requests.get(done["links"]["spz"], timeout=10).content == b"spz"
    path = done["flightPath"]
    assert len(path) == 750 and path[0] == [0.0, 0.0, 60.0] and path[1] == [6.0, -4.0, 60.0]
