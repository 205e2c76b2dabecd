"""The gateway's logic: validate a request, create or change the job, publish its event.

Each function takes the :class:`~spaceport.ports.Ports` and the request's parsed parts
and returns an :class:`ApiResponse`; a refused request raises :class:`ApiError` (a 4xx
with a stable ``code`` and a plain ``message``) before anything is written.

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

from spaceport.contracts.events import JobCancelled, JobOptions, JobRequested
from spaceport.contracts.job import JobRecord, JobStatus, Phase, RunRecord, position, run_number
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

# The headers a client sends: its API key, and a key that makes a repeated POST return the same job.
API_KEY_HEADER = "x-api-key"
IDEMPOTENCY_HEADER = "idempotency-key"
ZIP_MAGIC = b"PK\x03\x04"
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


def validate_photos(ports: Ports, s3_url: Any = None, upload_key: Any = None) -> str:
    """The photos ZIP's URI, after checking that it is ours, exists, is a ZIP and is not too big."""
    config = ports.config
    if (s3_url is None) == (upload_key is None):
        raise ApiError(400, "missing_input", "Give exactly one of s3Url or uploadKey (from POST /uploads).")
    if upload_key is not None:
        if not isinstance(upload_key, str) or not upload_key or upload_key.startswith("/") or ".." in upload_key:
            raise ApiError(400, "bad_upload_key", "uploadKey must be the key POST /uploads returned.")
        s3_url = f"s3://{config.uploads_bucket}/{upload_key}"
    where = _in_buckets(s3_url, (config.uploads_bucket,), "s3Url")
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
    if head.size < len(ZIP_MAGIC) or ports.objects.read_prefix(where.uri, len(ZIP_MAGIC)) != ZIP_MAGIC:
        raise ApiError(422, "not_a_zip", "The upload is not a ZIP file: put the photos in a .zip and upload that.")
    return where.uri


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _job_id(idempotency_key: str | None, email: str) -> str:
    """A fresh id, or for an Idempotency-Key the same id every time (keys are scoped by the user's email)."""
    if idempotency_key is None:
        return uuid.uuid4().hex[:16]
    if not 1 <= len(idempotency_key) <= 200:
        raise ApiError(400, "bad_idempotency_key", "The Idempotency-Key header must be 1 to 200 characters.")
    return hashlib.sha256(f"idempotency:{email.lower()}:{idempotency_key}".encode()).hexdigest()[:16]


def _accepted(ports: Ports, job_id: str, **extra: Any) -> ApiResponse:
    return ApiResponse(202, {"jobId": job_id, "statusUrl": status_url(ports.config.public_base_url, job_id), **extra})


