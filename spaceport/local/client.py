"""A small client of the gateway's HTTP API, as the web app uses it (standard library only).

Example::

    api = GatewayClient("http://127.0.0.1:8000", api_key="...")
    s3_url = api.upload(Path("photos.zip"))
    job_id = api.create_job(s3_url, "a@b.c", {"preset": "quick"})
    api.get_job(job_id)["status"]
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode
from spaceport.local.http_server import API_KEY_HEADER


class GatewayRequestError(SpaceportError):
    """The gateway refused a request; ``message`` carries its JSON error."""

    code = "gateway_refused"
    exit_code = ExitCode.GATEWAY_REFUSED

    def __init__(self, message: str, status: int, body: Any = None) -> None:
        super().__init__(message, status=status)
        self.status = status
        self.body = body


class GatewayClient:
    def __init__(self, base_url: str, api_key: str, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """Send one JSON request; returns ``(status, decoded JSON body)``; 4xx/5xx raise."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            data=data,
            method=method,
            headers={API_KEY_HEADER: self.api_key, "Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.status, _decode(response.read())
        except urllib.error.HTTPError as error:
            answer = _decode(error.read())
            detail = answer.get("message") or answer.get("Message") or answer if isinstance(answer, dict) else answer
            raise GatewayRequestError(f"{method} {path} answered {error.code}: {detail}", error.code, answer) from None
        except urllib.error.URLError as error:
            raise GatewayRequestError(f"Cannot reach the gateway at {self.base_url}: {error.reason}", 0) from None

    def upload(self, zip_path: Path) -> str:
        """``POST /uploads``, then PUT the ZIP to the presigned URL; returns its ``s3Url``."""
        _, answer = self.request("POST", "/uploads", {"filename": zip_path.name})
        with zip_path.open("rb") as photos:
            put = urllib.request.Request(
                answer["uploadUrl"], data=photos.read(), method="PUT", headers={"Content-Type": "application/zip"}
            )
        try:
            with urllib.request.urlopen(put, timeout=max(self.timeout_s, 300)) as response:
                response.read()
        except urllib.error.HTTPError as error:
            raise GatewayRequestError(
                f"The upload of {zip_path.name} was refused ({error.code}).", error.code
            ) from None
        return answer["s3Url"]

    def create_job(self, s3_url: str, email: str, options: dict[str, Any], idempotency_key: str | None = None) -> str:
        """``POST /jobs``; returns the job id."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        _, answer = self.request("POST", "/jobs", {"s3Url": s3_url, "email": email, "options": options}, headers)
        return answer["jobId"]

    def get_job(self, job_id: str) -> dict[str, Any]:
        return self.request("GET", f"/jobs/{job_id}")[1]

    def cancel(self, job_id: str) -> dict[str, Any]:
        """``POST /jobs/{id}/cancel``: stop the running stage's job."""
        return self.request("POST", f"/jobs/{job_id}/cancel", {})[1]

    def reprocess(self, job_id: str, from_stage: str, options: dict[str, Any]) -> dict[str, Any]:
        """``POST /jobs/{id}/reprocess``: a new run of the job from ``from_stage``."""
        return self.request("POST", f"/jobs/{job_id}/reprocess", {"fromStage": from_stage, "options": options})[1]


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {"message": raw.decode(errors="replace")[:500]}
