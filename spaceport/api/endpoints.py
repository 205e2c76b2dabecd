"""The gateway's logic: validate a request, create or change the job, publish its event.

Each function takes the :class:`~spaceport.ports.Ports`, the :class:`~spaceport.auth.Caller`
the request acts for, and the request's parsed parts, and returns an :class:`ApiResponse`; a
refused request raises :class:`ApiError` (a 4xx with a stable ``code`` and a plain ``message``)
before anything is written.

A job belongs to the user who created it: its owner, and the members of the operators group,
see and act on it; anyone else is told there is no such job (404), so that its existence is not
revealed. What an operator does to someone else's job is recorded on the job.

>>> validate_options({"preset": "quick", "shBands": 1}).sh_bands
1
>>> try:
...     validate_options({"preset": "fastest"})
... except ApiError as error:
...     print(error.status, error.code)
400 bad_options
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from spaceport.api.limits import check_limits, usage
from spaceport.api.share import find_shared, public_view, scene_link, share_links
from spaceport.auth import Caller, hash_share_token, new_share_token
from spaceport.contracts.events import JobCancelled, JobOptions, JobRequested
from spaceport.contracts.job import JobRecord, JobStatus, OperatorAction, Phase, RunRecord, position, run_number
from spaceport.contracts.layout import FLIGHT_PLAN_ARTIFACT
from spaceport.contracts.links import is_email_address, status_url, viewer_url
from spaceport.contracts.s3_uri import S3Location
from spaceport.contracts.stages import JOB_STAGES, Stage
from spaceport.contracts.topology import SageMakerJobKey
from spaceport.contracts.training import BadTrainingSettings, check_hyperparameters
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode
from spaceport.handlers.results import download_links
from spaceport.handlers.stage_jobs import flight_path, stage_input
from spaceport.ports import Ports

# The headers a client sends: its sign-in (a Cognito ID token), an integration's API key, and a
# key that makes a repeated POST return the same job.
AUTHORIZATION_HEADER = "authorization"
API_KEY_HEADER = "x-api-key"
IDEMPOTENCY_HEADER = "idempotency-key"
ZIP_MAGIC = b"PK\x03\x04"
ZIP_CONTENT_TYPE = "application/zip"
# Which earlier artifact a run starting at a stage needs.
NEEDS = {Stage.TRAIN: "sfm", Stage.COMPRESS: "train"}
PIPELINE_STEPS = {"sfm": Stage.SFM, "3dgs": Stage.TRAIN, "compression": Stage.COMPRESS}
# The seed frontend's names for training settings, and ours.
SEED_SETTING_NAMES = {"max_steps": "steps"}
UPLOAD_URL_TTL_S = 3600


class ApiError(SpaceportError):
    """A refused request: ``status`` is its HTTP status, ``code`` says which rule it broke."""

    exit_code = ExitCode.API_REFUSED

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message, **details)
        self.status = status
        self.code = code

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.details}}


@dataclass(frozen=True)
class ApiResponse:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def parse_body(raw: bytes | str | None, max_bytes: int) -> dict[str, Any]:
    """The request's JSON object; refuses an oversized body or anything that is not a JSON object."""
    data = raw.encode() if isinstance(raw, str) else (raw or b"")
    if len(data) > max_bytes:
        raise ApiError(413, "body_too_large", f"The request body is over {max_bytes} bytes.", limit_bytes=max_bytes)
    if not data.strip():
        return {}
    try:
        value = json.loads(data)
    except ValueError:
        raise ApiError(400, "bad_json", "The request body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise ApiError(400, "bad_json", "The request body must be a JSON object.")
    return value


def _refuse_unknown(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, "unknown_field", f"Unknown field(s): {', '.join(unknown)}.", allowed=sorted(allowed))


def validate_email(value: Any) -> str:
    if not isinstance(value, str) or not is_email_address(value.strip()):
        raise ApiError(400, "bad_email", "Give the email address the results should go to, like name@example.com.")
    return value.strip()


def validate_options(value: Any, base: JobOptions | None = None, **fixed: Any) -> JobOptions:
    """``value`` (camelCase or snake_case keys) over ``base``; unknown options are refused."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ApiError(400, "bad_options", "options must be a JSON object.")
    names = {"fromStage": "from_stage", "shBands": "sh_bands"}
    given: dict[str, Any] = {names.get(str(k), str(k)): v for k, v in value.items()}
    merged = {**(base.model_dump() if base else {}), **given, **fixed}
    try:
        options = JobOptions.model_validate(merged)
    except ValidationError as error:
        problems = [
            {"option": ".".join(str(part) for part in problem["loc"]), "problem": problem["msg"]}
            for problem in error.errors()
        ]
        listing = "; ".join(f"{p['option']}: {p['problem']}" for p in problems)
        raise ApiError(400, "bad_options", f"Some options are not valid: {listing}.", problems=problems) from None
    try:
        # What the training job accepts, checked now rather than after SfM was paid for.
        check_hyperparameters(options.hyperparameters)
    except BadTrainingSettings as error:
        problems = [{"option": "hyperparameters", "problem": problem} for problem in error.problems]
        raise ApiError(
            400, "bad_options", f"Some training settings are not valid: {error.message}.", problems=problems
        ) from None
    return options


def _in_buckets(uri: Any, buckets: tuple[str, ...], what: str) -> S3Location:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ApiError(400, "bad_s3_url", f"{what} must be an s3:// address in the {buckets[0]} bucket.")
    where = S3Location.parse(uri)
    if where.bucket not in buckets or not where.key or ".." in where.key.split("/"):
        raise ApiError(
            400, "bad_s3_url", f"{what} must point into the {' or '.join(buckets)} bucket, not {where.bucket}."
        )
    return where


@dataclass(frozen=True)
class CheckedPhotos:
    """The caller's upload as checked: where it is and which version of it (its ETag) was checked."""

    uri: str
    etag: str


def validate_photos(ports: Ports, caller: Caller, s3_url: Any = None, upload_key: Any = None) -> CheckedPhotos:
    """The caller's own photos ZIP, after checking that it exists, is a ZIP and is not too big."""
    config = ports.config
    if (s3_url is None) == (upload_key is None):
        raise ApiError(400, "missing_input", "Give exactly one of s3Url or uploadKey (from POST /uploads).")
    if upload_key is not None:
        if not isinstance(upload_key, str) or not upload_key or upload_key.startswith("/") or ".." in upload_key:
            raise ApiError(400, "bad_upload_key", "uploadKey must be the key POST /uploads returned.")
        s3_url = f"s3://{config.uploads_bucket}/{upload_key}"
    where = _in_buckets(s3_url, (config.uploads_bucket,), "s3Url")
    if not where.uri.startswith(config.layout.user_uploads(caller.subject)):
        raise ApiError(403, "not_your_upload", "s3Url must be one of your own uploads (from POST /uploads).")
    head = ports.objects.head(where.uri)
    if head is None:
        raise ApiError(422, "upload_not_found", f"There is no file at {where.uri}: upload the ZIP first.")
    if head.size > config.max_upload_bytes:
        raise ApiError(
            422,
            "upload_too_large",
            f"The ZIP is {head.size} bytes; the limit is {config.max_upload_bytes} bytes.",
            limit_bytes=config.max_upload_bytes,
        )
    etag = head.etag or ""
    if head.size < len(ZIP_MAGIC) or ports.objects.read_prefix(where.uri, len(ZIP_MAGIC), etag) != ZIP_MAGIC:
        raise ApiError(422, "not_a_zip", "The upload is not a ZIP file: put the photos in a .zip and upload that.")
    return CheckedPhotos(where.uri, etag)


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _job_id(idempotency_key: str | None, owner: str) -> str:
    """A fresh id, or for an Idempotency-Key the same id every time (keys are scoped by the owner)."""
    if idempotency_key is None:
        return uuid.uuid4().hex[:16]
    if not 1 <= len(idempotency_key) <= 200:
        raise ApiError(400, "bad_idempotency_key", "The Idempotency-Key header must be 1 to 200 characters.")
    return hashlib.sha256(f"idempotency:{owner}:{idempotency_key}".encode()).hexdigest()[:16]


def _accepted(ports: Ports, job_id: str, **extra: Any) -> ApiResponse:
    return ApiResponse(202, {"jobId": job_id, "statusUrl": status_url(ports.config.public_base_url, job_id), **extra})


def notification_address(caller: Caller, asked: Any = None) -> str:
    """Where the job's emails go: the caller's verified address; ``asked`` (the request's ``email``),
    when given, must be that address (the gateway sends mail to no one else)."""
    if not caller.email or not caller.email_verified:
        raise ApiError(403, "email_not_verified", "Verify your email address first: the results are emailed to it.")
    if asked is not None and validate_email(asked).lower() != caller.email:
        raise ApiError(
            403, "not_your_email", f"Results go to your verified address ({caller.email}); give that or no email."
        )
    return caller.email


_VERSION = re.compile(r"[^0-9A-Za-z-]+")


def _submit(
    ports: Ports,
    caller: Caller,
    input_uri: str | CheckedPhotos,
    options: JobOptions,
    idempotency_key: str | None,
    artifacts: dict[str, str] | None = None,
    csv_data: str | None = None,
) -> ApiResponse:
    """Create the job (once per Idempotency-Key) and publish ``JobRequested`` for its first stage.

    Photos (a :class:`CheckedPhotos`) are first copied, if still the version that was checked, to
    the job's own key, which no user can write: the job runs on exactly what was checked.
    """
    email = notification_address(caller)
    check_limits(ports, caller.subject)
    job_id = _job_id(idempotency_key, caller.subject)
    artifacts = dict(artifacts or {})
    checked = input_uri if isinstance(input_uri, CheckedPhotos) else None
    source = checked.uri if checked else str(input_uri)
    fingerprint = _fingerprint(
        caller.subject, source, checked.etag if checked else None, options.model_dump(mode="json"), artifacts, csv_data
    )
    existing = ports.store.get(job_id) if idempotency_key is not None else None
    if checked is not None:
        locked = ports.config.layout.locked_photos(job_id, _VERSION.sub("", checked.etag) or "unversioned")
        if existing is None and not ports.objects.copy(checked.uri, locked, checked.etag):
            raise ApiError(409, "upload_changed", "The upload changed while it was checked: submit the job again.")
        source = locked
    if csv_data is not None and existing is None:
        # The flight plan is kept beside the job; a repeated request finds it there already.
        csv_uri = ports.config.layout.flight_plan(job_id)
        ports.objects.put_bytes(csv_uri, csv_data.encode(), "text/csv")
        artifacts[FLIGHT_PLAN_ARTIFACT] = csv_uri
    elif csv_data is not None:
        artifacts[FLIGHT_PLAN_ARTIFACT] = ports.config.layout.flight_plan(job_id)
    stage = options.from_stage
    requested_at = position("r1", stage, 1, Phase.REQUESTED)
    now = datetime.now(UTC)
    record = JobRecord(
        job_id=job_id,
        email=email,
        owner=caller.subject,
        stage=stage,
        position=requested_at,
        input_uri=source,
        options=options,
        artifacts=artifacts,
        runs=[RunRecord(run_id="r1", from_stage=stage, options=options, started_at=now)],
        created_at=now,
        updated_at=now,
    )
    created = ports.store.create(record, fingerprint)
    if not created.created:
        if created.fingerprint != fingerprint:
            raise ApiError(
                409,
                "idempotency_conflict",
                "This Idempotency-Key was already used for a different request.",
                jobId=job_id,
            )
        stored = ports.store.get(job_id)
        # A first attempt that stored the job but failed to publish left it waiting: publish again
        # (the stage service is idempotent on the event's key).
        if stored is None or stored.position != requested_at:
            return _accepted(ports, job_id, repeated=True)
        record = stored
    ports.publisher.publish(
        JobRequested(
            job_id=job_id,
            run_id="r1",
            stage=stage,
            input_uri=stage_input(stage, record.input_uri, record.artifacts),
            options=options,
        )
    )
    return _accepted(ports, job_id, **({} if created.created else {"repeated": True}))


def create_job(ports: Ports, caller: Caller, body: dict[str, Any], idempotency_key: str | None = None) -> ApiResponse:
    """``POST /jobs {uploadKey | s3Url, options, flightLog?, email?}`` -> 202 ``{jobId, statusUrl}``.

    ``flightLog`` is the drone's flight-log CSV as text: GPS for photos whose EXIF has none.
    ``email``, if given, must be the caller's verified address, where the results go anyway.
    """
    _refuse_unknown(body, {"s3Url", "uploadKey", "email", "options", "flightLog"})
    notification_address(caller, body.get("email"))
    options = validate_options(body.get("options"))
    if options.from_stage is not Stage.SFM:
        raise ApiError(
            400,
            "bad_options",
            "A new job starts from sfm; to start later, reprocess an earlier job "
            "(POST /jobs/{id}/reprocess) or use POST /start-job with existingColmapUri.",
        )
    flight_log = validate_flight_log(body.get("flightLog"), "flightLog")
    photos = validate_photos(ports, caller, body.get("s3Url"), body.get("uploadKey"))
    return _submit(ports, caller, photos, options, idempotency_key, csv_data=flight_log)


# The API Gateway payload limit is 10 MB; a flight log of a few thousand photos is well under 1 MB.
MAX_FLIGHT_LOG_BYTES = 2 * 1024 * 1024


def validate_flight_log(value: Any, field_name: str) -> str | None:
    """The flight-log CSV given as ``field_name``, if any."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "bad_csv", f"{field_name} must be the flight-log CSV as text.")
    if len(value.encode()) > MAX_FLIGHT_LOG_BYTES:
        raise ApiError(413, "bad_csv", f"{field_name} is larger than {MAX_FLIGHT_LOG_BYTES // 1024**2} MB.")
    return value


def _own_output(ports: Ports, caller: Caller, uri: Any, stage: Stage, what: str) -> str:
    """``uri`` if it is the output of ``stage`` of one of the caller's own jobs (any of its runs)."""
    where = _in_buckets(uri, (ports.config.stage_bucket(stage),), what)
    job_id = where.key.split("/", 1)[0]
    record = ports.store.get(job_id) if re.fullmatch(r"[0-9a-z]{1,64}", job_id) else None
    if record is None or not _may_see(caller, record):
        raise ApiError(404, "job_not_found", f"{what} names none of your jobs.")
    layout = ports.config.layout
    outputs = {layout.run_prefix(stage, job_id, run.run_id) for run in record.runs}
    outputs |= {record.artifacts[name] for name in (stage.value, "ply") if name in record.artifacts}
    if where.uri not in outputs:
        raise ApiError(
            400,
            "bad_s3_url",
            f"{what} must be the {stage.value} output of one of your jobs (one of {', '.join(sorted(outputs))}).",
        )
    if not ports.objects.has_prefix(where.uri):
        raise ApiError(422, "upload_not_found", f"There is no {stage.value} output at {where.uri}.")
    return where.uri


def start_job(ports: Ports, caller: Caller, body: dict[str, Any], idempotency_key: str | None = None) -> ApiResponse:
    """The seed frontend's ``POST /start-job``: ``{s3Url, email, pipelineStep, existingColmapUri,
    hyperparameters, csvData}``. ``3dgs`` trains from ``existingColmapUri``, the SfM output of one
    of the caller's jobs; ``compression`` compresses ``s3Url``, the trained splat of one of them."""
    _refuse_unknown(body, {"s3Url", "email", "pipelineStep", "existingColmapUri", "hyperparameters", "csvData"})
    notification_address(caller, body.get("email"))
    step = body.get("pipelineStep") or "sfm"
    if step not in PIPELINE_STEPS:
        raise ApiError(400, "bad_pipeline_step", f"pipelineStep must be one of {', '.join(PIPELINE_STEPS)}.")
    hyperparameters = body.get("hyperparameters") or {}
    if not isinstance(hyperparameters, dict) or not all(
        isinstance(value, (str, int, float, bool)) for value in hyperparameters.values()
    ):
        raise ApiError(400, "bad_options", "hyperparameters must be an object of plain values.")
    csv_data = validate_flight_log(body.get("csvData"), "csvData")
    stage = PIPELINE_STEPS[step]
    settings = {SEED_SETTING_NAMES.get(str(k), str(k)): str(v) for k, v in hyperparameters.items()}
    options = validate_options({}, from_stage=stage, hyperparameters=settings)
    artifacts: dict[str, str] = {}
    input_uri: str | CheckedPhotos
    if stage is Stage.SFM:
        input_uri = validate_photos(ports, caller, body.get("s3Url"))
    elif stage is Stage.TRAIN:
        input_uri = artifacts["sfm"] = _own_output(
            ports, caller, body.get("existingColmapUri"), Stage.SFM, "existingColmapUri"
        )
    else:
        input_uri = artifacts["train"] = _own_output(ports, caller, body.get("s3Url"), Stage.TRAIN, "s3Url")
    return _submit(ports, caller, input_uri, options, idempotency_key, artifacts, csv_data)


def create_upload(ports: Ports, caller: Caller, body: dict[str, Any]) -> ApiResponse:
    """``POST /uploads [{filename}]`` -> ``{uploadUrl, uploadFields, s3Url, uploadKey}``: POST the ZIP as
    a form (the fields, then the file) to ``uploadUrl``. S3 takes only a ZIP of at most the upload limit,
    under the caller's own folder."""
    _refuse_unknown(body, {"filename"})
    notification_address(caller)  # a job could not be started from it anyway
    name = body.get("filename") or "photos.zip"
    if not isinstance(name, str):
        raise ApiError(400, "bad_filename", "filename must be text.")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name.rsplit("/", 1)[-1]).strip(".-") or "photos.zip"
    uri = f"{ports.config.layout.user_uploads(caller.subject)}{uuid.uuid4().hex}/{safe[:100]}"
    form = ports.objects.presign_post(uri, UPLOAD_URL_TTL_S, ports.config.max_upload_bytes, ZIP_CONTENT_TYPE)
    return ApiResponse(
        200,
        {
            "uploadUrl": form.url,
            "uploadFields": form.fields,
            "s3Url": uri,
            "uploadKey": S3Location.parse(uri).key,
            "expiresIn": UPLOAD_URL_TTL_S,
            "maxBytes": ports.config.max_upload_bytes,
            "contentType": ZIP_CONTENT_TYPE,
        },
    )


