"""The gateway through Chalice's test client, on moto: validation, API key, the seed contract, idempotency."""

from __future__ import annotations

import json

import pytest
import requests
from chalice.test import Client
from control_helpers import API_KEY, load_app

from spaceport.contracts.stages import Stage


@pytest.fixture
def client(world):
    app = load_app("gateway/app.py").app
    with Client(app) as test_client:
        yield test_client


def post(client, path, body, key=API_KEY, headers=None, raw=None):
    all_headers = {"Content-Type": "application/json", **({"x-api-key": key} if key else {}), **(headers or {})}
    response = client.http.post(path, headers=all_headers, body=raw if raw is not None else json.dumps(body))
    return response.status_code, json.loads(response.body or b"{}"), response.headers


def get(client, path, key=API_KEY):
    response = client.http.get(path, headers={"x-api-key": key} if key else {})
    return response.status_code, json.loads(response.body or b"{}")


def test_post_jobs_creates_the_job_and_publishes_job_requested(world, client):
    photos = world.put_zip()
    status, body, headers = post(
        client,
        "/jobs",
        {"s3Url": photos, "email": "pilot@example.com", "options": {"preset": "quick", "matcher": "exhaustive"}},
    )
    assert status == 202, body
    assert body["statusUrl"] == f"https://spaceport.example.com/jobs/{body['jobId']}"
    record = world.ports.store.get(body["jobId"])
    assert record.status.value == "QUEUED" and record.input_uri == photos and record.options.preset == "quick"
    [event] = world.published()
    assert event["detail-type"] == "JobRequested" and event["detail"]["input_uri"] == photos
    assert event["detail"]["job_id"] == body["jobId"] and event["detail"]["stage"] == "sfm"
    assert headers.get("Access-Control-Allow-Origin") == "*"
    status, job = get(client, f"/jobs/{body['jobId']}")
    assert status == 200 and job["status"] == "QUEUED" and job["email"] == "pilot@example.com"
    status, listing = get(client, "/jobs?email=pilot@example.com")
    assert status == 200 and [j["jobId"] for j in listing["jobs"]] == [body["jobId"]]


@pytest.mark.parametrize(
    "case, status, code",
    [
        ("bad email", 400, "bad_email"),
        ("missing email", 400, "bad_email"),
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
    ],
)
def test_bad_input_is_refused_and_creates_nothing(world, client, case, status, code):
    photos = world.put_zip()
    world.s3.put_object(Bucket="spaceport-local-uploads", Key="uploads/u2/notes.zip", Body=b"just text, not a zip")
    world.s3.put_object(
        Bucket="spaceport-local-uploads", Key="uploads/u3/huge.zip", Body=b"PK\x03\x04" + bytes(70 * 1024)
    )
    good = {"s3Url": photos, "email": "pilot@example.com"}
    bodies = {
        "bad email": {**good, "email": "pilot-at-example"},
        "missing email": {"s3Url": photos},
        "foreign bucket": {**good, "s3Url": "s3://someone-else/photos.zip"},
        "other scheme": {**good, "s3Url": "https://spaceport-local-uploads.s3.amazonaws.com/uploads/u1/photos.zip"},
        "missing object": {**good, "s3Url": "s3://spaceport-local-uploads/uploads/none/photos.zip"},
        "not a zip": {**good, "s3Url": "s3://spaceport-local-uploads/uploads/u2/notes.zip"},
        "over the size cap": {**good, "s3Url": "s3://spaceport-local-uploads/uploads/u3/huge.zip"},
        "unknown option": {**good, "options": {"turbo": True}},
        "bad option value": {**good, "options": {"preset": "huge"}},
        "unknown field": {**good, "priority": "high"},
        "oversized body": {**good, "options": {"hyperparameters": {"x": "y" * 300_000}}},
    }
    raw = "{not json" if case == "not json" else None
    answer, body, _ = post(client, "/jobs", bodies.get(case), raw=raw)
    assert (answer, body["error"]["code"]) == (status, code), body
    assert body["error"]["message"]
    assert world.job_count() == 0 and world.published() == []


def test_api_key_is_required(world, client):
    photos = world.put_zip()
    body = {"s3Url": photos, "email": "pilot@example.com"}
    assert post(client, "/jobs", body, key=None)[0] == 401
    assert post(client, "/jobs", body, key="wrong")[0] == 403
    assert get(client, "/jobs/abc", key=None)[0] == 401
    assert post(client, "/uploads", {}, key="wrong")[0] == 403
    assert world.job_count() == 0
    status, document = get(client, "/openapi.json", key=None)
    assert status == 200 and "/start-job" in document["paths"]


def test_idempotency_key_returns_the_same_job(world, client):
    photos = world.put_zip()
    body = {"s3Url": photos, "email": "pilot@example.com"}
    first = post(client, "/jobs", body, headers={"Idempotency-Key": "k-1"})
    again = post(client, "/jobs", body, headers={"Idempotency-Key": "k-1"})
    assert first[0] == again[0] == 202 and first[1]["jobId"] == again[1]["jobId"]
    assert world.job_count() == 1
    conflict = post(client, "/jobs", {**body, "options": {"preset": "quick"}}, headers={"Idempotency-Key": "k-1"})
    assert conflict[0] == 409 and conflict[1]["error"]["code"] == "idempotency_conflict"
    assert post(client, "/jobs", body, headers={"Idempotency-Key": "k-2"})[1]["jobId"] != first[1]["jobId"]
    # Keys belong to their user: someone else's "k-1" is another job.
    other = post(client, "/jobs", {**body, "email": "other@example.com"}, headers={"Idempotency-Key": "k-1"})
    assert other[0] == 202 and other[1]["jobId"] != first[1]["jobId"]


