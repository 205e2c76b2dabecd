"""The local runtime's SageMaker: the jobs SageMaker is asked for, run as local subprocesses.

The local runtime's moto server records every ``CreateProcessingJob`` / ``CreateTrainingJob``
(:mod:`spaceport.local.aws` hands each request here), so the stage services launch exactly as
in AWS, through :class:`~spaceport.adapters.sagemaker_jobs.SageMakerLauncher`. For each request
the runner does what SageMaker does:

1. refuses what SageMaker refuses (:func:`check_request`): an unknown instance type, an
   oversized hyperparameter or environment value, a missing image or role, a name in use;
2. lays out ``/opt/ml`` in ``<root>/<job name>/ml/`` and downloads the inputs with the job
   role's credentials (processing inputs to their ``LocalPath``; training channels,
   ``hyperparameters.json`` and the checkpoints a retried attempt resumes from);
3. runs the request's ``ContainerEntrypoint`` (from this checkout's installation: no image is
   built locally) with its ``Environment``, ``SPACEPORT_SAGEMAKER_ROOT`` pointing at that tree
   and the local thread cap (:data:`spaceport.compute.THREADS_ENV`), its log in ``job.log``;
4. while the job runs, uploads what SageMaker uploads as it goes: processing outputs in
   ``Continuous`` mode and the training job's checkpoint folder;
5. stops the job at its ``MaxRuntimeInSeconds`` (SIGTERM, then SIGKILL after the grace period,
   as SageMaker does), uploads the outputs (processing outputs; for training, the
   :class:`~spaceport.contracts.layout.TrainingArchives`), and
6. writes the final status and ``FailureReason`` into moto's record of the job (so
   ``Describe*Job`` sees them) and puts SageMaker's state-change event on the default bus.

The image URI and the instance type are checked, not used: the job runs on this machine's CPU
(or CUDA when present), at most ``max_concurrent_jobs`` at once.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from spaceport.compute import THREADS_ENV
from spaceport.container import ROOT_ENV, SAGEMAKER_ROOT
from spaceport.contracts.deployment import INSTANCE_TYPES
from spaceport.contracts.layout import TrainingArchives
from spaceport.contracts.s3_uri import S3Location
from spaceport.contracts.topology import SAGEMAKER_SOURCE, SageMakerJobKind, state_change_fields
from spaceport.contracts.training import MAX_HYPERPARAMETER_CHARS, MAX_HYPERPARAMETERS
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode
from spaceport.files import write_json_atomic

FINAL_STATES = ("Completed", "Failed", "Stopped")
# SageMaker sends SIGTERM, then SIGKILL when the container has not exited after 30 s.
STOP_GRACE_S = 30.0
# Files moved to or from S3 at once when a job's inputs or outputs are synced.
TRANSFER_THREADS = 8
# How often what SageMaker uploads continuously is looked at.
SYNC_INTERVAL_S = 1.0
logger = logging.getLogger("spaceport.local")
# The cores one local job is given when several run at once (the SfM and training jobs use them all).
CORES_PER_JOB = 4
# SageMaker's documented limits on a request (the hyperparameters' are a contract: the gateway checks them).
MAX_ENVIRONMENT_ENTRIES = 100
MAX_ENVIRONMENT_VALUE = 256

# A session with the credentials a job's role gives (the runtime assumes the role; tests may not).
SessionForRole = Callable[[str], boto3.session.Session]
# What a network-isolated job's environment loses: every way to reach AWS.
_AWS_ACCESS = (
    "AWS_ACCESS_KEY",
    "AWS_SECRET",
    "AWS_SESSION",
    "AWS_SECURITY",
    "AWS_ENDPOINT",
    "AWS_PROFILE",
    "AWS_CONTAINER",
)
# SageMaker's log groups, per job kind.
LOG_GROUPS = {"processing": "/aws/sagemaker/ProcessingJobs", "training": "/aws/sagemaker/TrainingJobs"}
# CloudWatch Logs takes at most this many events, and about this many bytes, per PutLogEvents.
_LOG_BATCH_EVENTS = 5000
_LOG_BATCH_BYTES = 800_000


class JobNotFoundError(SpaceportError, LookupError):
    """No job of that name was ever started by this runner."""

    code = "job_not_found"
    exit_code = ExitCode.LOCAL_JOB_NOT_FOUND


class RequestRefused(Exception):
    """SageMaker would refuse this request; ``code`` is the error code it answers with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class LocalJob:
    """One job the runner was asked for: the request as SageMaker got it, and what happened to it."""

    name: str
    kind: SageMakerJobKind
    request: dict[str, Any]
    folder: Path
    status: str = "InProgress"
    failure_reason: str | None = None
    secondary_status: str | None = None
    created: str = field(default_factory=lambda: _now())
    ended: str | None = None
    process: subprocess.Popen[str] | None = None
    command_started: float | None = None
    command_ended: float | None = None
    exit_code: int | None = None
    stop_requested: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    # Called after each change of status, so moto's record of the job says what Describe*Job answers.
    on_update: Callable[[LocalJob], None] = field(default=lambda job: None, repr=False)

    @property
    def ml_root(self) -> Path:
        return self.folder / "ml"

    def local(self, container_path: str) -> Path:
        """Where a path inside the container (``/opt/ml/...``) lies in this job's tree."""
        return self.ml_root / PurePosixPath(container_path).relative_to(SAGEMAKER_ROOT.as_posix())

    @property
    def max_runtime_s(self) -> float:
        return float(self.request.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))

    @property
    def network_isolated(self) -> bool:
        """``EnableNetworkIsolation`` (training) or ``NetworkConfig.EnableNetworkIsolation`` (processing)."""
        if self.kind == "training":
            return bool(self.request.get("EnableNetworkIsolation"))
        return bool((self.request.get("NetworkConfig") or {}).get("EnableNetworkIsolation"))