def _may_see(caller: Caller, record: JobRecord) -> bool:
    return caller.operator or (bool(record.owner) and record.owner == caller.subject)


def _find(ports: Ports, caller: Caller, job_id: str) -> JobRecord:
    """The job, if the caller may see it; to anyone else it does not exist."""
    record = ports.store.get(job_id) if re.fullmatch(r"[0-9a-z]{1,64}", job_id) else None
    if record is None or not _may_see(caller, record):
        raise ApiError(404, "job_not_found", f"There is no job {job_id}.")
    return record


def _record_operator_action(ports: Ports, caller: Caller, record: JobRecord, action: str, **detail: Any) -> None:
    """What an operator did to a job that is not theirs, on the job's record."""
    if record.owner == caller.subject:
        return
    ports.store.record_operator_action(
        record.job_id,
        OperatorAction(
            at=datetime.now(UTC), operator=caller.subject, operator_email=caller.email, action=action, detail=detail
        ),
    )


def job_view(ports: Ports, record: JobRecord) -> dict[str, Any]:
    """The job as the API shows its owner: the record (less bookkeeping), the running stage's progress,
    and download links once done."""
    view = record.model_dump(mode="json", exclude={"notifications", "position", "share_token_hash"})
    view["jobId"] = record.job_id
    view["statusUrl"] = status_url(ports.config.public_base_url, record.job_id)
    view["shared"] = record.share_token_hash is not None
    progress = running_progress(ports, record)
    if progress is not None:
        view["progress"] = progress
        view["stage_percent"] = round(100 * progress["fraction"], 1)
    georeference = record.summary.get("sfm_georeference")
    if isinstance(georeference, dict):
        view["georeference"] = georeference
    blocks = record.blocks
    if (
        blocks is not None
        and blocks.run_id == record.run_id
        and record.stage is Stage.TRAIN
        and not record.status.is_final
    ):
        # Trained in blocks (``blocks`` shows each): the stage is as far as its blocks, then the merge.
        view["stage_percent"] = round(100 * blocks.done / (blocks.count + 1), 1)
    if record.status is JobStatus.SUCCEEDED:
        view["links"] = download_links(ports, record.job_id, record.artifacts)
        view["links"]["viewer"] = viewer_url(ports.config.public_base_url, record.job_id)
        if "sfm_report" in record.artifacts:
            # Read once the job is done: the page stops asking then.
            view["flightPath"] = flight_path(ports.objects.read_json(record.artifacts["sfm_report"]))
    return view


