"""The gateway's logic, as plain functions over :class:`~spaceport.ports.Ports` and the caller.

``gateway/app.py`` (Chalice) only maps routes to these: for example
``create_job(ports, caller, {"uploadKey": key, "options": {"preset": "quick"}})``.
"""

from spaceport.api.endpoints import (
    API_KEY_HEADER,
    AUTHORIZATION_HEADER,
    IDEMPOTENCY_HEADER,
    ApiError,
    ApiResponse,
    cancel_job,
    create_job,
    create_upload,
    get_job,
    list_jobs,
    me,
    parse_body,
    reprocess_job,
    share_job,
    shared_scene_file,
    shared_view,
    start_job,
    unshare_job,
)
from spaceport.api.openapi import openapi_document

__all__ = [
    "API_KEY_HEADER",
    "AUTHORIZATION_HEADER",
    "IDEMPOTENCY_HEADER",
    "ApiError",
    "ApiResponse",
    "cancel_job",
    "create_job",
    "create_upload",
    "get_job",
    "list_jobs",
    "me",
    "openapi_document",
    "parse_body",
    "reprocess_job",
    "share_job",
    "shared_scene_file",
    "shared_view",
    "start_job",
    "unshare_job",
]