def default_concurrency(cores: int | None = None) -> int:
    """How many local jobs run at once by default: the cores available over :data:`CORES_PER_JOB`.

    >>> default_concurrency(16), default_concurrency(2)
    (4, 1)
    """
    available = len(os.sched_getaffinity(0)) if cores is None else cores
    return max(1, available // CORES_PER_JOB)


def check_request(kind: SageMakerJobKind, request: dict[str, Any]) -> None:
    """Refuse what SageMaker refuses, with its error code (``ValidationException`` and kin)."""
    if kind == "processing":
        image = request.get("AppSpecification", {}).get("ImageUri")
        instance = request.get("ProcessingResources", {}).get("ClusterConfig", {}).get("InstanceType")
    else:
        image = request.get("AlgorithmSpecification", {}).get("TrainingImage")
        instance = request.get("ResourceConfig", {}).get("InstanceType")
        hyperparameters = request.get("HyperParameters") or {}
        if len(hyperparameters) > MAX_HYPERPARAMETERS:
            raise RequestRefused("ValidationException", f"At most {MAX_HYPERPARAMETERS} hyperparameters are allowed.")
        for key, value in hyperparameters.items():
            if len(str(value)) > MAX_HYPERPARAMETER_CHARS:
                raise RequestRefused(
                    "ValidationException",
                    f"The value of hyperparameter '{key}' is longer than {MAX_HYPERPARAMETER_CHARS} characters.",
                )
    environment = request.get("Environment") or {}
    if len(environment) > MAX_ENVIRONMENT_ENTRIES:
        raise RequestRefused("ValidationException", f"At most {MAX_ENVIRONMENT_ENTRIES} environment entries.")
    for key, value in environment.items():
        if len(str(value)) > MAX_ENVIRONMENT_VALUE:
            raise RequestRefused("ValidationException", f"Environment value of '{key}' is too long.")
    if not image:
        raise RequestRefused("ValidationException", "The job names no container image.")
    if instance not in INSTANCE_TYPES:
        raise RequestRefused("ValidationException", f"{instance!r} is not a supported instance type.")
    if not request.get("RoleArn"):
        raise RequestRefused("ValidationException", "The job names no role.")


class LocalJobRunner:
    """Runs the jobs moto's SageMaker records, as local subprocesses under SageMaker's layout."""

    def __init__(
        self,
        root: Path,
        session_for_role: SessionForRole | None = None,
        job_threads: int | None = None,
        max_concurrent_jobs: int = 1,
        stop_grace_s: float = STOP_GRACE_S,
    ) -> None:
        self.root = Path(root).resolve()  # the job runs in its own folder; its paths must not be relative
        self.root.mkdir(parents=True, exist_ok=True)
        self.session_for_role = session_for_role or (lambda role_arn: boto3.session.Session())
        self.job_threads = job_threads
        self.stop_grace_s = stop_grace_s
        self._jobs: dict[str, LocalJob] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_concurrent_jobs)

    # --- what moto's SageMaker calls

    def start(
        self, kind: SageMakerJobKind, request: dict[str, Any], on_update: Callable[[LocalJob], None] | None = None
    ) -> LocalJob:
        """Take a job request (already checked with :func:`check_request`) and run it in a thread."""
        name = request["ProcessingJobName" if kind == "processing" else "TrainingJobName"]
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        job = LocalJob(name=name, kind=kind, request=request, folder=folder)
        if on_update is not None:
            job.on_update = on_update
        with self._lock:
            if name in self._jobs:
                raise RequestRefused("ResourceInUse", f"A job named {name} already exists.")
            self._jobs[name] = job
        write_json_atomic(folder / "request.json", request)
        threading.Thread(target=self._run, args=(job,), name=f"job-{name}", daemon=True).start()
        return job

    def stop(self, name: str) -> None:
        """Stop a running job (SIGTERM to its process group, SIGKILL after the grace period)."""
        job = self._job(name)
        if job.status in FINAL_STATES:
            return
        job.stop_requested = True
        job.status = "Stopping"
        job.on_update(job)
        if job.process is not None:
            self._terminate(job)

    # --- what the runtime and tests read

    def describe(self, name: str) -> LocalJob:
        return self._job(name)

    def wait(self, name: str, timeout_s: float) -> LocalJob:
        """Block until the job ends (or ``timeout_s`` passes) and return it."""
        job = self._job(name)
        job.done.wait(timeout_s)
        return job

    def log_path(self, name: str) -> Path:
        return self.root / name / "job.log"

    def running(self) -> list[str]:
        with self._lock:
            return [name for name, job in self._jobs.items() if not job.done.is_set()]

    def jobs(self) -> list[LocalJob]:
        """Every job this runner was asked for, in the order it was asked."""
        with self._lock:
            return list(self._jobs.values())

    def stop_all(self, timeout_s: float) -> None:
        for name in self.running():
            self.stop(name)
        for name in self.running():
            self.wait(name, timeout_s)

    # --- the job's life

    def _job(self, name: str) -> LocalJob:
        with self._lock:
            job = self._jobs.get(name)
        if job is None:
            raise JobNotFoundError(f"No local job named {name!r} was started.")
        return job

    def _run(self, job: LocalJob) -> None:
        with self._slots:
            session = None
            try:
                session = self.session_for_role(job.request["RoleArn"])
                s3 = session.client("s3")
                if _pull_image(job, session):
                    self._download_inputs(job, s3)
                    if not job.stop_requested:
                        self._execute(job, s3)
                    self._finish(job, s3)
            except Exception as error:  # a runner fault fails the job as SageMaker's InternalServerError would
                job.status, job.failure_reason = "Failed", f"InternalServerError: the local job runner failed: {error}"
                with (job.folder / "job.log").open("a") as log:
                    log.write(f"\n{job.failure_reason}\n")
            if session is not None:
                _send_log(job, session)
            job.ended = _now()
            job.on_update(job)
            try:
                _put_state_change(job)
            finally:
                job.done.set()

    def _download_inputs(self, job: LocalJob, s3: Any) -> None:
        if job.kind == "processing":
            for item in job.request.get("ProcessingInputs", []):
                source = item["S3Input"]
                fetch = _download_manifest if source.get("S3DataType") == "ManifestFile" else _download
                fetch(s3, source["S3Uri"], job.local(source["LocalPath"]))
            for output in _processing_outputs(job):
                job.local(output["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
            return
        for channel in job.request.get("InputDataConfig", []):
            source = channel["DataSource"]["S3DataSource"]
            fetch = _download_manifest if source.get("S3DataType") == "ManifestFile" else _download
            fetch(s3, source["S3Uri"], job.ml_root / "input" / "data" / channel["ChannelName"])
        hyperparameters = {key: str(value) for key, value in (job.request.get("HyperParameters") or {}).items()}
        write_json_atomic(job.ml_root / "input" / "config" / "hyperparameters.json", hyperparameters)
        for folder in ("model", "output/data"):
            (job.ml_root / folder).mkdir(parents=True, exist_ok=True)
        checkpoints = job.request.get("CheckpointConfig")
        if checkpoints:
            # A first attempt finds nothing; a retried or Spot-restarted one resumes from what is there.
            _download(s3, checkpoints["S3Uri"], job.local(checkpoints["LocalPath"]), missing_ok=True)

    def _execute(self, job: LocalJob, s3: Any) -> None:
        spec = job.request.get("AppSpecification") or job.request.get("AlgorithmSpecification") or {}
        entrypoint = list(spec.get("ContainerEntrypoint") or [])
        if not entrypoint:
            raise RuntimeError("the request names no ContainerEntrypoint")
        env = {**os.environ, **(job.request.get("Environment") or {}), ROOT_ENV: str(job.ml_root)}
        if job.network_isolated:
            # No route out and no credentials: the job reaches nothing but its own folders.
            env = {name: value for name, value in env.items() if not name.startswith(_AWS_ACCESS)}
        env["PYTHONUNBUFFERED"] = "1"
        if self.job_threads is not None:
            env[THREADS_ENV] = str(self.job_threads)
        command = [_resolve_executable(entrypoint[0]), *entrypoint[1:]]
        syncing = _ContinuousSync(s3, self._continuous_folders(job))
        with (job.folder / "job.log").open("w") as log:
            job.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=job.folder,
                text=True,
                start_new_session=True,
            )
            job.command_started = time.time()
            if job.stop_requested:  # stopped while its inputs were downloading
                self._terminate(job)
            deadline = time.monotonic() + job.max_runtime_s
            while job.process.poll() is None:
                if time.monotonic() >= deadline and not job.stop_requested:
                    job.secondary_status = "MaxRuntimeExceeded"
                    job.stop_requested = True
                    self._terminate(job)
                syncing.once()
                time.sleep(0.2)
            job.exit_code = job.process.returncode
            job.command_ended = time.time()
        syncing.once()

    def _continuous_folders(self, job: LocalJob) -> list[tuple[Path, str]]:
        """The folders SageMaker uploads while the job runs, and where to."""
        if job.kind == "processing":
            return [
                (job.local(output["S3Output"]["LocalPath"]), output["S3Output"]["S3Uri"])
                for output in _processing_outputs(job)
                if output["S3Output"].get("S3UploadMode") == "Continuous"
            ]
        checkpoints = job.request.get("CheckpointConfig")
        return [(job.local(checkpoints["LocalPath"]), checkpoints["S3Uri"])] if checkpoints else []

    def _finish(self, job: LocalJob, s3: Any) -> None:
        if job.stop_requested:
            job.status = "Stopped"
            if job.secondary_status == "MaxRuntimeExceeded":
                job.failure_reason = f"The job ran past its limit of {job.max_runtime_s:.0f} s (MaxRuntimeInSeconds)."
        elif job.exit_code == 0:
            job.status = "Completed"
        else:
            failure = job.ml_root / "output" / "failure"
            reason = failure.read_text().strip() if failure.exists() else None
            job.status = "Failed"
            job.failure_reason = reason or (
                f"AlgorithmError: the job exited with code {job.exit_code}; see {job.folder / 'job.log'}"
            )
        if job.status == "Stopped" and job.secondary_status != "MaxRuntimeExceeded":
            return  # a job stopped on request uploads nothing more
        # SageMaker uploads what the job left even when it failed, so the report that explains
        # the failure is readable beside it.
        if job.kind == "processing":
            for output in _processing_outputs(job):
                _upload_folder(s3, job.local(output["S3Output"]["LocalPath"]), output["S3Output"]["S3Uri"])
            return
        archive_prefix = f"{job.request['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{job.name}/output/"
        for folder, archive in (
            (job.ml_root / "model", TrainingArchives.MODEL),
            (job.ml_root / "output" / "data", TrainingArchives.OUTPUT),
        ):
            tarball = job.folder / archive
            with tarfile.open(tarball, "w:gz") as tar:
                for path in sorted(folder.rglob("*")):
                    tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
            where = S3Location.parse(archive_prefix + archive)
            s3.upload_file(str(tarball), where.bucket, where.key)
        for local, uri in self._continuous_folders(job):
            _upload_folder(s3, local, uri)

    def _terminate(self, job: LocalJob) -> None:
        assert job.process is not None
        _signal_group(job.process.pid, signal.SIGTERM)
        kill = threading.Timer(self.stop_grace_s, _signal_group, args=(job.process.pid, signal.SIGKILL))
        kill.daemon = True
        kill.start()


def _processing_outputs(job: LocalJob) -> list[dict[str, Any]]:
    return list(job.request.get("ProcessingOutputConfig", {}).get("Outputs", []))


class _ContinuousSync:
    """Uploads the files that changed in some folders since the last look (SageMaker's Continuous mode)."""

    def __init__(self, s3: Any, folders: Iterable[tuple[Path, str]]) -> None:
        self.s3 = s3
        self.folders = list(folders)
        self.seen: dict[Path, float] = {}
        self.last = 0.0

    def once(self) -> None:
        now = time.monotonic()
        if not self.folders or now - self.last < SYNC_INTERVAL_S:
            return
        self.last = now
        for folder, uri in self.folders:
            for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".partial" not in p.name):
                try:
                    stamp = path.stat().st_mtime
                except FileNotFoundError:
                    continue  # replaced while we looked
                if self.seen.get(path) == stamp:
                    continue
                where = S3Location.parse(uri).child(path.relative_to(folder).as_posix())
                try:
                    self.s3.upload_file(str(path), where.bucket, where.key)
                except (OSError, BotoCoreError, ClientError) as error:
                    # Removed or rewritten while it went up: SageMaker tries again at its next
                    # look, and the job's end uploads every file as it was left.
                    logger.debug("continuous upload of %s failed (%s); trying again later", path, error)
                    continue
                self.seen[path] = stamp