def running_progress(ports: Ports, record: JobRecord) -> dict[str, Any] | None:
    """What the running attempt's job last said of its progress (its progress file), if anything."""
    if record.status is not JobStatus.RUNNING or record.stage not in JOB_STAGES:
        return None
    key = SageMakerJobKey(ports.config.deployment, record.stage, record.job_id, record.run_id, record.attempt)
    progress = ports.objects.read_json(ports.config.layout.progress(record.stage, record.job_id, record.run_id))
    if progress is None or progress.get("job") != key.name or not isinstance(progress.get("fraction"), (int, float)):
        return None  # not started yet, or an earlier attempt's file
    return {
        "fraction": float(progress["fraction"]),
        "message": str(progress.get("message", "")),
        "elapsedS": progress.get("elapsed_s"),
        "etaS": progress.get("eta_s"),
        "updatedAt": progress.get("updated_at"),
    }


def get_job(ports: Ports, caller: Caller, job_id: str) -> ApiResponse:
    """``GET /jobs/{id}``: status, stage, progress, artifacts (links when done) and the error."""
    return ApiResponse(200, job_view(ports, _find(ports, caller, job_id)))


def list_jobs(ports: Ports, caller: Caller) -> ApiResponse:
    """``GET /jobs``: the caller's own jobs, newest first."""
    jobs = ports.store.list_by_owner(caller.subject)
    return ApiResponse(
        200,
        {
            "jobs": [
                {
                    "jobId": job.job_id,
                    "status": job.status.value,
                    "stage": job.stage.value,
                    "runId": job.run_id,
                    "createdAt": job.created_at.isoformat(),
                    "statusUrl": status_url(ports.config.public_base_url, job.job_id),
                }
                for job in jobs
            ]
        },
    )


def cancel_job(ports: Ports, caller: Caller, job_id: str) -> ApiResponse:
    """``POST /jobs/{id}/cancel``: record the cancellation and tell the running stage to stop its job."""
    record = _find(ports, caller, job_id)
    if record.status is JobStatus.CANCELLED:
        return ApiResponse(202, {"jobId": job_id, "status": record.status.value})
    if record.status.is_final:
        raise ApiError(409, "job_ended", f"Job {job_id} already ended ({record.status.value}).")
    moved = ports.store.transition(
        job_id,
        position(record.run_id, record.stage, record.attempt, Phase.CANCELLED),
        status=JobStatus.CANCELLED,
        run_status=(record.run_id, JobStatus.CANCELLED),
    )
    if not moved:
        # The run ended (or moved on) since we read it: say how it stands now.
        now = _find(ports, caller, job_id)
        if now.status is JobStatus.CANCELLED:
            return ApiResponse(202, {"jobId": job_id, "status": now.status.value})
        if now.status.is_final:
            raise ApiError(409, "job_ended", f"Job {job_id} already ended ({now.status.value}).")
        raise ApiError(409, "cancel_conflict", f"Job {job_id} changed while cancelling; try again.")
    _record_operator_action(ports, caller, record, "cancel", run_id=record.run_id, stage=record.stage.value)
    if record.stage in JOB_STAGES:
        ports.publisher.publish(
            JobCancelled(
                job_id=job_id,
                run_id=record.run_id,
                stage=record.stage,
                attempt=record.attempt,
                options=record.options,
            )
        )
    return ApiResponse(202, {"jobId": job_id, "status": JobStatus.CANCELLED.value})


