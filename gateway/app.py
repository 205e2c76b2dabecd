"""The Spaceport gateway (Chalice): the HTTP API the frontend and ``spaceport run`` call.

Every route needs the ``x-api-key`` header (401 without it, 403 when wrong) except
``GET /openapi.json``. The logic lives in :mod:`spaceport.api`; this file maps routes to it.
"""

import hmac
from collections.abc import Callable
from typing import Any

from chalice import CORSConfig, Response

from spaceport.adapters import default_ports
from spaceport.api import (
    API_KEY_HEADER,
    IDEMPOTENCY_HEADER,
    ApiError,
    ApiResponse,
    cancel_job,
    create_job,
    create_upload,
    get_job,
    list_jobs,
    openapi_document,
    parse_body,
    reprocess_job,
    start_job,
)
from spaceport.config import PipelineConfig
from spaceport.contracts.topology import GATEWAY
from spaceport.unit_app import unit_app

app = unit_app(GATEWAY)
app.api.cors = CORSConfig(
    allow_origin=PipelineConfig.from_env().cors_origin,
    allow_headers=["Content-Type", "X-Api-Key", "Idempotency-Key"],
    max_age=600,
)


def _check_api_key() -> None:
    expected = default_ports(GATEWAY).config.api_key
    given = app.current_request.headers.get(API_KEY_HEADER)
    if not given:
        raise ApiError(401, "missing_api_key", f"Send your API key in the {API_KEY_HEADER} header.")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(403, "bad_api_key", "The API key is not valid.")


def _respond(handle: Callable[[], ApiResponse], authenticated: bool = True) -> Response:
    try:
        if authenticated:
            _check_api_key()
        answer = handle()
    except ApiError as error:
        return Response(body=error.body(), status_code=error.status)
    return Response(body=answer.body, status_code=answer.status, headers=answer.headers)


def _body() -> dict[str, Any]:
    return parse_body(app.current_request.raw_body, default_ports(GATEWAY).config.max_body_bytes)


def _idempotency_key() -> str | None:
    return app.current_request.headers.get(IDEMPOTENCY_HEADER)


@app.route("/jobs", methods=["POST"])
def post_jobs():
    return _respond(lambda: create_job(default_ports(GATEWAY), _body(), _idempotency_key()))


@app.route("/start-job", methods=["POST"])
def post_start_job():
    return _respond(lambda: start_job(default_ports(GATEWAY), _body(), _idempotency_key()))


@app.route("/uploads", methods=["POST"])
def post_uploads():
    return _respond(lambda: create_upload(default_ports(GATEWAY), _body()))


@app.route("/jobs", methods=["GET"])
def get_jobs():
    query = app.current_request.query_params or {}
    return _respond(lambda: list_jobs(default_ports(GATEWAY), query.get("email")))


@app.route("/jobs/{job_id}", methods=["GET"])
def get_one_job(job_id):
    return _respond(lambda: get_job(default_ports(GATEWAY), job_id))


@app.route("/jobs/{job_id}/cancel", methods=["POST"])
def post_cancel(job_id):
    return _respond(lambda: cancel_job(default_ports(GATEWAY), job_id))


@app.route("/jobs/{job_id}/reprocess", methods=["POST"])
def post_reprocess(job_id):
    return _respond(lambda: reprocess_job(default_ports(GATEWAY), job_id, _body()))


@app.route("/openapi.json", methods=["GET"])
def get_openapi():
    return _respond(
        lambda: ApiResponse(200, openapi_document(default_ports(GATEWAY).config.public_base_url)), authenticated=False
    )