def _pull_image(job: LocalJob, session: Any) -> bool:
    """Pull the job's image from ECR with its role, as SageMaker does; a job whose image cannot be
    pulled fails before it starts (its inputs are not even downloaded)."""
    spec = job.request.get("AppSpecification") or job.request.get("AlgorithmSpecification") or {}
    uri = str(spec.get("ImageUri") or spec.get("TrainingImage") or "")
    repository, _, reference = uri.split("/", 1)[-1].partition("@" if "@" in uri else ":")
    image_id = {"imageDigest": reference} if "@" in uri else {"imageTag": reference}
    ecr = session.client("ecr")
    try:
        ecr.get_authorization_token()
        images = ecr.batch_get_image(repositoryName=repository, imageIds=[image_id]).get("images", [])
        if images:
            manifest = json.loads(images[0]["imageManifest"])
            layers = [layer["digest"] for layer in manifest.get("layers", [])]
            ecr.batch_check_layer_availability(repositoryName=repository, layerDigests=layers)
    except ClientError as error:
        job.status, job.failure_reason = "Failed", f"ClientError: cannot pull {uri}: {error}"
        return False
    if not images:
        job.status, job.failure_reason = "Failed", f"ClientError: the image {uri} does not exist."
        return False
    return True


def _send_log(job: LocalJob, session: Any) -> None:
    """The job's output in CloudWatch Logs, in SageMaker's group and a stream named for the job."""
    log = job.folder / "job.log"
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    logs = session.client("logs")
    group, stream = LOG_GROUPS[job.kind], f"{job.name}/algo-1-{int(time.time())}"
    try:
        try:
            logs.create_log_group(logGroupName=group)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        batch: list[dict[str, Any]] = []
        size = 0
        for line in [*lines, f"{job.status or 'Ended'}: {job.failure_reason or ''}".rstrip(": ")]:
            event = {"timestamp": now, "message": line or " "}
            if len(batch) >= _LOG_BATCH_EVENTS or size + len(line) + 26 > _LOG_BATCH_BYTES:
                logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
                batch, size = [], 0
            batch.append(event)
            size += len(line) + 26
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=batch)
    except ClientError as error:  # SageMaker loses the log, not the job, when its role may not write it
        logger.warning("%s: its log did not reach CloudWatch Logs: %s", job.name, error)