def test_seed_start_job_contract(world, client):
    photos = world.put_zip()
    csv = "lat,lon,alt\n46.1,7.2,80\n"
    status, body, _ = post(
        client,
        "/start-job",
        {
            "s3Url": photos,
            "email": "pilot@example.com",
            "pipelineStep": "sfm",
            "existingColmapUri": "",
            "hyperparameters": {"max_steps": 3000},
            "csvData": csv,
        },
    )
    assert status == 202, body
    record = world.ports.store.get(body["jobId"])
    assert record.options.hyperparameters == {"steps": "3000"}  # the seed's name for it
    stored = world.s3.get_object(Bucket="spaceport-local-uploads", Key=record.artifacts["csv"].split("/", 3)[3])
    assert stored["Body"].read().decode() == csv

    world.s3.put_object(Bucket="spaceport-local-sfm", Key="old/r1/sparse/0/cameras.bin", Body=b"\0")
    status, body, _ = post(
        client,
        "/start-job",
        {"email": "pilot@example.com", "pipelineStep": "3dgs", "existingColmapUri": "s3://spaceport-local-sfm/old/r1/"},
    )
    assert status == 202, body
    trained = world.ports.store.get(body["jobId"])
    assert trained.stage.value == "train" and trained.artifacts["sfm"] == "s3://spaceport-local-sfm/old/r1/"
    requested = [e["detail"] for e in world.published() if e["detail"]["job_id"] == body["jobId"]]
    assert requested[0]["stage"] == "train" and requested[0]["input_uri"] == "s3://spaceport-local-sfm/old/r1/"

    assert post(client, "/start-job", {"email": "pilot@example.com", "pipelineStep": "nerf", "s3Url": photos})[0] == 400
    assert (
        post(
            client,
            "/start-job",
            {
                "email": "pilot@example.com",
                "pipelineStep": "3dgs",
                "existingColmapUri": "s3://spaceport-local-sfm/missing/",
            },
        )[0]
        == 422
    )


def test_presigned_upload_then_job_from_upload_key(world, client):
    status, upload, _ = post(client, "/uploads", {"filename": "my flight.zip"})
    assert status == 200 and upload["s3Url"].startswith("s3://spaceport-local-uploads/uploads/")
    zip_bytes = world.s3.get_object(Bucket="spaceport-local-uploads", Key=world.put_zip().split("/", 3)[3])[
        "Body"
    ].read()
    assert requests.put(upload["uploadUrl"], data=zip_bytes, timeout=10).status_code == 200
    status, body, _ = post(client, "/jobs", {"uploadKey": upload["uploadKey"], "email": "pilot@example.com"})
    assert status == 202, body
    assert world.ports.store.get(body["jobId"]).input_uri == upload["s3Url"]


def test_cancel_and_reprocess_through_the_api(world, client):
    photos = world.put_zip()
    job_id = post(client, "/jobs", {"s3Url": photos, "email": "pilot@example.com"})[1]["jobId"]
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
    assert get(client, "/jobs/doesnotexist")[0] == 404


def test_openapi_describes_every_route(world, client):
    app = load_app("gateway/app.py").app
    status, document = get(client, "/openapi.json", key=None)
    described = {(path, method) for path, item in document["paths"].items() for method in item}
    served = {
        (path.replace("{job_id}", "{jobId}"), method.lower())
        for path, methods in app.routes.items()
        for method in methods
        if path != "/openapi.json"
    }
    assert described == served
    assert document["components"]["securitySchemes"]["apiKey"]["name"] == "x-api-key"
    assert "preset" in document["components"]["schemas"]["JobOptions"]["properties"]


def test_progress_shows_only_the_running_attempts_progress_file(world, client):
    """The job writes progress.json where SageMaker uploads it as it changes; the API shows it, for the
    running attempt only: the same path in AWS as on a laptop."""
    from spaceport.api import create_job
    from spaceport.handlers import handle_stage_message

    photos = world.put_zip()
    job_id = create_job(world.ports, {"s3Url": photos, "email": "pilot@example.com"}).body["jobId"]
    progress_uri = world.config.layout.progress(Stage.SFM, job_id, "r1")
    running = {"fraction": 0.4, "message": "matching", "elapsed_s": 30.0, "eta_s": 45.0}
    world.put_json(progress_uri, {**running, "job": f"spaceport-local-sfm-{job_id}-r1-a1"})
    _, queued = get(client, f"/jobs/{job_id}")
    assert "progress" not in queued and queued["stage_percent"] == 0  # not started yet
    [requested] = [e for e in world.published() if e["detail-type"] == "JobRequested"]
    assert handle_stage_message(Stage.SFM, json.dumps(requested), world.ports) == "launched"
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
    body = {"s3Url": photos, "email": "pilot@example.com", "options": {"hyperparameters": hyperparameters}}
    status, answer, _ = post(client, "/jobs", body)
    assert status == 400 and answer["error"]["code"] == "bad_options" and problem in answer["error"]["message"]
    assert world.job_count() == 0 and world.published() == []
