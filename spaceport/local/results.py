"""A finished run's results on disk: its files, its record and the email it sent.

``spaceport run`` and ``spaceport replay --job`` save into ``OUT/<job>/`` (``OUT/<job>/<run>/``
after the first run): the scene and splat, the reports, ``job.json`` and the email moto's SES
kept (``email.eml``, and its HTML part as ``email.html``). ``spaceport view`` serves them again
(:class:`SavedResultsServer`): the job page, the viewer and every link of the saved email.
"""

from __future__ import annotations

import functools
import json
import mimetypes
import re
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

import boto3

from spaceport.contracts.job import JobRecord
from spaceport.contracts.links import status_url, viewer_url
from spaceport.contracts.s3_uri import S3Location
from spaceport.files import atomic_path, write_atomic
from spaceport.handlers.results import DOWNLOADS
from spaceport.handlers.stage_jobs import flight_path
from spaceport.local.aws import sent_emails

# Artifacts that stay in S3: folders (the SfM tree), archives and the photos.
_KEPT_IN_S3 = ("/", ".tar.gz", ".zip")
JOB_FILE = "job.json"


def run_folder(out_root: Path, record: JobRecord) -> Path:
    return out_root / record.job_id if record.run_id == "r1" else out_root / record.job_id / record.run_id


def save_outputs(record: JobRecord, out_root: Path, aws_endpoint: str) -> Path:
    """Download the run's results and its email into its :func:`run_folder`; returns the folder."""
    out_dir = run_folder(out_root, record)
    out_dir.mkdir(parents=True, exist_ok=True)
    s3 = boto3.client("s3")
    for name, uri in sorted(record.artifacts.items()):
        if not uri.startswith("s3://") or uri.endswith(_KEPT_IN_S3):
            continue
        where = S3Location.parse(uri)
        with atomic_path(out_dir / _saved_name(name, uri)) as partial:
            s3.download_file(where.bucket, where.key, str(partial))
    write_atomic(out_dir / JOB_FILE, record.model_dump_json(indent=2))
    email = latest_email(aws_endpoint, record)
    if email is not None:
        write_atomic(out_dir / "email.eml", email.as_bytes())
        html = next((part for part in email.walk() if part.get_content_type() == "text/html"), None)
        if html is not None:
            write_atomic(out_dir / "email.html", _payload(html))
    return out_dir


def _saved_name(artifact: str, uri: str) -> str:
    """The saved file of an artifact: the scene, its exports and the splat keep their names, a report is
    named for its artifact."""
    file_name = PurePosixPath(S3Location.parse(uri).key).name
    keeps_name = file_name.endswith((".sog", ".ply", ".spz", ".glb"))
    return file_name if keeps_name else f"{artifact}{PurePosixPath(file_name).suffix}"


def latest_email(aws_endpoint: str, record: JobRecord) -> Message | None:
    """The last email SES accepted for this job."""
    mine = [m for m in sent_emails(aws_endpoint) if record.email in (m.get("To") or "") and _mentions(m, record.job_id)]
    return mine[-1] if mine else None