def _put_state_change(job: LocalJob) -> None:
    entry = state_change_entry(job)
    # SageMaker puts its events on the account's default bus itself (no role of ours is involved).
    response = boto3.session.Session().client("events").put_events(Entries=[entry])
    if response.get("FailedEntryCount"):
        raise RuntimeError(f"could not put the state change of {job.name}: {response['Entries']}")


def job_arn(kind: SageMakerJobKind, name: str) -> str:
    region = boto3.session.Session().region_name or "us-east-1"
    account = os.environ.get("MOTO_ACCOUNT_ID", "123456789012")
    return f"arn:aws:sagemaker:{region}:{account}:{'processing-job' if kind == 'processing' else 'training-job'}/{name}"


def state_change_entry(job: LocalJob) -> dict[str, Any]:
    """The ``PutEvents`` entry of SageMaker's state-change event for ``job`` in its current state."""
    detail_type, name_field, status_field = state_change_fields(job.kind)
    arn = job_arn(job.kind, job.name)
    request = job.request
    detail: dict[str, Any] = {
        name_field: job.name,
        status_field: job.status,
        "CreationTime": job.created,
        "LastModifiedTime": job.ended or _now(),
        "StoppingCondition": request.get("StoppingCondition", {}),
        "Tags": request.get("Tags", []),
        "RoleArn": request.get("RoleArn"),
    }
    if job.failure_reason:
        detail["FailureReason"] = job.failure_reason
    final = job.status in FINAL_STATES
    if job.kind == "processing":
        detail.update(
            ProcessingJobArn=arn,
            ProcessingStartTime=job.created,
            ProcessingEndTime=job.ended if final else None,
            AppSpecification=request.get("AppSpecification"),
            ProcessingInputs=request.get("ProcessingInputs", []),
            ProcessingOutputConfig=request.get("ProcessingOutputConfig"),
            ProcessingResources=request.get("ProcessingResources"),
            Environment=request.get("Environment", {}),
        )
        if job.secondary_status:
            detail["ExitMessage"] = job.secondary_status
    else:
        output = request["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        detail.update(
            TrainingJobArn=arn,
            SecondaryStatus=job.secondary_status or job.status,
            TrainingStartTime=job.created,
            TrainingEndTime=job.ended if final else None,
            HyperParameters=request.get("HyperParameters", {}),
            InputDataConfig=request.get("InputDataConfig", []),
            OutputDataConfig=request.get("OutputDataConfig"),
            ResourceConfig=request.get("ResourceConfig"),
            ModelArtifacts={"S3ModelArtifacts": f"{output}/{job.name}/output/{TrainingArchives.MODEL}"},
        )
    return {
        "Source": SAGEMAKER_SOURCE,
        "DetailType": detail_type,
        "Detail": json.dumps(detail),
        "Resources": [arn],
    }


