"""The gateway through Chalice's test client, on moto: validation, sign-in, ownership, the seed contract,
idempotency, uploads, limits.

Chalice's test client hands a route the claims of the ``Authorization`` token without checking its
signature (API Gateway checks it in AWS, the local gateway locally: ``tests/auth`` checks that);
here a token is only a way to name the caller.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import requests
from chalice.test import Client
from control_helpers import OPERATOR, PILOT, load_app

from spaceport.api import cancel_job, create_job
from spaceport.auth import Caller
from spaceport.contracts.job import JobStatus, Phase, position
from spaceport.contracts.stages import Stage

OTHER = Caller(subject="other-sub", email="other@example.com", email_verified=True)
UNVERIFIED = Caller(subject="new-sub", email="new@example.com", email_verified=False)


def token(caller: Caller | None) -> str | None:
    """Claims naming ``caller``, as a Cognito ID token carries them (unsigned: see the module's docstring)."""
    if caller is None:
        return None
    claims = {
        "sub": caller.subject,
        "email": caller.email,
        "email_verified": caller.email_verified,
        "token_use": "id",
        "cognito:username": caller.subject,
        **({"cognito:groups": ["operators"]} if caller.operator else {}),
    }
    return jwt.encode(claims, "a key nobody checks in these tests", algorithm="HS256")


@pytest.fixture
def client(world):
    app = load_app("gateway/app.py").app
    with Client(app) as test_client:
        yield test_client


def post(client, path, body, caller=PILOT, headers=None, raw=None):
    signed = {"Authorization": token(caller)} if caller else {}
    all_headers = {"Content-Type": "application/json", **signed, **(headers or {})}
    response = client.http.post(path, headers=all_headers, body=raw if raw is not None else json.dumps(body))
    return response.status_code, json.loads(response.body or b"{}"), response.headers


def get(client, path, caller=PILOT):
    response = client.http.get(path, headers={"Authorization": token(caller)} if caller else {})
    return response.status_code, json.loads(response.body or b"{}")


def test_post_jobs_creates_the_callers_job_and_publishes_job_requested(world, client):
    photos = world.put_zip()
    status, body, headers = post(
        client, "/jobs", {"s3Url": photos, "options": {"preset": "quick", "matcher": "exhaustive"}}
    )
    assert status == 202, body
    assert body["statusUrl"] == f"https://spaceport.example.com/jobs/{body['jobId']}"
    record = world.ports.store.get(body["jobId"])
    assert record.owner == PILOT.subject and record.email == PILOT.email, "the owner, and their verified address"
    assert record.status.value == "QUEUED" and record.options.preset == "quick"
    # The job runs on its own copy of the checked upload, which no user can write.
    assert record.input_uri.startswith(f"s3://spaceport-local-uploads/jobs/{body['jobId']}/")
    assert world.s3.get_object(Bucket="spaceport-local-uploads", Key=record.input_uri.split("/", 3)[3])
    [event] = world.published()
    assert event["detail-type"] == "JobRequested" and event["detail"]["input_uri"] == record.input_uri
    assert event["detail"]["job_id"] == body["jobId"] and event["detail"]["stage"] == "sfm"
    assert headers.get("Access-Control-Allow-Origin") == "*"
    status, job = get(client, f"/jobs/{body['jobId']}")
    assert status == 200 and job["status"] == "QUEUED" and job["email"] == PILOT.email
    assert "share_token_hash" not in job and job["shared"] is False
    status, listing = get(client, "/jobs")
    assert status == 200 and [j["jobId"] for j in listing["jobs"]] == [body["jobId"]]
    assert get(client, "/jobs", caller=OTHER)[1] == {"jobs": []}, "GET /jobs lists the caller's own jobs only"


@pytest.mark.parametrize(
    "case, status, code",
    [
        ("bad email", 400, "bad_email"),
        ("someone else's email", 403, "not_your_email"),
        ("someone else's upload", 403, "not_your_upload"),
        ("foreign bucket", 400, "bad_s3_url"),
        ("other scheme", 400, "bad_s3_url"),
        ("missing object", 422, "upload_not_found"),
        ("not a zip", 422, "not_a_zip"),
        ("over the size cap", 422, "upload_too_large"),
        ("unknown option", 400, "bad_options"),
        ("bad option value", 400, "bad_options"),
        ("unknown field", 400, "unknown_field"),
        ("oversized body", 413, "body_too_large"),
        ("not json", 400, "bad_json"),
        ("unverified address", 403, "email_not_verified"),
    ],
)
def test_bad_input_is_refused_and_creates_nothing(world, client, case, status, code):
    photos = world.put_zip()
    mine = f"uploads/{PILOT.subject}"
    world.s3.put_object(Bucket="spaceport-local-uploads", Key=f"{mine}/u2/notes.zip", Body=b"just text, not a zip")
    world.s3.put_object(
        Bucket="spaceport-local-uploads", Key=f"{mine}/u3/huge.zip", Body=b"PK\x03\x04" + bytes(70 * 1024)
    )
    theirs = world.put_zip(key=f"uploads/{OTHER.subject}/u1/photos.zip")
    good = {"s3Url": photos}
    bodies = {
        "bad email": {**good, "email": "pilot-at-example"},
        "someone else's email": {**good, "email": "victim@example.com"},
        "someone else's upload": {"s3Url": theirs},
        "foreign bucket": {**good, "s3Url": "s3://someone-else/photos.zip"},
        "other scheme": {**good, "s3Url": f"https://spaceport-local-uploads.s3.amazonaws.com/{mine}/u1/photos.zip"},
        "missing object": {**good, "s3Url": f"s3://spaceport-local-uploads/{mine}/none/photos.zip"},
        "not a zip": {**good, "s3Url": f"s3://spaceport-local-uploads/{mine}/u2/notes.zip"},
        "over the size cap": {**good, "s3Url": f"s3://spaceport-local-uploads/{mine}/u3/huge.zip"},
        "unknown option": {**good, "options": {"turbo": True}},
        "bad option value": {**good, "options": {"preset": "huge"}},
        "unknown field": {**good, "priority": "high"},
        "oversized body": {**good, "options": {"hyperparameters": {"x": "y" * 300_000}}},
        "unverified address": {"s3Url": f"s3://spaceport-local-uploads/uploads/{UNVERIFIED.subject}/u1/photos.zip"},
    }
    caller = UNVERIFIED if case == "unverified address" else PILOT
    raw = "{not json" if case == "not json" else None
    copies = world.s3.list_objects_v2(Bucket="spaceport-local-uploads", Prefix="jobs/")["KeyCount"]
    answer, body, _ = post(client, "/jobs", bodies.get(case), caller=caller, raw=raw)
    assert (answer, body["error"]["code"]) == (status, code), body
    assert body["error"]["message"]
    assert world.job_count() == 0 and world.published() == []
    assert world.s3.list_objects_v2(Bucket="spaceport-local-uploads", Prefix="jobs/")["KeyCount"] == copies


def test_every_route_but_the_public_ones_needs_a_sign_in(world, client):
    photos = world.put_zip()
    assert post(client, "/jobs", {"s3Url": photos}, caller=None)[:2] == (
        401,
        {"error": {"code": "not_signed_in", "message": "Sign in first: the request carries no user."}},
    )
    for path in ("/jobs/abc", "/jobs", "/me"):
        assert get(client, path, caller=None)[0] == 401, path
    for path in ("/uploads", "/start-job", "/jobs/abc/cancel", "/jobs/abc/reprocess", "/jobs/abc/share"):
        assert post(client, path, {}, caller=None)[0] == 401, path
    assert world.job_count() == 0 and world.published() == []
    status, document = get(client, "/openapi.json", caller=None)
    assert status == 200 and "/start-job" in document["paths"]
    assert get(client, "/share/" + "A" * 43, caller=None)[0] == 404, "a public route: no sign-in, no such share"


def test_idempotency_key_returns_the_same_job(world, client):
    photos = world.put_zip()
    body = {"s3Url": photos}
    first = post(client, "/jobs", body, headers={"Idempotency-Key": "k-1"})
    again = post(client, "/jobs", body, headers={"Idempotency-Key": "k-1"})
    assert first[0] == again[0] == 202 and first[1]["jobId"] == again[1]["jobId"]
    assert world.job_count() == 1
    conflict = post(client, "/jobs", {**body, "options": {"preset": "quick"}}, headers={"Idempotency-Key": "k-1"})
    assert conflict[0] == 409 and conflict[1]["error"]["code"] == "idempotency_conflict"
    assert post(client, "/jobs", body, headers={"Idempotency-Key": "k-2"})[1]["jobId"] != first[1]["jobId"]
    # Keys belong to their user: someone else's "k-1" is another job.
    theirs = world.put_zip(key=f"uploads/{OTHER.subject}/u1/photos.zip")
    other = post(client, "/jobs", {"s3Url": theirs}, caller=OTHER, headers={"Idempotency-Key": "k-1"})
    assert other[0] == 202 and other[1]["jobId"] != first[1]["jobId"]


def _finished_sfm(world, caller: Caller) -> str:
    """A job of ``caller`` whose SfM run r1 left its output."""
    job_id = create_job(
        world.unit("gateway"), caller, {"s3Url": world.put_zip(key=f"uploads/{caller.subject}/x/p.zip")}
    )
    job_id = job_id.body["jobId"]
    world.s3.put_object(Bucket="spaceport-local-sfm", Key=f"{job_id}/r1/sparse/0/cameras.bin", Body=b"\0")
    world.ports.store.transition(
        job_id,
        position("r1", Stage.SFM, 1, Phase.COMPLETED),
        artifacts={"sfm": f"s3://spaceport-local-sfm/{job_id}/r1/"},
    )
    return job_id


def test_seed_start_job_contract_with_a_sign_in(world, client):
    photos = world.put_zip()
    csv = "lat,lon,alt\n46.1,7.2,80\n"
    status, body, _ = post(
        client,
        "/start-job",
        {
            "s3Url": photos,
            "email": PILOT.email,
            "pipelineStep": "sfm",
            "existingColmapUri": "",
            "hyperparameters": {"max_steps": 3000},
            "csvData": csv,
        },
    )
    assert status == 202, body
    record = world.ports.store.get(body["jobId"])
    assert record.owner == PILOT.subject and record.options.hyperparameters == {"steps": "3000"}  # the seed's name
    stored = world.s3.get_object(Bucket="spaceport-local-uploads", Key=record.artifacts["csv"].split("/", 3)[3])
    assert stored["Body"].read().decode() == csv

    earlier = _finished_sfm(world, PILOT)
    colmap = f"s3://spaceport-local-sfm/{earlier}/r1/"
    status, body, _ = post(
        client, "/start-job", {"email": PILOT.email, "pipelineStep": "3dgs", "existingColmapUri": colmap}
    )
    assert status == 202, body
    trained = world.ports.store.get(body["jobId"])
    assert trained.stage.value == "train" and trained.artifacts["sfm"] == colmap
    requested = [e["detail"] for e in world.published() if e["detail"]["job_id"] == body["jobId"]]
    assert requested[0]["stage"] == "train" and requested[0]["input_uri"] == colmap

    count = world.job_count()
    assert post(client, "/start-job", {"pipelineStep": "nerf", "s3Url": photos})[0] == 400
    # Starting from an earlier result names one of the caller's own jobs, never a free-form prefix.
    theirs = f"s3://spaceport-local-sfm/{_finished_sfm(world, OTHER)}/r1/"
    count += 1
    refused = {
        "someone else's job": (theirs, 404),
        "a free-form prefix": ("s3://spaceport-local-sfm/", 400),
        "a folder inside the job": (colmap + "sparse/", 400),
        "the uploads bucket": ("s3://spaceport-local-uploads/uploads/", 400),
    }
    for case, (uri, expected) in refused.items():
        answer = post(client, "/start-job", {"pipelineStep": "3dgs", "existingColmapUri": uri})
        assert answer[0] == expected, (case, answer[1])
    assert world.job_count() == count


def test_presigned_post_upload_then_job_from_upload_key(world, client):
    status, upload, _ = post(client, "/uploads", {"filename": "my flight.zip"})
    assert status == 200 and upload["s3Url"].startswith(f"s3://spaceport-local-uploads/uploads/{PILOT.subject}/")
    assert upload["uploadFields"]["Content-Type"] == "application/zip"
    policy = json.loads(__import__("base64").b64decode(upload["uploadFields"]["policy"]))
    assert ["content-length-range", 1, world.config.max_upload_bytes] in policy["conditions"]
    assert {"key": upload["uploadKey"]} in policy["conditions"], "the form writes that one key only"
    zip_bytes = world.s3.get_object(Bucket="spaceport-local-uploads", Key=world.put_zip().split("/", 3)[3])[
        "Body"
    ].read()
    form = requests.post(
        upload["uploadUrl"],
        data=upload["uploadFields"],
        files={"file": ("my flight.zip", zip_bytes, "application/zip")},
        timeout=10,
    )
    assert form.status_code in (200, 204), form.text
    status, body, _ = post(client, "/jobs", {"uploadKey": upload["uploadKey"]})
    assert status == 202, body
    record = world.ports.store.get(body["jobId"])
    # Replacing the upload now changes nothing the job reads.
    world.s3.put_object(Bucket="spaceport-local-uploads", Key=upload["uploadKey"], Body=b"PK\x03\x04 replaced")
    copy = world.s3.get_object(Bucket="spaceport-local-uploads", Key=record.input_uri.split("/", 3)[3])
    assert copy["Body"].read() == zip_bytes


def test_an_upload_replaced_while_it_is_checked_is_refused(world, monkeypatch):
    photos = world.put_zip()
    gateway = world.unit("gateway")
    replace = gateway.objects.read_prefix

    def read_then_replace(uri, length, etag=None):
        data = replace(uri, length, etag)
        world.s3.put_object(Bucket="spaceport-local-uploads", Key=uri.split("/", 3)[3], Body=b"PK\x03\x04 evil")
        return data

    monkeypatch.setattr(gateway.objects, "read_prefix", read_then_replace)
    with pytest.raises(Exception) as refused:
        create_job(gateway, PILOT, {"s3Url": photos})
    assert getattr(refused.value, "code", "") == "upload_changed"
    assert world.job_count() == 0 and world.published() == []


def test_cancel_and_reprocess_answer_only_the_owner_and_operators(world, client):
    photos = world.put_zip()
    job_id = post(client, "/jobs", {"s3Url": photos})[1]["jobId"]
    for action in ("cancel", "reprocess", "share"):
        assert post(client, f"/jobs/{job_id}/{action}", {}, caller=OTHER)[0] == 404, action
    assert get(client, f"/jobs/{job_id}", caller=OTHER)[0] == 404
    assert post(client, f"/jobs/{job_id}/reprocess", {"fromStage": "train"})[0] == 409  # still queued
    status, body, _ = post(client, f"/jobs/{job_id}/cancel", {})
    assert status == 202 and body["status"] == "CANCELLED"
    assert world.published_types() == ["JobRequested", "JobCancelled"]
    assert (
        post(client, f"/jobs/{job_id}/reprocess", {"fromStage": "train"})[1]["error"]["code"] == "nothing_to_reprocess"
    )
    assert post(client, f"/jobs/{job_id}/reprocess", {"fromStage": "sfm", "options": {"bogus": 1}})[0] == 400
    status, body, _ = post(client, f"/jobs/{job_id}/reprocess", {"fromStage": "sfm", "options": {"preset": "quick"}})
    assert status == 202 and body["runId"] == "r2"
    record = world.ports.store.get(job_id)
    assert record.run_id == "r2" and record.status.value == "QUEUED" and record.options.preset == "quick"
    assert [run.run_id for run in record.runs] == ["r1", "r2"] and record.runs[0].status.value == "CANCELLED"
    assert record.operator_actions == [], "the owner's own actions are not operator actions"
    # An operator acts on anyone's job, and each action is recorded on it.
    status, body, _ = post(client, f"/jobs/{job_id}/cancel", {}, caller=OPERATOR)
    assert status == 202
    status, body, _ = post(client, f"/jobs/{job_id}/reprocess", {"fromStage": "sfm"}, caller=OPERATOR)
    assert status == 202 and body["runId"] == "r3"
    actions = world.ports.store.get(job_id).operator_actions
    assert [(a.action, a.operator, a.operator_email) for a in actions] == [
        ("cancel", OPERATOR.subject, OPERATOR.email),
        ("reprocess", OPERATOR.subject, OPERATOR.email),
    ]
    assert actions[1].detail == {"run_id": "r3", "from_stage": "sfm"}
    assert get(client, f"/jobs/{job_id}", caller=OPERATOR)[1]["operator_actions"][0]["action"] == "cancel"
    assert get(client, "/jobs/doesnotexist")[0] == 404


def test_openapi_describes_every_route(world, client):
    app = load_app("gateway/app.py").app
    status, document = get(client, "/openapi.json", caller=None)
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    served = {
        (path.replace("{job_id}", "{jobId}"), method.lower())
        for path, methods in app.routes.items()
        for method in methods
        if path != "/openapi.json"
    }
    assert described == served
    assert document["components"]["securitySchemes"]["apiKey"]["name"] == "x-api-key"
    assert document["components"]["securitySchemes"]["idToken"]["name"] == "Authorization"
    assert "preset" in document["components"]["schemas"]["JobOptions"]["properties"]


def test_progress_shows_only_the_running_attempts_progress_file(world, client):
    """The job writes progress.json where SageMaker uploads it as it changes; the API shows it, for the
    running attempt only: the same path in AWS as on a laptop."""
    from spaceport.handlers import handle_stage_message

    photos = world.put_zip()
    job_id = create_job(world.unit("gateway"), PILOT, {"s3Url": photos}).body["jobId"]
    progress_uri = world.config.layout.progress(Stage.SFM, job_id, "r1")
    running = {"fraction": 0.4, "message": "matching", "elapsed_s": 30.0, "eta_s": 45.0}
    world.put_json(progress_uri, {**running, "job": f"spaceport-local-sfm-{job_id}-r1-a1"})
    _, queued = get(client, f"/jobs/{job_id}")
    assert "progress" not in queued and queued["stage_percent"] == 0  # not started yet
    [requested] = [e for e in world.published() if e["detail-type"] == "JobRequested"]
    assert handle_stage_message(Stage.SFM, json.dumps(requested), world.unit("sfm")) == "launched"
    _, view = get(client, f"/jobs/{job_id}")
    assert view["stage_percent"] == 40.0
    assert view["progress"]["etaS"] == 45.0 and view["progress"]["message"] == "matching"
    world.put_json(progress_uri, {**running, "job": f"spaceport-local-sfm-{job_id}-r1-a2"})  # another attempt's file
    _, view = get(client, f"/jobs/{job_id}")
    assert "progress" not in view and view["stage_percent"] == 0


@pytest.mark.parametrize(
    "hyperparameters, problem",
    [
        ({"steps": "0"}, "steps must be from 1"),
        ({"sh_degree": "four"}, "sh_degree must be a whole number"),
        ({"colour": "blue"}, "colour is not a training setting"),
        ({"strategy": "magic"}, "strategy must be one of"),
        ({"strategy": "x" * 2501}, "longer than 2500 characters"),
    ],
)
def test_training_settings_the_job_would_refuse_are_refused_at_post_time(world, client, hyperparameters, problem):
    photos = world.put_zip()
    body = {"s3Url": photos, "options": {"hyperparameters": hyperparameters}}
    status, answer, _ = post(client, "/jobs", body)
    assert status == 400 and answer["error"]["code"] == "bad_options" and problem in answer["error"]["message"]
    assert world.job_count() == 0 and world.published() == []


def test_limits_refuse_a_job_past_them_with_429_and_me_shows_them(world):
    from spaceport.api import me

    limited = dataclasses.replace(
        world.unit("gateway"), config=dataclasses.replace(world.config, max_concurrent_jobs=2)
    )
    photos = world.put_zip()
    first = create_job(limited, PILOT, {"s3Url": photos}).body["jobId"]
    create_job(limited, PILOT, {"s3Url": photos})
    with pytest.raises(Exception) as refused:
        create_job(limited, PILOT, {"s3Url": photos})
    assert (refused.value.status, refused.value.code) == (429, "too_many_jobs")
    assert world.job_count() == 2
    assert me(limited, PILOT).body["limits"]["activeJobs"] == 2
    cancel_job(limited, PILOT, first)
    # GPU minutes: the training stage of a job of the last 24 hours ran 50 minutes; the quota is 45.
    world.dynamodb.update_item(
        TableName=world.config.jobs_table,
        Key={"job_id": {"S": first}},
        UpdateExpression="SET summary.train_wall_time_s = :seconds",
        ExpressionAttributeValues={":seconds": {"N": "3000"}},
    )
    quota = dataclasses.replace(limited, config=dataclasses.replace(limited.config, daily_gpu_minutes=45))
    shown = me(quota, PILOT).body["limits"]
    assert shown["gpuMinutesUsed"] == 50.0 and shown["dailyGpuMinutes"] == 45 and shown["activeJobs"] == 1
    with pytest.raises(Exception) as refused:
        create_job(quota, PILOT, {"s3Url": photos})
    assert (refused.value.status, refused.value.code) == (429, "gpu_quota_used")
    assert world.job_count() == 2
    # Another user is not held to the pilot's use.
    theirs = world.put_zip(key=f"uploads/{OTHER.subject}/u/p.zip")
    assert create_job(quota, OTHER, {"s3Url": theirs}).status == 202
    # A job older than the window no longer counts.
    old = datetime.now(UTC) - timedelta(hours=30)
    world.dynamodb.update_item(
        TableName=world.config.jobs_table,
        Key={"job_id": {"S": first}},
        UpdateExpression="SET created_at = :old",
        ExpressionAttributeValues={":old": {"S": old.isoformat()}},
    )
    assert me(quota, PILOT).body["limits"]["gpuMinutesUsed"] == 0.0
    assert world.ports.store.get(first).status is JobStatus.CANCELLED