def _payload(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _mentions(email: Message, text: str) -> bool:
    """Whether ``text`` appears in the email's subject or any decoded text part."""
    parts = [email.get("Subject") or ""]
    parts += [_payload(part).decode(errors="replace") for part in email.walk() if part.get_content_maintype() == "text"]
    return any(text in part for part in parts)


class SavedResultsServer:
    """Serves saved runs (``OUT/<job>/``) as the gateway served them: the web app, its job page and
    viewer, ``GET /jobs/<id>`` from the saved record with links to the saved files.

    So the links of a saved email (``/jobs/<id>``, ``/view/<id>`` on the local gateway's address)
    work again after the stack that sent it is gone.
    """

    def __init__(self, out_root: Path, port: int, web_dist: Path | None, host: str = "127.0.0.1") -> None:
        self.out_root = out_root.resolve()
        self.web_dist = web_dist.resolve() if web_dist is not None and web_dist.is_dir() else None
        self.base_url = f"http://{host}:{port}"
        self._server = ThreadingHTTPServer((host, port), functools.partial(_SavedHandler, self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="saved-results", daemon=True)

    def start(self) -> SavedResultsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def job_view(self, job_id: str) -> dict[str, Any] | None:
        """The saved run of ``job_id`` as ``GET /jobs/<id>`` showed it, links to the saved files."""
        folder = self.out_root / job_id
        record_file = folder / JOB_FILE
        if not re.fullmatch(r"[0-9a-z]{1,64}", job_id) or not record_file.is_file():
            return None
        record = JobRecord.model_validate_json(record_file.read_text())
        view: dict[str, Any] = record.model_dump(mode="json", exclude={"notifications", "position"})
        view["jobId"] = job_id
        view["statusUrl"] = status_url(self.base_url, job_id)
        georeference = record.summary.get("sfm_georeference")
        if isinstance(georeference, dict):
            view["georeference"] = georeference
        links = {name: self._file_url(job_id, folder, name, artifact) for name, artifact in record.artifacts.items()}
        view["links"] = {name: url for name, url in links.items() if url and name in DOWNLOADS}
        view["links"]["viewer"] = viewer_url(self.base_url, job_id)
        # Saved under its artifact's name, as every report is (_saved_name).
        reported = record.artifacts.get("sfm_report")
        sfm_report = folder / _saved_name("sfm_report", reported) if reported else None
        if sfm_report is not None and sfm_report.is_file():
            view["flightPath"] = flight_path(json.loads(sfm_report.read_text()))
        return view

    def _file_url(self, job_id: str, folder: Path, name: str, artifact: str) -> str | None:
        saved = folder / _saved_name(name, artifact)
        return f"{self.base_url}/files/{job_id}/{saved.name}" if saved.is_file() else None

    def saved_file(self, job_id: str, name: str) -> Path | None:
        folder = (self.out_root / job_id).resolve()
        candidate = (folder / unquote(name)).resolve()
        return candidate if candidate.parent == folder and candidate.is_file() else None

    def site_file(self, path: str, accept: str) -> Path | None:
        if self.web_dist is None:
            return None
        candidate = (self.web_dist / (unquote(path).lstrip("/") or "index.html")).resolve()
        if candidate.is_relative_to(self.web_dist) and candidate.is_file():
            return candidate
        index = self.web_dist / "index.html"
        return index if "text/html" in accept and index.is_file() else None


class _SavedHandler(BaseHTTPRequestHandler):
    def __init__(self, saved: SavedResultsServer, *args: Any) -> None:
        self.saved = saved
        super().__init__(*args)

    def do_GET(self) -> None:
        path = urlparse(self.path).path
        parts = path.strip("/").split("/")
        accept = self.headers.get("Accept", "")
        if path == "/config.json":
            return self._send(200, "application/json", json.dumps({"apiBaseUrl": self.saved.base_url}).encode())
        # /jobs/<id> is the job page to a browser and the API's job to the page's fetch, as on the gateway.
        if len(parts) == 2 and parts[0] == "jobs" and "text/html" not in accept:
            view = self.saved.job_view(parts[1])
            if view is None:
                return self._send(404, "application/json", b'{"error": "job_not_found"}')
            return self._send(200, "application/json", json.dumps(view).encode())
        if len(parts) == 3 and parts[0] == "files":
            found = self.saved.saved_file(parts[1], parts[2])
            if found is None:
                return self._send(404, "text/plain", b"not found")
            return self._send(
                200, mimetypes.guess_type(found.name)[0] or "application/octet-stream", found.read_bytes()
            )
        page = self.saved.site_file(path, self.headers.get("Accept", ""))
        if page is None:
            return self._send(404, "text/plain", b"not found")
        return self._send(200, mimetypes.guess_type(page.name)[0] or "application/octet-stream", page.read_bytes())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass
