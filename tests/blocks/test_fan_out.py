"""A run trained in blocks on moto: fan-out, duplicate completions, a failed block, cancel, replays."""

from __future__ import annotations

import dataclasses
import json

import pytest
from control_helpers import PILOT, REGION

from spaceport.api import cancel_job, create_job, reprocess_job
from spaceport.contracts.blocks import BlockPlan
from spaceport.contracts.job import JobStatus, PartStatus, Phase, position
from spaceport.contracts.stages import Stage
from spaceport.contracts.topology import MERGE_PART, SAGEMAKER_SOURCE, SageMakerJobKey, state_change_fields
from spaceport.contracts.units import BLOCK_RUN_GRANTS, UNITS
from spaceport.handlers import handle_stage_message
from spaceport.handlers.blocks import _block_spec, _launch_part
from spaceport.local.iam import needed_statements

SFM_REPORT = {"status": "succeeded", "images_used": 40, "images_registered": 40, "points3d": 40_000}


def body(key: SageMakerJobKey, status: str, reason: str | None = None) -> str:
    """SageMaker's state-change event for ``key``'s job (a block's training job, or the merge's processing job)."""
    detail_type, name_field, status_field = state_change_fields(key.kind)
    detail = {name_field: key.name, status_field: status, **({"FailureReason": reason} if reason else {})}
    envelope = {"version": "0", "id": "e1", "source": SAGEMAKER_SOURCE, "detail-type": detail_type}
    return json.dumps({**envelope, "account": "123456789012", "region": REGION, "resources": [], "detail": detail})


def events(world, detail_type: str, run_id: str | None = None) -> list[str]:
    return [
        json.dumps(e)
        for e in world.published()
        if e["detail-type"] == detail_type and (run_id is None or e["detail"]["run_id"] == run_id)
    ]


def train(world, message: str, ports=None) -> str:
    return handle_stage_message(Stage.TRAIN, message, ports or world.unit("train"))


def forgetful(world):
    """The ports without idempotency records: what an archive replay meets once they expired."""
    return dataclasses.replace(world.unit("train"), idempotency=None)


def key(job_id: str, part: str, attempt: int = 1, run_id: str = "r1") -> SageMakerJobKey:
    return SageMakerJobKey("local", Stage.TRAIN, job_id, run_id, attempt, part)


def job_over_budget(world, summary) -> str:
    """A job whose SfM completed with a scene too large for one training job; its training requested."""
    photos = world.put_zip()
    job_id = create_job(
        world.unit("gateway"), PILOT, {"s3Url": photos, "email": "pilot@example.com", "options": {}}
    ).body["jobId"]
    handle_stage_message(Stage.SFM, events(world, "JobRequested")[-1], world.unit("sfm"))
    sfm = f"s3://spaceport-local-sfm/{job_id}/r1/"
    world.put_json(sfm + "report.json", SFM_REPORT)
    world.put_json(sfm + "scene-summary.json", summary.model_dump(mode="json"))
    handle_stage_message(
        Stage.SFM, body(SageMakerJobKey("local", Stage.SFM, job_id, "r1"), "Completed"), world.unit("sfm")
    )
    return job_id


def plan_of(world, job_id: str) -> BlockPlan:
    record = world.ports.store.get(job_id)
    return BlockPlan.model_validate(world.ports.objects.read_json(record.blocks.plan_uri))


def launch_all(world, job_id: str, run_id: str = "r1") -> list[str]:
    return [train(world, request) for request in events(world, "BlockRequested", run_id)]


def finish_block(world, job_id: str, index: int, attempt: int = 1, run_id: str = "r1", psnr: float = 25.0) -> str:
    outputs = f"s3://spaceport-local-train/{job_id}/{run_id}/blocks/b{index}/outputs/"
    world.ports.objects.put_bytes(outputs + "splat.ply", b"ply\n" + bytes(100))
    metrics = {"psnr": psnr, "num_gaussians": 1000 + index, "steps": 40, "total_wall_s": 720.0, "device": "cuda"}
    world.put_json(outputs + "metrics.json", metrics)
    return train(world, body(key(job_id, f"b{index}", attempt, run_id), "Completed"))


def fan_in(world, run_id: str = "r1", ports=None) -> list[str]:
    return [train(world, completion, ports) for completion in events(world, "BlockCompleted", run_id)]


def finish_merge(world, job_id: str, run_id: str = "r1") -> str:
    outputs = f"s3://spaceport-local-train/{job_id}/{run_id}/outputs/"
    world.ports.objects.put_bytes(outputs + "splat.ply", b"ply\n" + bytes(400))
    world.put_json(outputs + "metrics.json", {"status": "succeeded", "psnr": 25.5, "num_gaussians": 4000, "steps": 160})
    return train(world, body(key(job_id, MERGE_PART, run_id=run_id), "Completed"))