# --- small helpers


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _download(s3: Any, uri: str, target: Path, missing_ok: bool = False) -> None:
    """An object keeps its file name in ``target``; a prefix keeps its relative layout.

    As SageMaker reads an ``S3Prefix`` input: by listing the prefix (the role needs
    ``s3:ListBucket``), then getting each object.
    """
    where = S3Location.parse(uri)
    target.mkdir(parents=True, exist_ok=True)
    key = where.key
    paginator = s3.get_paginator("list_objects_v2")
    if key and not key.endswith("/"):
        listed = [
            item["Key"]
            for page in paginator.paginate(Bucket=where.bucket, Prefix=key)
            for item in page.get("Contents", [])
        ]
        if key in listed:
            s3.download_file(where.bucket, key, str(target / PurePosixPath(key).name))
            return
        key += "/"
    transfers: list[tuple[str, Path]] = []
    for page in paginator.paginate(Bucket=where.bucket, Prefix=key):
        for item in page.get("Contents", []):
            relative = item["Key"][len(key) :]
            if not relative or relative.endswith("/"):
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            transfers.append((item["Key"], destination))
    if not transfers and not missing_ok:
        raise FileNotFoundError(f"nothing at {uri}")
    _in_parallel(lambda transfer: s3.download_file(where.bucket, transfer[0], str(transfer[1])), transfers)


