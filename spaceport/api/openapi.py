"""The gateway's OpenAPI 3.1 description (served at ``GET /openapi.json``).

>>> paths = openapi_document("https://api.example.com")["paths"]
>>> sorted(paths)[:2], paths["/integration/jobs"]["post"]["security"]
(['/integration/jobs', '/integration/jobs/{jobId}'], [{'apiKey': []}])
"""

from __future__ import annotations

import copy
from typing import Any

from spaceport.api.endpoints import API_KEY_HEADER, AUTHORIZATION_HEADER, PIPELINE_STEPS
from spaceport.api.share import STREAMED_FOLDER
from spaceport.contracts.events import JobOptions
from spaceport.integrations import INTEGRATION_PREFIX

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
_TOKEN = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
_PUBLIC: list[dict[str, Any]] = []  # no credential
# The job routes an integration also reaches under INTEGRATION_PREFIX, with its API key.
_JOB_ROUTES = (
    "/uploads",
    "/jobs",
    "/start-job",
    "/jobs/{jobId}",
    "/jobs/{jobId}/cancel",
    "/jobs/{jobId}/reprocess",
    "/me",
)


def _body(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema = {"type": "object", "additionalProperties": False, "properties": properties, "required": required or []}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): _ERROR for status in (401, 403, *statuses)}


def _scene_file(*names: str) -> dict[str, Any]:
    parameters = [_TOKEN, *({"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names)]
    return {
        "get": {
            "summary": "A file of the shared scene: a redirect to a short-lived link",
            "security": _PUBLIC,
            "parameters": parameters,
            "responses": {"302": {"description": "Location: the file"}, "404": _ERROR},
        }
    }


def _for_integrations(paths: dict[str, Any]) -> dict[str, Any]:
    """The job routes again under the integration prefix, taking an API key instead of a sign-in."""
    routes = {}
    for path in _JOB_ROUTES:
        item = copy.deepcopy(paths[path])
        for operation in item.values():
            operation["security"] = [{"apiKey": []}]
            operation["responses"]["429"] = {"description": "The key's throttle or quota was reached"}
        routes[f"{INTEGRATION_PREFIX}{path}"] = item
    return routes


def openapi_document(server_url: str) -> dict[str, Any]:
    options = JobOptions.model_json_schema()
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Spaceport",
            "version": "1",
            "description": "Drone photos -> 3D Gaussian splat (SfM, training, SOG compression), emailed.",
        },
        "servers": [{"url": server_url}],
        "security": [{"idToken": []}],
        "components": {
            "securitySchemes": {
                "idToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": AUTHORIZATION_HEADER.capitalize(),
                    "description": "The Cognito ID token of the user's sign-in",
                },
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": API_KEY_HEADER,
                    "description": f"An integration's key (routes under {INTEGRATION_PREFIX} only)",
                },
            },
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
                    "summary": "A presigned form to POST the photos ZIP to (under your own folder)",
                    "requestBody": {**_body({"filename": {"type": "string"}}), "required": False},
                    "responses": {"200": {"description": "uploadUrl, uploadFields, s3Url, uploadKey"}, **_errors(400)},
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
                            "flightLog": {"type": "string"},
                        },
                    ),
                    "responses": {"202": _ACCEPTED, **_errors(400, 409, 413, 422, 429)},
                },
                "get": {
                    "summary": "Your jobs, newest first",
                    "responses": {"200": {"description": "{jobs: [...]}"}, **_errors()},
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
                    ),
                    "responses": {"202": _ACCEPTED, **_errors(400, 404, 409, 413, 422, 429)},
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
                    "responses": {"202": _ACCEPTED, **_errors(400, 404, 409, 429)},
                }
            },
            "/jobs/{jobId}/share": {
                "post": {
                    "summary": "A new share link for the job's scene (an earlier one stops working)",
                    "parameters": [_JOB_ID],
                    "responses": {"200": {"description": "token, shareUrl, shareApiUrl"}, **_errors(404, 409)},
                },
                "delete": {
                    "summary": "Revoke the share link",
                    "parameters": [_JOB_ID],
                    "responses": {"200": {"description": "Not shared"}, **_errors(404)},
                },
            },
            "/me": {
                "get": {
                    "summary": "Who you are, your limits and what you use of them",
                    "responses": {"200": {"description": "sub, email, operator, limits"}, **_errors()},
                }
            },
            "/share/{token}": {
                "get": {
                    "summary": "A shared scene's public view: its links and figures (no email, no S3 address)",
                    "security": _PUBLIC,
                    "parameters": [_TOKEN],
                    "responses": {"200": {"description": "status, summary, georeference, links"}, "404": _ERROR},
                }
            },
            "/share/{token}/scene/{name}": _scene_file("name"),
            f"/share/{{token}}/scene/{STREAMED_FOLDER}/{{name}}": _scene_file("name"),
            f"/share/{{token}}/scene/{STREAMED_FOLDER}/{{chunk}}/{{name}}": _scene_file("chunk", "name"),
        },
    }
    document["paths"].update(_for_integrations(document["paths"]))
    return document