def _submit(
    ports: Ports,
    email: str,
    input_uri: str,
    options: JobOptions,
    idempotency_key: str | None,
    artifacts: dict[str, str] | None = None,
    csv_data: str | None = None,
) -> ApiResponse:
    """Create the job (once per Idempotency-Key) and publish ``JobRequested`` for its first stage."""
    job_id = _job_id(idempotency_key, email)
    artifacts = dict(artifacts or {})
    fingerprint = _fingerprint(email, input_uri, options.model_dump(mode="json"), artifacts, csv_data)
    if csv_data is not None:
        # The flight plan is kept beside the job; writing it again for a repeated request changes nothing.
        csv_uri = ports.config.layout.flight_plan(job_id)
        ports.objects.put_bytes(csv_uri, csv_data.encode(), "text/csv")
        artifacts[FLIGHT_PLAN_ARTIFACT] = csv_uri
    stage = options.from_stage
    requested_at = position("r1", stage, 1, Phase.REQUESTED)
    now = datetime.now(UTC)
    record = JobRecord(
        job_id=job_id,
        email=email,
        stage=stage,
        position=requested_at,
        input_uri=input_uri,
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
        existing = ports.store.get(job_id)
        # A first attempt that stored the job but failed to publish left it waiting: publish again
        # (the stage service is idempotent on the event's key).
        if existing is None or existing.position != requested_at:
            return _accepted(ports, job_id, repeated=True)
    ports.publisher.publish(
        JobRequested(
            job_id=job_id,
            run_id="r1",
            stage=stage,
            input_uri=stage_input(stage, input_uri, artifacts),
            options=options,
        )
    )
    return _accepted(ports, job_id, **({} if created.created else {"repeated": True}))


def create_job(ports: Ports, body: dict[str, Any], idempotency_key: str | None = None) -> ApiResponse:
    """``POST /jobs {s3Url | uploadKey, email, options, flightLog?}`` -> 202 ``{jobId, statusUrl}``.

    ``flightLog`` is the drone's flight-log CSV as text: GPS for photos whose EXIF has none.
    """
    _refuse_unknown(body, {"s3Url", "uploadKey", "email", "options", "flightLog"})
    email = validate_email(body.get("email"))
    options = validate_options(body.get("options"))
    if options.from_stage is not Stage.SFM:
        raise ApiError(
            400,
            "bad_options",
            "A new job starts from sfm; to start later, reprocess an earlier job "
            "(POST /jobs/{id}/reprocess) or use POST /start-job with existingColmapUri.",
        )
    photos = validate_photos(ports, body.get("s3Url"), body.get("uploadKey"))
    flight_log = validate_flight_log(body.get("flightLog"), "flightLog")
    return _submit(ports, email, photos, options, idempotency_key, csv_data=flight_log)


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


def start_job(ports: Ports, body: dict[str, Any], idempotency_key: str | None = None) -> ApiResponse:
    """The seed frontend's ``POST /start-job``: ``{s3Url, email, pipelineStep, existingColmapUri,
    hyperparameters, csvData}``. ``3dgs`` trains from ``existingColmapUri`` (an SfM output folder);
    ``compression`` compresses the splat at ``s3Url`` (a model archive or a ``.ply``)."""
    _refuse_unknown(body, {"s3Url", "email", "pipelineStep", "existingColmapUri", "hyperparameters", "csvData"})
    email = validate_email(body.get("email"))
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
    config = ports.config
    artifacts: dict[str, str] = {}
    if stage is Stage.SFM:
        input_uri = validate_photos(ports, body.get("s3Url"))
    elif stage is Stage.TRAIN:
        colmap = _in_buckets(
            body.get("existingColmapUri"), (config.uploads_bucket, config.sfm_bucket), "existingColmapUri"
        )
        if not ports.objects.has_prefix(colmap.uri):
            raise ApiError(422, "upload_not_found", f"There is no SfM output at {colmap.uri}.")
        input_uri = artifacts["sfm"] = colmap.uri
    else:
        splat = _in_buckets(body.get("s3Url"), (config.uploads_bucket, config.train_bucket), "s3Url")
        if ports.objects.head(splat.uri) is None:
            raise ApiError(422, "upload_not_found", f"There is no splat at {splat.uri}.")
        input_uri = artifacts["train"] = splat.uri
    return _submit(ports, email, input_uri, options, idempotency_key, artifacts, csv_data)


def create_upload(ports: Ports, body: dict[str, Any]) -> ApiResponse:
    """``POST /uploads [{filename}]`` -> ``{uploadUrl, s3Url, uploadKey}``: PUT the ZIP to ``uploadUrl``."""
    _refuse_unknown(body, {"filename"})
    name = body.get("filename") or "photos.zip"
    if not isinstance(name, str):
        raise ApiError(400, "bad_filename", "filename must be text.")
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name.rsplit("/", 1)[-1]).strip(".-") or "photos.zip"
    key = f"uploads/{uuid.uuid4().hex}/{safe[:100]}"
    uri = f"s3://{ports.config.uploads_bucket}/{key}"
    return ApiResponse(
        200,
        {
            "uploadUrl": ports.objects.presign_put(uri, UPLOAD_URL_TTL_S),
            "s3Url": uri,
            "uploadKey": key,
            "expiresIn": UPLOAD_URL_TTL_S,
            "maxBytes": ports.config.max_upload_bytes,
        },
    )


def _find(ports: Ports, job_id: str) -> JobRecord:
    record = ports.store.get(job_id) if re.fullmatch(r"[0-9a-z]{1,64}", job_id) else None
    if record is None:
        raise ApiError(404, "job_not_found", f"There is no job {job_id}.")
    return record


def job_view(ports: Ports, record: JobRecord) -> dict[str, Any]:
    """The job as the API shows it: the record (less bookkeeping), the running stage's progress,
    and download links once done."""
    view = record.model_dump(mode="json", exclude={"notifications", "position"})
    view["jobId"] = record.job_id
    view["statusUrl"] = status_url(ports.config.public_base_url, record.job_id)
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


def get_job(ports: Ports, job_id: str) -> ApiResponse:
    """``GET /jobs/{id}``: status, stage, progress, artifacts (links when done) and the error."""
    return ApiResponse(200, job_view(ports, _find(ports, job_id)))


def list_jobs(ports: Ports, email: Any) -> ApiResponse:
    """``GET /jobs?email=``: that address's jobs, newest first."""
    address = validate_email(email)
    jobs = ports.store.list_by_email(address)
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


def cancel_job(ports: Ports, job_id: str) -> ApiResponse:
    """``POST /jobs/{id}/cancel``: record the cancellation and tell the running stage to stop its job."""
    record = _find(ports, job_id)
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
        now = _find(ports, job_id)
        if now.status is JobStatus.CANCELLED:
            return ApiResponse(202, {"jobId": job_id, "status": now.status.value})
        if now.status.is_final:
            raise ApiError(409, "job_ended", f"Job {job_id} already ended ({now.status.value}).")
        raise ApiError(409, "cancel_conflict", f"Job {job_id} changed while cancelling; try again.")
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


def reprocess_job(ports: Ports, job_id: str, body: dict[str, Any]) -> ApiResponse:
    """``POST /jobs/{id}/reprocess {fromStage, options}``: a new run from that stage on the earlier artifacts."""
    _refuse_unknown(body, {"fromStage", "options"})
    record = _find(ports, job_id)
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
