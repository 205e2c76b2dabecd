"""Every route against every kind of caller, through the local gateway over HTTP.

The callers: no credential, an expired ID token, one signed by another key, one of another user
pool, one issued to another app client, another user, the owner, an operator, and a share token
(valid or revoked) sent as if it were a sign-in. Each gets its status; a refusal leaves nothing
behind: no job, no copy of an upload, no email, no upload form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from spaceport.contracts.job import JobStatus

Headers = dict[str, str]
CALLERS = (
    "anonymous",
    "expired",
    "wrong key",
    "other pool",
    "other audience",
    "other user",
    "owner",
    "operator",
    "share token",
    "revoked share token",
)


def credentials(h: Any, caller: str) -> Headers:
    token = {
        "anonymous": None,
        "expired": h.tokens["expired"],
        "wrong key": h.tokens["wrong key"],
        "other pool": h.tokens["other pool"],
        "other audience": h.tokens["other audience"],
        "other user": h.other.id_token,
        "owner": h.owner.id_token,
        "operator": h.operator.id_token,
        "share token": h.tokens["share"],
        "revoked share token": h.tokens["revoked share"],
    }[caller]
    return {"Authorization": token} if token else {}


def _job(h: Any, status: JobStatus = JobStatus.QUEUED) -> str:
    return h.job(h.owner, status)[0]


Request = tuple[str, str, Any]  # method, path, JSON body


def _bucket_uri(h: Any, key: str) -> str:
    return f"s3://{h.config.uploads_bucket}/{key}"


# route -> (what to send, made ready for each case: a fresh job or upload of the owner; the status
# each signed-in caller gets). Every caller not named gets API Gateway's 401: no sign-in to this app.
ROUTES: dict[str, tuple[Callable[[Any], Request], dict[str, int]]] = {
    "POST /uploads": (
        lambda h: ("POST", "/uploads", {"filename": "p.zip"}),
        {"other user": 200, "owner": 200, "operator": 200},
    ),
    "POST /jobs": (
        lambda h: ("POST", "/jobs", {"uploadKey": h.upload(h.owner)}),
        {"other user": 403, "owner": 202, "operator": 403},
    ),
    "POST /start-job": (
        lambda h: ("POST", "/start-job", {"s3Url": _bucket_uri(h, h.upload(h.owner))}),
        {"other user": 403, "owner": 202, "operator": 403},
    ),
    "GET /jobs": (lambda h: ("GET", "/jobs", None), {"other user": 200, "owner": 200, "operator": 200}),
    "GET /me": (lambda h: ("GET", "/me", None), {"other user": 200, "owner": 200, "operator": 200}),
    "GET /jobs/{id}": (
        lambda h: ("GET", f"/jobs/{_job(h)}", None),
        {"other user": 404, "owner": 200, "operator": 200},
    ),
    "POST /jobs/{id}/cancel": (
        lambda h: ("POST", f"/jobs/{_job(h)}/cancel", {}),
        {"other user": 404, "owner": 202, "operator": 202},
    ),
    "POST /jobs/{id}/reprocess": (
        lambda h: ("POST", f"/jobs/{_job(h, JobStatus.SUCCEEDED)}/reprocess", {"fromStage": "sfm"}),
        {"other user": 404, "owner": 202, "operator": 202},
    ),
    "POST /jobs/{id}/share": (
        lambda h: ("POST", f"/jobs/{_job(h, JobStatus.SUCCEEDED)}/share", {}),
        {"other user": 404, "owner": 200, "operator": 200},
    ),
    "DELETE /jobs/{id}/share": (
        lambda h: ("DELETE", f"/jobs/{h.job(h.owner, JobStatus.SUCCEEDED, shared=True)[0]}/share", None),
        {"other user": 404, "owner": 200, "operator": 200},
    ),
}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", list(ROUTES))
def test_each_caller_gets_its_status_and_a_refusal_leaves_nothing(harness, route, caller):
    prepare, allowed = ROUTES[route]
    headers = credentials(harness, caller)
    method, path, body = prepare(harness)
    before = harness.footprint()
    status, answer, _ = harness.request(method, path, body, headers)
    assert status == allowed.get(caller, 401), (route, caller, answer)
    if status >= 400:
        assert harness.footprint() == before, f"{route} refused {caller} but left something behind"
        assert "uploadUrl" not in answer and "token" not in answer
    if status == 401:
        assert answer == {"message": "Unauthorized"}, "API Gateway's answer, before the app runs"


def test_what_the_owner_and_an_operator_may_do_is_what_they_did(harness):
    """The successes of the matrix, looked at: whose job, what was recorded, what the listing shows."""
    owner = {"Authorization": harness.owner.id_token}
    operator = {"Authorization": harness.operator.id_token}
    status, created, _ = harness.request("POST", "/jobs", {"uploadKey": harness.upload(harness.owner)}, owner)
    assert status == 202
    record = harness.ports.store.get(created["jobId"])
    assert record.owner == harness.owner.sub and record.email == "owner@example.com"
    listed = {job["jobId"] for job in harness.request("GET", "/jobs", None, owner)[1]["jobs"]}
    assert created["jobId"] in listed
    assert created["jobId"] not in {
        job["jobId"]
        for job in harness.request("GET", "/jobs", None, {"Authorization": harness.other.id_token})[1]["jobs"]
    }
    job_id = _job(harness)
    assert harness.request("POST", f"/jobs/{job_id}/cancel", {}, operator)[0] == 202
    [action] = harness.ports.store.get(job_id).operator_actions
    assert (action.action, action.operator, action.operator_email) == (
        "cancel",
        harness.operator.sub,
        "ops@example.com",
    )
    me = harness.request("GET", "/me", None, operator)[1]
    assert me["operator"] is True and me["email"] == "ops@example.com" and "maxConcurrentJobs" in me["limits"]


# --- the public share routes: the token in the path is the credential


def _share_paths(token: str) -> dict[str, str]:
    return {
        "view": f"/share/{token}",
        "scene": f"/share/{token}/scene/scene.sog",
        "stream index": f"/share/{token}/scene/lod/lod-meta.json",
        "stream chunk": f"/share/{token}/scene/lod/0_0/meta.json",
    }


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("what", list(_share_paths("t")))
def test_a_share_link_opens_for_anyone_until_it_is_revoked(harness, what, caller):
    job_id, token = harness.job(harness.owner, JobStatus.SUCCEEDED, shared=True)
    headers = credentials(harness, caller)
    expected = 200 if what == "view" else 302
    status, body, answer_headers = harness.request("GET", _share_paths(token)[what], None, headers)
    assert status == expected, (what, caller, body)
    if what == "view":
        text = str(body)
        assert "owner@example.com" not in text and "s3://" not in text and harness.owner.sub not in text
        assert body["links"]["viewer"].endswith(f"/view/share/{token}")
        assert body["links"]["streamed"] == f"{harness.url}/share/{token}/scene/lod/lod-meta.json"
        assert body["summary"]["train_psnr"] == 25.0
    else:
        location = answer_headers["Location"]
        assert f"/{job_id}/r1/" in location and "X-Amz-Signature" in location, "a presigned link to that one file"
    # Revoked (or never issued, or not a token at all): 404, as for any unknown link.
    assert harness.request("DELETE", f"/jobs/{job_id}/share", None, {"Authorization": harness.owner.id_token})[0] == 200
    for dead in (token, harness.tokens["revoked share"], "not-a-token", "..%2F..%2Fetc"):
        assert harness.request("GET", _share_paths(dead)[what], None, headers)[0] == 404, (what, dead)


def test_a_share_link_serves_only_scene_files_and_a_new_one_replaces_the_old(harness):
    job_id, token = harness.job(harness.owner, JobStatus.SUCCEEDED, shared=True)
    for path in ("metrics.json", "job-report.json", "lod/..%2Fjob-report.json", "lod/a%2Fb/c.json"):
        assert harness.request("GET", f"/share/{token}/scene/{path}")[0] == 404, path
    assert harness.request("GET", f"/share/{token}/scene/lod/a/b/c.json")[0] == 403, "no such route: API Gateway's 403"
    owner = {"Authorization": harness.owner.id_token}
    status, made, _ = harness.request("POST", f"/jobs/{job_id}/share", {}, owner)
    assert status == 200 and made["shareUrl"].endswith(f"/view/share/{made['token']}") and len(made["token"]) >= 43
    assert harness.request("GET", f"/share/{token}")[0] == 404, "the earlier link stopped working"
    assert harness.request("GET", f"/share/{made['token']}")[0] == 200
    stored = harness.ports.store.get(job_id)
    assert made["token"] not in str(stored.model_dump()), "only the token's hash is stored"
    assert harness.request("GET", f"/jobs/{job_id}", None, owner)[1]["shared"] is True


# --- integrations: the API key is the credential, bound to its user


INTEGRATION_ROUTES: dict[str, Callable[[Any], Request]] = {
    "POST /integration/uploads": lambda h: ("POST", "/integration/uploads", {}),
    "POST /integration/jobs": lambda h: ("POST", "/integration/jobs", {"uploadKey": h.upload(h.owner)}),
    "POST /integration/start-job": lambda h: (
        "POST",
        "/integration/start-job",
        {"s3Url": _bucket_uri(h, h.upload(h.owner))},
    ),
    "GET /integration/jobs": lambda h: ("GET", "/integration/jobs", None),
    "GET /integration/me": lambda h: ("GET", "/integration/me", None),
    "GET /integration/jobs/{id}": lambda h: ("GET", f"/integration/jobs/{_job(h)}", None),
    "POST /integration/jobs/{id}/cancel": lambda h: ("POST", f"/integration/jobs/{_job(h)}/cancel", {}),
    "POST /integration/jobs/{id}/reprocess": lambda h: (
        "POST",
        f"/integration/jobs/{_job(h, JobStatus.SUCCEEDED)}/reprocess",
        {"fromStage": "sfm"},
    ),
}
KEYS = ("no key", "wrong key", "a sign-in instead", "the owner's key")


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("route", list(INTEGRATION_ROUTES))
def test_integration_routes_take_a_bound_api_key_only(harness, route, key):
    headers = {
        "no key": {},
        "wrong key": {"x-api-key": "not-a-key-" + "x" * 30},
        "a sign-in instead": {"Authorization": harness.owner.id_token},
        "the owner's key": {"x-api-key": harness.api_key},
    }[key]
    method, path, body = INTEGRATION_ROUTES[route](harness)
    before = harness.footprint()
    status, body, _ = harness.request(method, path, body, headers)
    if key != "the owner's key":
        assert status == 403 and body == {"message": "Forbidden"}, (route, key, body)
        assert harness.footprint() == before
    else:
        assert status in (200, 202), (route, body)
        if route == "GET /integration/me":
            assert body["sub"] == harness.owner.sub and body["email"] == "owner@example.com"


def test_an_operator_issues_a_key_for_a_verified_user_only(harness):
    import boto3

    from spaceport.integrations import IntegrationKeyError, find_usage_plan, find_user_pool, issue_key

    apigateway, cognito = boto3.client("apigateway"), boto3.client("cognito-idp")
    plan, pool = find_usage_plan(apigateway, "local"), find_user_pool(cognito, "local")
    assert pool == harness.pool.pool_id
    cognito.sign_up(ClientId=harness.pool.client_id, Username="unverified@example.com", Password="a long password")
    for email, problem in (("nobody@example.com", "no user"), ("unverified@example.com", "not verified")):
        with pytest.raises(IntegrationKeyError, match=problem):
            issue_key(apigateway, cognito, harness.ports, plan, pool, email, "backend")
    with pytest.raises(IntegrationKeyError, match="deploy the stack"):
        find_usage_plan(apigateway, "elsewhere")
    key = issue_key(apigateway, cognito, harness.ports, plan, pool, "Other@Example.com", "their backend")
    status, me, _ = harness.request("GET", "/integration/me", None, {"x-api-key": key.value})
    assert status == 200 and me["sub"] == harness.other.sub and me["email"] == "other@example.com"