def reprocess_job(ports: Ports, caller: Caller, job_id: str, body: dict[str, Any]) -> ApiResponse:
    """``POST /jobs/{id}/reprocess {fromStage, options}``: a new run from that stage on the earlier artifacts."""
    _refuse_unknown(body, {"fromStage", "options"})
    record = _find(ports, caller, job_id)
    if not record.status.is_final:
        raise ApiError(409, "job_running", f"Job {job_id} is still {record.status.value}: cancel it first.")
    try:
        stage = Stage(body.get("fromStage") or Stage.SFM.value)
    except ValueError:
        stage = Stage.NOTIFY
    if stage not in JOB_STAGES:
        raise ApiError(400, "bad_stage", f"fromStage must be one of {', '.join(s.value for s in JOB_STAGES)}.")
    # Earlier choices carry over unless given again (hyperparameters too: replace them as a whole).
    options = validate_options(body.get("options"), base=record.options, from_stage=stage)
    needed = NEEDS.get(stage)
    if needed and needed not in record.artifacts:
        raise ApiError(409, "nothing_to_reprocess", f"Job {job_id} has no {needed} output to start {stage.value} from.")
    check_limits(ports, record.owner, reprocessing=job_id)
    run_id = f"r{run_number(record.run_id) + 1}"
    moved = ports.store.transition(
        job_id,
        position(run_id, stage, 1, Phase.REQUESTED),
        status=JobStatus.QUEUED,
        stage=stage,
        run_id=run_id,
        attempt=1,
        stage_percent=0.0,
        options=options,
        error=None,
        new_run=RunRecord(run_id=run_id, from_stage=stage, options=options, started_at=datetime.now(UTC)),
    )
    if not moved:
        raise ApiError(409, "reprocess_conflict", f"Job {job_id} changed while reprocessing; try again.")
    _record_operator_action(ports, caller, record, "reprocess", run_id=run_id, from_stage=stage.value)
    ports.publisher.publish(
        JobRequested(
            job_id=job_id,
            run_id=run_id,
            stage=stage,
            input_uri=stage_input(stage, record.input_uri, record.artifacts),
            options=options,
        )
    )
    return _accepted(ports, job_id, runId=run_id)


