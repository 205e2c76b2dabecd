import json

import pytest

from spaceport.contracts import (
    InvalidEventError,
    JobOptions,
    JobRequested,
    SageMakerJobKey,
    SfmCompleted,
    Stage,
    parse_envelope,
    parse_event,
    to_put_events_entry,
)
from spaceport.contracts.job import Phase, position


def test_events_round_trip_through_the_eventbridge_entry():
    event = SfmCompleted(
        job_id="abc", run_id="r2", stage=Stage.SFM, attempt=2, output_uri="s3://b/k/", summary={"images_registered": 24}
    )
    entry = to_put_events_entry(event, bus_name="spaceport")
    assert parse_event(entry["DetailType"], json.loads(entry["Detail"])) == event
    envelope = {"source": entry["Source"], "detail-type": entry["DetailType"], "detail": json.loads(entry["Detail"])}
    assert parse_envelope(json.dumps(envelope)) == event


def test_business_key_ignores_transport_and_time():
    a = JobRequested(job_id="abc", run_id="r1", stage=Stage.SFM)
    b = JobRequested(job_id="abc", run_id="r1", stage=Stage.SFM)
    assert a.occurred_at != b.occurred_at or a == b
    assert a.business_key == b.business_key == "JobRequested#abc#r1#sfm#1"


@pytest.mark.parametrize(
    "detail_type, detail",
    [
        ("Nope", {}),
        ("JobRequested", {"job_id": "abc"}),
        ("JobRequested", {"job_id": "abc", "run_id": "r1", "stage": "sfm", "surprise": 1}),
        ("JobRequested", {"job_id": "abc", "run_id": "r1", "stage": "sfm", "options": {"preset": "huge"}}),
    ],
)
def test_invalid_events_are_refused(detail_type, detail):
    with pytest.raises(InvalidEventError):
        parse_event(detail_type, detail)


def test_unknown_options_are_refused_not_ignored():
    with pytest.raises(ValueError):
        JobOptions.model_validate({"presets": "quick"})


def test_positions_only_move_forward():
    order = [
        position("r1", Stage.SFM, 1, Phase.REQUESTED),
        position("r1", Stage.SFM, 1, Phase.STARTED),
        position("r1", Stage.SFM, 2, Phase.STARTED),
        position("r1", Stage.SFM, 2, Phase.COMPLETED),
        position("r1", Stage.TRAIN, 1, Phase.STARTED),
        position("r1", Stage.NOTIFY, 1, Phase.COMPLETED),
        position("r1", Stage.TRAIN, 1, Phase.FAILED),
        position("r1", Stage.SFM, 1, Phase.CANCELLED),
        position("r2", Stage.TRAIN, 1, Phase.REQUESTED),
    ]
    assert order == sorted(order) and len(set(order)) == len(order)


def test_sagemaker_job_names_are_valid_and_reversible():
    key = SageMakerJobKey("local", Stage.COMPRESS, "0123456789abcdef", "r12", 3)
    assert len(key.name) <= 63
    assert SageMakerJobKey.parse(key.name) == key
    with pytest.raises(ValueError):
        SageMakerJobKey.parse("someone-elses-job")
