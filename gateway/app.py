"""The Spaceport gateway (Chalice): the HTTP API the web app, ``spaceport run`` and integrations call.

Who may call what:

* the user routes take a Cognito ID token in ``Authorization``; API Gateway's Cognito user pool
  authorizer checks it (the local gateway does the same check) and hands its claims to the
  Lambda, which acts for that user (:func:`spaceport.auth.caller_from_claims`);
* ``/integration/...`` takes an integration's API key in ``x-api-key`` (API Gateway checks it
  against its usage plan: throttle and quota); the key's binding names the user it acts for;
* ``GET /share/{token}`` and the shared scene's files, and ``GET /openapi.json``, are public.

The logic lives in :mod:`spaceport.api`; this file maps routes to it.
"""

from collections.abc import Callable
from typing import Any

from chalice import CognitoUserPoolAuthorizer, CORSConfig, Response

from spaceport.adapters import default_ports
from spaceport.api import (
    IDEMPOTENCY_HEADER,
    ApiError,
    ApiResponse,
    cancel_job,
    create_job,
    create_upload,
    get_job,
    list_jobs,
    me,
    openapi_document,
    parse_body,
    reprocess_job,
    share_job,
    shared_scene_file,
    shared_view,
    start_job,
    unshare_job,
)
from spaceport.api.share import STREAMED_FOLDER
from spaceport.auth import Caller, NotSignedIn, caller_from_claims
from spaceport.auth.request import api_base_url
from spaceport.config import PipelineConfig
from spaceport.contracts.topology import GATEWAY
from spaceport.integrations import INTEGRATION_PREFIX, caller_for_key
from spaceport.unit_app import unit_app

_config = PipelineConfig.from_env()
app = unit_app(GATEWAY)
app.api.cors = CORSConfig(
    allow_origin=_config.cors_origin,
    allow_headers=["Content-Type", "Authorization", "Idempotency-Key"],
    max_age=600,
)
# The user pool's ARN comes from the deployment's environment, which Chalice also sets while it
# deploys (the authorizer is part of the API it creates).
signed_in = CognitoUserPoolAuthorizer(
    "SpaceportUsers", provider_arns=[_config.user_pool_arn] if _config.user_pool_arn else [], header="Authorization"
)

Handler = Callable[[Caller], ApiResponse]


def _caller() -> Caller:
    """The user a request acts for, from what API Gateway verified (never from the request's body)."""
    context = app.current_request.context or {}
    ports = default_ports(GATEWAY)
    claims = (context.get("authorizer") or {}).get("claims")
    if claims:
        return caller_from_claims(claims, ports.config.operators_group)
    key_id = (context.get("identity") or {}).get("apiKeyId")
    if key_id and app.current_request.path.startswith(INTEGRATION_PREFIX):
        return caller_for_key(ports, str(key_id))
    raise NotSignedIn("Sign in first: the request carries no user.")


def _respond(handle: Handler) -> Response:
    try:
        try:
            caller = _caller()
        except NotSignedIn as refused:
            raise ApiError(401, refused.code, refused.message) from None
        answer = handle(caller)
    except ApiError as error:
        return Response(body=error.body(), status_code=error.status)
    return Response(body=answer.body, status_code=answer.status, headers=answer.headers)


def _public(handle: Callable[[], ApiResponse]) -> Response:
    try:
        answer = handle()
    except ApiError as error:
        return Response(body=error.body(), status_code=error.status)
    return Response(body=answer.body, status_code=answer.status, headers=answer.headers)


def _body() -> dict[str, Any]:
    return parse_body(app.current_request.raw_body, default_ports(GATEWAY).config.max_body_bytes)


def _idempotency_key() -> str | None:
    return app.current_request.headers.get(IDEMPOTENCY_HEADER)


def _api_base() -> str:
    request = app.current_request
    return api_base_url(request.context or {}, request.headers)


# --- signed-in users (and, under /integration, an integration's API key) ---------------------


def _routes(prefix: str, **auth: Any) -> None:
    """The job routes, under ``prefix``, behind ``auth`` (the Cognito authorizer, or an API key)."""

    @app.route(f"{prefix}/jobs", methods=["POST"], **auth)
    def post_jobs():
        return _respond(lambda caller: create_job(default_ports(GATEWAY), caller, _body(), _idempotency_key()))

    @app.route(f"{prefix}/start-job", methods=["POST"], **auth)
    def post_start_job():
        return _respond(lambda caller: start_job(default_ports(GATEWAY), caller, _body(), _idempotency_key()))

    @app.route(f"{prefix}/uploads", methods=["POST"], **auth)
    def post_uploads():
        return _respond(lambda caller: create_upload(default_ports(GATEWAY), caller, _body()))

    @app.route(f"{prefix}/jobs", methods=["GET"], **auth)
    def get_jobs():
        return _respond(lambda caller: list_jobs(default_ports(GATEWAY), caller))

    @app.route(f"{prefix}/jobs/{{job_id}}", methods=["GET"], **auth)
    def get_one_job(job_id):
        return _respond(lambda caller: get_job(default_ports(GATEWAY), caller, job_id))

    @app.route(f"{prefix}/jobs/{{job_id}}/cancel", methods=["POST"], **auth)
    def post_cancel(job_id):
        return _respond(lambda caller: cancel_job(default_ports(GATEWAY), caller, job_id))

    @app.route(f"{prefix}/jobs/{{job_id}}/reprocess", methods=["POST"], **auth)
    def post_reprocess(job_id):
        return _respond(lambda caller: reprocess_job(default_ports(GATEWAY), caller, job_id, _body()))

    @app.route(f"{prefix}/me", methods=["GET"], **auth)
    def get_me():
        return _respond(lambda caller: me(default_ports(GATEWAY), caller))


_routes("", authorizer=signed_in)
_routes(INTEGRATION_PREFIX, api_key_required=True)


@app.route("/jobs/{job_id}/share", methods=["POST"], authorizer=signed_in)
def post_share(job_id):
    return _respond(lambda caller: share_job(default_ports(GATEWAY), caller, job_id, _api_base()))


@app.route("/jobs/{job_id}/share", methods=["DELETE"], authorizer=signed_in)
def delete_share(job_id):
    return _respond(lambda caller: unshare_job(default_ports(GATEWAY), caller, job_id))


# --- public ------------------------------------------------------------------------------------


@app.route("/share/{token}", methods=["GET"])
def get_shared(token):
    return _public(lambda: shared_view(default_ports(GATEWAY), token, _api_base()))


# Chalice routes have no greedy parameter: one route per depth of the scene's files.
@app.route("/share/{token}/scene/{name}", methods=["GET"])
def get_shared_file(token, name):
    return _public(lambda: shared_scene_file(default_ports(GATEWAY), token, name))


@app.route(f"/share/{{token}}/scene/{STREAMED_FOLDER}/{{name}}", methods=["GET"])
def get_shared_stream_index(token, name):
    return _public(lambda: shared_scene_file(default_ports(GATEWAY), token, f"{STREAMED_FOLDER}/{name}"))


@app.route(f"/share/{{token}}/scene/{STREAMED_FOLDER}/{{chunk}}/{{name}}", methods=["GET"])
def get_shared_stream_chunk(token, chunk, name):
    return _public(lambda: shared_scene_file(default_ports(GATEWAY), token, f"{STREAMED_FOLDER}/{chunk}/{name}"))


@app.route("/openapi.json", methods=["GET"])
def get_openapi():
    return _public(lambda: ApiResponse(200, openapi_document(default_ports(GATEWAY).config.public_base_url)))