def test_a_capture_over_the_budget_fans_out_one_training_job_per_block(world, strip_summary):
    job_id = job_over_budget(world, strip_summary())
    sfm_done = events(world, "SfmCompleted")[-1]
    outcome = train(world, sfm_done)
    plan = plan_of(world, job_id)
    count = len(plan.blocks)
    assert count >= 3 and outcome == f"requested {count} of {count} blocks"
    assert all(block.predicted.gaussians <= world.config.block_max_gaussians for block in plan.blocks)
    record = world.ports.store.get(job_id)
    assert (record.status, record.stage, record.blocks.count, record.blocks.done) == (
        JobStatus.RUNNING,
        Stage.TRAIN,
        count,
        0,
    )
    assert record.artifacts["block_plan"] == f"s3://spaceport-local-train/{job_id}/r1/block-plan.json"
    # The SfmCompleted delivered again: the first answer, no second plan or request.
    assert train(world, sfm_done) == outcome
    assert len(events(world, "BlockRequested")) == count

    # Each request delivered twice (and replayed later) launches its block once.
    assert launch_all(world, job_id) == ["launched"] * count
    assert launch_all(world, job_id) == ["launched"] * count
    assert [train(world, r, forgetful(world)) for r in events(world, "BlockRequested")] == ["duplicate"] * count
    # Replayed after the idempotency records expired, the SfmCompleted finds every block launched.
    assert train(world, sfm_done, forgetful(world)) == "duplicate"
    names = [key(job_id, f"b{i}").name for i in range(count)]
    assert world.training_jobs() == sorted(names)
    job = world.sagemaker.describe_training_job(TrainingJobName=names[1])
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in job["InputDataConfig"]}
    assert channels == {"sfm": f"s3://spaceport-local-sfm/{job_id}/r1/", "plan": record.blocks.plan_uri}
    assert job["HyperParameters"]["block"] == "1"
    assert job["CheckpointConfig"]["S3Uri"] == f"s3://spaceport-local-train/{job_id}/r1/blocks/b1/outputs/"
    tags = world.sagemaker.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]
    assert {t["Key"]: t["Value"] for t in tags}["spaceport:part"] == "b1"
    record = world.ports.store.get(job_id)
    assert all(part.status is PartStatus.RUNNING and part.attempt == 1 for part in record.blocks.parts.values())
    assert len(events(world, "StageStarted")) == 1 + count  # SfM, then each block


def test_duplicate_completions_are_counted_once_and_the_merge_starts_once(world, strip_summary):
    job_id = job_over_budget(world, strip_summary())
    train(world, events(world, "SfmCompleted")[-1])
    launch_all(world, job_id)
    count = world.ports.store.get(job_id).blocks.count
    for index in range(count):
        assert finish_block(world, job_id, index, psnr=24.0 + index) == "completed"
        assert finish_block(world, job_id, index) == "completed"  # SageMaker's event delivered twice
    # Once more after the idempotency records expired: the block is not counted yet, so it is reported again.
    assert train(world, body(key(job_id, "b0"), "Completed"), forgetful(world)) == "completed"
    assert world.processing_jobs() == [f"spaceport-local-sfm-{job_id}-r1-a1"]  # no merge before the fan-in
    # Every completion delivered twice, in reverse order, and replayed after the idempotency records expired.
    completions = events(world, "BlockCompleted")
    assert len(completions) == count + 1
    outcomes = [train(world, c) for c in [*reversed(completions), *completions]]
    assert "merging" in outcomes
    assert [train(world, c, forgetful(world)) for c in completions] == ["duplicate"] * len(completions)
    merge = key(job_id, MERGE_PART).name
    assert world.processing_jobs() == sorted([f"spaceport-local-sfm-{job_id}-r1-a1", merge])
    record = world.ports.store.get(job_id)
    assert record.blocks.done == count and record.blocks.merge.status is PartStatus.RUNNING
    part = record.blocks.parts["b1"]
    assert (part.status, part.psnr, part.measured_gpu_hours, part.device) == (PartStatus.DONE, 25.0, 0.2, "cuda")
    assert part.predicted_gpu_hours > 0
    # The merge reads the plan and a manifest of every block's splat and metrics.
    request = world.sagemaker.describe_processing_job(ProcessingJobName=merge)
    inputs = {i["InputName"]: i["S3Input"] for i in request["ProcessingInputs"]}
    assert inputs["blocks"]["S3DataType"] == "ManifestFile" and inputs["plan"]["S3Uri"] == record.blocks.plan_uri
    manifest = json.loads(
        world.s3.get_object(Bucket="spaceport-local-train", Key=f"{job_id}/r1/merge-inputs.json")["Body"].read()
    )
    assert manifest[0] == {"prefix": f"s3://spaceport-local-train/{job_id}/"}
    assert f"r1/blocks/b{count - 1}/outputs/splat.ply" in manifest and len(manifest) == 1 + 2 * count

    assert finish_merge(world, job_id) == "completed"
    assert train(world, body(key(job_id, MERGE_PART), "Completed"), forgetful(world)) == "duplicate"
    [done] = events(world, "TrainingCompleted")
    assert json.loads(done)["detail"]["output_uri"] == f"s3://spaceport-local-train/{job_id}/r1/outputs/splat.ply"
    assert handle_stage_message(Stage.COMPRESS, done, world.unit("compress")) == "launched"
    record = world.ports.store.get(job_id)
    assert record.summary["train_blocks"] == count and record.summary["train_psnr"] == 25.5
    assert record.artifacts["ply"].endswith(f"{job_id}/r1/outputs/splat.ply")
    # The train service's statements that only a run in blocks needs: each allowed a call here
    # that no other statement allowed (the pipeline's tests leave them to the block tests).
    needed = needed_statements(world.iam.decisions)
    assert BLOCK_RUN_GRANTS["train"] <= needed[UNITS["train"].role_name(world.config.deployment)]