def _download_manifest(s3: Any, uri: str, target: Path) -> None:
    """A SageMaker manifest input: ``[{"prefix": "s3://b/p/"}, "key", ...]``; each object lands at its key."""
    where = S3Location.parse(uri)
    manifest = json.loads(s3.get_object(Bucket=where.bucket, Key=where.key)["Body"].read())
    base = S3Location.parse(manifest[0]["prefix"])
    transfers = [(base.key + key, target / key) for key in manifest[1:]]
    for _, destination in transfers:
        destination.parent.mkdir(parents=True, exist_ok=True)
    _in_parallel(lambda transfer: s3.download_file(base.bucket, transfer[0], str(transfer[1])), transfers)


def _upload_folder(s3: Any, folder: Path, uri: str) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    base = S3Location.parse(uri)

    def upload(path: Path) -> None:
        where = base.child(path.relative_to(folder).as_posix())
        s3.upload_file(str(path), where.bucket, where.key)

    _in_parallel(upload, files)


def _in_parallel(transfer: Callable[[Any], None], items: list[Any]) -> None:
    """Run the S3 transfers of many small files side by side (as SageMaker's own sync does)."""
    with ThreadPoolExecutor(max_workers=TRANSFER_THREADS) as pool:
        for _ in pool.map(transfer, items):  # re-raises the first failure
            pass


def _resolve_executable(name: str) -> str:
    """The container's entrypoint: prefer the one installed beside this Python (the venv)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"cannot find the job command {name!r}")
    return found


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
