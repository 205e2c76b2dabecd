"""The gateway's logic, as plain functions over :class:`~spaceport.ports.Ports`.

``gateway/app.py`` (Chalice) only maps routes to these: for example
``create_job(ports, {"uploadKey": key, "email": "a@b.co", "options": {"preset": "quick"}})``.
"""

from spaceport.api.endpoints import (
    API_KEY_HEADER,
    IDEMPOTENCY_HEADER,
    ApiError,
    ApiResponse,
    cancel_job,
    create_job,
    create_upload,
    get_job,
    list_jobs,
    parse_body,
    reprocess_job,
    start_job,
)
from spaceport.api.openapi import openapi_document

__all__ = [
    "API_KEY_HEADER",
    "IDEMPOTENCY_HEADER",
    "ApiError",
    "ApiResponse",
    "cancel_job",
    "create_job",
    "create_upload",
    "get_job",
    "list_jobs",
    "openapi_document",
    "parse_body",
    "reprocess_job",
    "start_job",
]
