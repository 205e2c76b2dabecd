"""The gateway's logic, as plain functions over :class:`~spaceport.adapters.Ports`.

``gateway/app.py`` (Chalice) only maps routes to these.

Example::

    from spaceport.api import ApiError, create_job
    response = create_job(ports, {"uploadKey": key, "email": "a@b.c", "options": {"preset": "quick"}})
"""

from spaceport.api.endpoints import (
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
