from datetime import UTC

from spaceport.contracts.job import JobFailure, JobRecord, JobStatus, Phase, RunRecord, position
from spaceport.contracts.stages import Stage


def _record(job_id="abc123"):
    from datetime import datetime

    from spaceport.contracts.events import JobOptions

    return JobRecord(
        job_id=job_id,
        email="a@b.co",
        input_uri="s3://spaceport-local-uploads/p.zip",
        position=position("r1", Stage.SFM, 1, Phase.REQUESTED),
        runs=[RunRecord(run_id="r1", from_stage=Stage.SFM, options=JobOptions(), started_at=datetime.now(UTC))],
    )


def test_transitions_only_move_forward(world):
    store = world.ports.store
    assert store.create(_record()).created
    assert not store.create(_record()).created
    started = position("r1", Stage.SFM, 1, Phase.STARTED)
    assert store.transition(
        "abc123", started, status=JobStatus.RUNNING, stage=Stage.SFM, run_status=("r1", JobStatus.RUNNING)
    )
    # The same step again, or an older one, changes nothing.
    assert not store.transition("abc123", started, status=JobStatus.QUEUED)
    assert not store.transition("abc123", position("r1", Stage.SFM, 1, Phase.REQUESTED), status=JobStatus.QUEUED)
    assert store.transition(
        "abc123",
        position("r1", Stage.SFM, 1, Phase.COMPLETED),
        stage_percent=100.0,
        artifacts={"sfm": "s3://spaceport-local-sfm/abc123/r1/"},
        summary={"sfm_images_used": 24, "sfm_error_px": 0.5},
    )
    record = store.get("abc123")
    assert record.status is JobStatus.RUNNING and record.runs[0].status is JobStatus.RUNNING
    assert record.artifacts == {"sfm": "s3://spaceport-local-sfm/abc123/r1/"}
    assert record.summary == {"sfm_images_used": 24, "sfm_error_px": 0.5}
    assert not store.transition("nope", started)


def test_failure_error_and_notification_claims(world):
    store = world.ports.store
    store.create(_record())
    store.transition(
        "abc123",
        position("r1", Stage.TRAIN, 2, Phase.FAILED),
        status=JobStatus.FAILED,
        error=JobFailure(stage=Stage.TRAIN, code="x", message="broke"),
    )
    assert store.get("abc123").error.message == "broke"
    assert store.claim_notification("abc123", "r1#failed", stale_after_s=120)
    assert not store.claim_notification("abc123", "r1#failed", stale_after_s=120), "claimed by a live sender"
    store.release_notification("abc123", "r1#failed")  # its send failed: a retry may send at once
    assert store.claim_notification("abc123", "r1#failed", stale_after_s=120)
    # The claimant died before confirming: once its claim is stale, a redelivery takes it over.
    assert store.claim_notification("abc123", "r1#failed", stale_after_s=0)
    store.confirm_notification("abc123", "r1#failed", "ses-message-1")
    assert not store.claim_notification("abc123", "r1#failed", stale_after_s=0), "sent: never again"
    store.release_notification("abc123", "r1#failed")  # a late release does not undo a sent email
    notification = store.get("abc123").notifications["r1#failed"]
    assert (notification.state.value, notification.message_id) == ("sent", "ses-message-1")


def test_an_ended_run_stays_ended_until_a_new_run(world):
    store = world.ports.store
    store.create(_record())
    succeeded = position("r1", Stage.NOTIFY, 1, Phase.COMPLETED)
    assert store.transition("abc123", succeeded, status=JobStatus.SUCCEEDED)
    # A cancel or a failure of the same run sits higher in the order, yet cannot change its end.
    assert not store.transition("abc123", position("r1", Stage.SFM, 1, Phase.CANCELLED), status=JobStatus.CANCELLED)
    assert not store.transition("abc123", position("r1", Stage.TRAIN, 1, Phase.FAILED), status=JobStatus.FAILED)
    assert store.get("abc123").status is JobStatus.SUCCEEDED
    # A reprocess is a new run, which moves the job again.
    assert store.transition(
        "abc123", position("r2", Stage.TRAIN, 1, Phase.REQUESTED), status=JobStatus.QUEUED, run_id="r2"
    )


def test_list_by_owner_newest_first_and_since(world):
    store = world.ports.store
    for job_id in ("a1", "a2", "a3"):
        store.create(_record(job_id).model_copy(update={"owner": "sub-a"}))
    store.create(_record("b1").model_copy(update={"owner": "sub-b"}))
    assert [job.job_id for job in store.list_by_owner("sub-a")] == ["a3", "a2", "a1"]
    assert [job.job_id for job in store.list_by_owner("sub-a", limit=2)] == ["a3", "a2"]
    first = store.get("a1")
    assert [job.job_id for job in store.list_by_owner("sub-a", limit=None, since=first.created_at)] == ["a3", "a2"]
    assert store.list_by_owner("nobody") == []
