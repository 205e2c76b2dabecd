"""The gateway's OpenAPI 3.1 description (served at ``GET /openapi.json``).

>>> sorted(openapi_document("https://api.example.com")["paths"])[:2]
['/jobs', '/jobs/{jobId}']
"""

from __future__ import annotations

from typing import Any

from spaceport.api.endpoints import API_KEY_HEADER, PIPELINE_STEPS
from spaceport.contracts.events import JobOptions

_ERROR = {
    "description": "Refused: {error: {code, message}}",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_ACCEPTED = {
    "description": "Accepted",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
}
_IDEMPOTENCY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": 200},
    "description": "A repeated POST with the same key returns the same job.",
}
_JOB_ID = {"name": "jobId", "in": "path", "required": True, "schema": {"type": "string"}}


def _body(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema = {"type": "object", "additionalProperties": False, "properties": properties, "required": required or []}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): _ERROR for status in (401, 403, *statuses)}


def openapi_document(server_url: str) -> dict[str, Any]:
    options = JobOptions.model_json_schema()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Spaceport",
            "version": "1",
            "description": "Drone photos -> 3D Gaussian splat (SfM, training, SOG compression), emailed.",
        },
        "servers": [{"url": server_url}],
        "security": [{"apiKey": []}],
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}},
            "schemas": {
                "JobOptions": options,
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {
                            "type": "object",
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                        }
                    },
                },
                "Accepted": {
                    "type": "object",
                    "properties": {"jobId": {"type": "string"}, "statusUrl": {"type": "string"}},
                },
            },
        },
        "paths": {
            "/uploads": {
                "post": {
                    "summary": "A presigned URL to PUT the photos ZIP to",
                    "requestBody": {**_body({"filename": {"type": "string"}}), "required": False},
                    "responses": {"200": {"description": "uploadUrl, s3Url, uploadKey"}, **_errors(400)},
                }
            },
            "/jobs": {
                "post": {
                    "summary": "Start a job on uploaded photos",
                    "parameters": [_IDEMPOTENCY],
                    "requestBody": _body(
                        {
                            "s3Url": {"type": "string"},
                            "uploadKey": {"type": "string"},
                            "email": {"type": "string", "format": "email"},
                            "options": {"$ref": "#/components/schemas/JobOptions"},
                        },
                        ["email"],
                    ),
                    "responses": {"202": _ACCEPTED, **_errors(400, 409, 413, 422)},
                },
                "get": {
                    "summary": "A user's jobs",
                    "parameters": [{"name": "email", "in": "query", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "{jobs: [...]}"}, **_errors(400)},
                },
            },
            "/start-job": {
                "post": {
                    "summary": "The original frontend's contract",
                    "parameters": [_IDEMPOTENCY],
                    "requestBody": _body(
                        {
                            "s3Url": {"type": "string"},
                            "email": {"type": "string", "format": "email"},
                            "pipelineStep": {"enum": list(PIPELINE_STEPS)},
                            "existingColmapUri": {"type": "string"},
                            "hyperparameters": {"type": "object"},
                            "csvData": {"type": "string"},
                        },
                        ["email"],
                    ),
                    "responses": {"202": _ACCEPTED, **_errors(400, 409, 413, 422)},
                }
            },
            "/jobs/{jobId}": {
                "get": {
                    "summary": "Status, stage, progress, artifacts (links when done), error",
                    "parameters": [_JOB_ID],
                    "responses": {"200": {"description": "The job"}, **_errors(404)},
                }
            },
            "/jobs/{jobId}/cancel": {
                "post": {
                    "summary": "Stop the running job",
                    "parameters": [_JOB_ID],
                    "responses": {"202": {"description": "Cancelled"}, **_errors(404, 409)},
                }
            },
            "/jobs/{jobId}/reprocess": {
                "post": {
                    "summary": "A new run from a stage, on the earlier run's artifacts",
                    "parameters": [_JOB_ID],
                    "requestBody": _body(
                        {
                            "fromStage": {"enum": ["sfm", "train", "compress"]},
                            "options": {"$ref": "#/components/schemas/JobOptions"},
                        }
                    ),
                    "responses": {"202": _ACCEPTED, **_errors(400, 404, 409)},
                }
            },
        },
    }