def share_job(ports: Ports, caller: Caller, job_id: str, api_base: str) -> ApiResponse:
    """``POST /jobs/{id}/share``: a new share link for the job's scene (any earlier one stops working).

    The token is shown here once; the job keeps only its hash.
    """
    record = _find(ports, caller, job_id)
    if "sog" not in record.artifacts:
        raise ApiError(409, "nothing_to_share", f"Job {job_id} has no scene to share yet.")
    token = new_share_token()
    if not ports.store.set_share_token(job_id, hash_share_token(token)):
        raise ApiError(404, "job_not_found", f"There is no job {job_id}.")
    _record_operator_action(ports, caller, record, "share")
    return ApiResponse(200, {"jobId": job_id, "shared": True, **share_links(ports, token, api_base)})


def unshare_job(ports: Ports, caller: Caller, job_id: str) -> ApiResponse:
    """``DELETE /jobs/{id}/share``: the share link stops working (``GET /share/{token}`` answers 404)."""
    record = _find(ports, caller, job_id)
    ports.store.set_share_token(job_id, None)
    _record_operator_action(ports, caller, record, "unshare")
    return ApiResponse(200, {"jobId": job_id, "shared": False})


def me(ports: Ports, caller: Caller) -> ApiResponse:
    """``GET /me``: who the caller is, and their limits with what they use of them now."""
    return ApiResponse(
        200,
        {
            "sub": caller.subject,
            "email": caller.email,
            "emailVerified": caller.email_verified,
            "operator": caller.operator,
            "limits": usage(ports, caller.subject).view(ports.config),
        },
    )


def shared_view(ports: Ports, token: str, api_base: str) -> ApiResponse:
    """``GET /share/{token}`` (no sign-in): the shared job's public view; 404 once revoked."""
    record = find_shared(ports, token)
    if record is None:
        raise ApiError(404, "share_not_found", "There is no shared scene at this link (it may have been revoked).")
    return ApiResponse(200, public_view(ports, record, token, api_base))


def shared_scene_file(ports: Ports, token: str, path: str) -> ApiResponse:
    """``GET /share/{token}/scene/<file>``: a redirect to that one file of the shared scene."""
    record = find_shared(ports, token)
    link = scene_link(ports, record, path) if record is not None else None
    if link is None:
        raise ApiError(404, "share_not_found", "There is no such file in this shared scene.")
    return ApiResponse(302, {}, {"Location": link, "Cache-Control": "no-store"})