def test_a_failed_block_is_retried_alone_and_one_that_fails_for_good_stops_the_others(world, strip_summary):
    job_id = job_over_budget(world, strip_summary())
    train(world, events(world, "SfmCompleted")[-1])
    launch_all(world, job_id)
    count = world.ports.store.get(job_id).blocks.count
    spot = "InternalServerError: the Spot instance was interrupted"
    assert train(world, body(key(job_id, "b1"), "Failed", spot)) == "retried"
    assert train(world, body(key(job_id, "b1"), "Failed", spot), forgetful(world)) == "stale"  # already retried
    assert world.training_jobs() == sorted(
        [key(job_id, f"b{i}").name for i in range(count)] + [key(job_id, "b1", 2).name]
    )
    assert world.ports.store.get(job_id).blocks.parts["b1"].attempt == 2
    # The late completion of the retried attempt is another attempt's: it counts for nothing.
    assert finish_block(world, job_id, 1, attempt=1) == "stale"
    assert finish_block(world, job_id, 0) == "completed"
    fan_in(world)

    error = {"code": "out_of_memory", "message": "Ran out of memory at step 900 with 3000000 Gaussians."}
    world.put_json(f"s3://spaceport-local-train/{job_id}/r1/blocks/b1/outputs/metrics.json", {"error": error})
    assert train(world, body(key(job_id, "b1", 2), "Failed", "AlgorithmError: exit 38")) == "failed"
    [failed] = events(world, "JobFailed")
    detail = json.loads(failed)["detail"]
    assert detail["error_code"] == "out_of_memory" and detail["reason"].startswith(
        f"Training block 1 of {count} failed"
    )
    record = world.ports.store.get(job_id)
    assert record.status is JobStatus.FAILED and record.blocks.parts["b1"].status is PartStatus.FAILED
    # Every other block still running was stopped; the finished one was left alone.
    for index in range(2, count):
        status = world.sagemaker.describe_training_job(TrainingJobName=key(job_id, f"b{index}").name)[
            "TrainingJobStatus"
        ]
        assert status in ("Stopping", "Stopped"), index
    assert finish_block(world, job_id, 2) == "stale"


def test_cancel_mid_fan_out_stops_every_running_block_and_launches_no_more(world, strip_summary):
    job_id = job_over_budget(world, strip_summary())
    train(world, events(world, "SfmCompleted")[-1])
    requests = events(world, "BlockRequested")
    assert train(world, requests[0]) == "launched" and train(world, requests[1]) == "launched"
    before = world.ports.store.get(job_id)
    assert cancel_job(world.unit("gateway"), PILOT, job_id).status == 202
    # A block whose launch raced the cancel (it read the job before, launched after) is stopped by its launcher.
    racing = key(job_id, "b2")
    assert (
        _launch_part(
            racing, _block_spec(racing, before, before.blocks, world.unit("train")), before, world.unit("train")
        )
        == "cancelled"
    )
    assert train(world, events(world, "JobCancelled")[-1]) == "stopped 2 block job(s)"
    for index in range(3):
        status = world.sagemaker.describe_training_job(TrainingJobName=key(job_id, f"b{index}").name)[
            "TrainingJobStatus"
        ]
        assert status in ("Stopping", "Stopped"), index
    # The requests still on their way find the job cancelled; the stopped jobs end quietly.
    assert [train(world, r) for r in requests[3:]] == ["stale"] * (len(requests) - 3)
    assert len(world.training_jobs()) == 3
    assert train(world, body(key(job_id, "b0"), "Stopped")) == "cancelled"
    assert events(world, "JobFailed") == [] and world.ports.store.get(job_id).status is JobStatus.CANCELLED


def succeed_in_blocks(world, summary) -> tuple[str, int]:
    job_id = job_over_budget(world, summary)
    train(world, events(world, "SfmCompleted")[-1])
    launch_all(world, job_id)
    count = world.ports.store.get(job_id).blocks.count
    for index in range(count):
        finish_block(world, job_id, index)
    fan_in(world)
    finish_merge(world, job_id)
    succeeded(world, job_id, "r1")
    return job_id, count


def succeeded(world, job_id: str, run_id: str) -> None:
    """The run ends as compression and the email would end it."""
    done = position(run_id, Stage.NOTIFY, 1, Phase.COMPLETED)
    world.ports.store.transition(job_id, done, status=JobStatus.SUCCEEDED, run_status=(run_id, JobStatus.SUCCEEDED))


def test_replay_of_one_block_retrains_that_block_alone_and_merges_it_with_the_others(world, strip_summary):
    job_id, count = succeed_in_blocks(world, strip_summary())
    first_plan = world.ports.store.get(job_id).blocks.plan_uri
    answer = reprocess_job(
        world.unit("gateway"), PILOT, job_id, {"fromStage": "train", "options": {"blocks": [1], "steps": 900}}
    )
    assert answer.status == 202 and answer.body["runId"] == "r2"
    assert train(world, events(world, "JobRequested", "r2")[-1]) == f"requested 1 of {count} blocks"
    assert launch_all(world, job_id, "r2") == ["launched"]
    new = key(job_id, "b1", run_id="r2").name
    assert [name for name in world.training_jobs() if "-r2-" in name] == [new]
    assert world.sagemaker.describe_training_job(TrainingJobName=new)["HyperParameters"]["steps"] == "900"
    record = world.ports.store.get(job_id)
    assert record.blocks.plan_uri == first_plan and record.blocks.done == count - 1
    assert {name: part.run_id for name, part in record.blocks.parts.items()}["b1"] == "r2"
    assert finish_block(world, job_id, 1, run_id="r2") == "completed"
    assert fan_in(world, "r2") == ["merging"]
    manifest = json.loads(
        world.s3.get_object(Bucket="spaceport-local-train", Key=f"{job_id}/r2/merge-inputs.json")["Body"].read()
    )
    assert "r2/blocks/b1/outputs/splat.ply" in manifest and "r1/blocks/b0/outputs/splat.ply" in manifest
    assert "r1/blocks/b1/outputs/splat.ply" not in manifest
    assert finish_merge(world, job_id, "r2") == "completed"

    # Blocks the plan does not have fail the run in plain words, and nothing is launched.
    succeeded(world, job_id, "r2")
    reprocess_job(world.unit("gateway"), PILOT, job_id, {"fromStage": "train", "options": {"blocks": [99]}})
    assert train(world, events(world, "JobRequested", "r3")[-1]) == "refused"
    assert "not in job" in json.loads(events(world, "JobFailed", "r3")[-1])["detail"]["reason"]


def test_replay_from_train_plans_again_and_retrains_every_block(world, strip_summary):
    job_id, count = succeed_in_blocks(world, strip_summary())
    reprocess_job(
        world.unit("gateway"),
        PILOT,
        job_id,
        {"fromStage": "train", "options": {"hyperparameters": {"max_image_size": "800"}}},
    )
    assert train(world, events(world, "JobRequested", "r2")[-1]) == f"requested {count} of {count} blocks"
    record = world.ports.store.get(job_id)
    assert record.blocks.run_id == "r2" and record.blocks.plan_uri.endswith(f"{job_id}/r2/block-plan.json")
    assert plan_of(world, job_id).budget.image_size_px == 800
    assert launch_all(world, job_id, "r2") == ["launched"] * count


@pytest.mark.parametrize("case", ["within the budget", "an SfM output with no scene summary"])
def test_a_capture_that_fits_or_has_no_summary_trains_whole_as_ever(world, strip_summary, case):
    summary = strip_summary(length=20.0, width=20.0, cameras=4)
    job_id = job_over_budget(world, summary)
    if case != "within the budget":
        world.s3.delete_object(Bucket="spaceport-local-sfm", Key=f"{job_id}/r1/scene-summary.json")
    assert train(world, events(world, "SfmCompleted")[-1]) == "launched"
    assert world.training_jobs() == [f"spaceport-local-train-{job_id}-r1-a1"]
    assert world.ports.store.get(job_id).blocks is None and events(world, "BlockRequested") == []
