"""The local job runner: SageMaker's processing and training jobs, run as subprocesses.

It implements the :class:`~spaceport.contracts.jobspec.JobLauncher` port, so a stage
service launches through it exactly as through the SageMaker adapter. For each job it

1. claims ``<root>/<job name>/`` (the name is the key: a second ``start`` of the same name
   finds it and starts nothing, as SageMaker answers a duplicate ``CreateProcessingJob``);
2. lays out SageMaker's tree in ``<root>/<job name>/ml/`` and downloads the inputs from S3
   (processing: objects into ``processing/input/``; training: each channel's prefix into
   ``input/data/<channel>/`` and ``input/config/hyperparameters.json``);
3. runs the container command (``spaceport sfm``...) with ``SPACEPORT_SAGEMAKER_ROOT``
   pointing at that tree, streaming its log to ``job.log`` and turning every
   ``spaceport-progress`` line into a progress callback;
4. uploads the outputs as SageMaker does (processing: the files of ``processing/output``
   under the output URI; training: ``model.tar.gz`` and ``output.tar.gz`` under
   ``<output URI>/<job name>/output/``);
5. puts SageMaker's state-change event (``source: aws.sagemaker``) on the default bus,
   with ``FailureReason`` taken from ``/opt/ml/output/failure``.

The job's state lives in ``state.json`` beside it, so ``describe`` and ``stop`` work from
any thread or process that shares the root (``stop`` sends SIGTERM to the job's process
group, then SIGKILL after a grace period, as SageMaker does).

Example::

    runner = LocalJobRunner(Path("/tmp/spaceport-jobs"))
    runner.start(spec)                    # returns at once; the job runs in a thread
    runner.wait(spec.name, timeout_s=600).status     # "Completed"
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from spaceport.adapters.s3 import S3Location
from spaceport.container import ROOT_ENV, ProcessingPaths, TrainingPaths
from spaceport.contracts.jobspec import JobState, StageJobSpec
from spaceport.contracts.topology import SAGEMAKER_SOURCE, state_change_fields
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode
from spaceport.files import write_json_atomic
from spaceport.progress import ProgressEvent

# Called with the job's spec and each progress line it prints.
ProgressSink = Callable[[StageJobSpec, ProgressEvent], None]

FINAL_STATES = ("Completed", "Failed", "Stopped")
# SageMaker sends SIGTERM, then SIGKILL when the container has not exited after 30 s.
STOP_GRACE_S = 30.0
# Files moved to or from S3 at once when a job's inputs or outputs are synced.
TRANSFER_THREADS = 8
_REGION_FALLBACK = "us-east-1"
_ACCOUNT = "123456789012"


class JobNotFoundError(SpaceportError, LookupError):
    """No job of that name was ever started by this runner."""

    code = "job_not_found"
    exit_code = ExitCode.LOCAL_JOB_NOT_FOUND


class LocalJobRunner:
    """Runs stage jobs as local subprocesses under SageMaker's directory layout."""

    def __init__(self, root: Path, progress: ProgressSink | None = None, stop_grace_s: float = STOP_GRACE_S) -> None:
        self.root = Path(root).resolve()  # the job runs in its own folder; its paths must not be relative
        self.root.mkdir(parents=True, exist_ok=True)
        self.progress = progress
        self.stop_grace_s = stop_grace_s
        self._threads: dict[str, threading.Thread] = {}

    # --- the JobLauncher port

    def start(self, spec: StageJobSpec) -> bool:
        job_dir = self.root / spec.name
        try:
            job_dir.mkdir()  # atomic: the one caller that creates it runs the job
        except FileExistsError:
            return False
        write_json_atomic(job_dir / "spec.json", _spec_to_dict(spec))
        now = _now()
        self._save_state(spec.name, {"status": "InProgress", "pid": None, "created": now, "started": now})
        thread = threading.Thread(target=self._run, args=(spec, job_dir), name=f"job-{spec.name}", daemon=True)
        self._threads[spec.name] = thread
        thread.start()
        return True

    def stop(self, name: str) -> None:
        state = self._load_state(name)
        if state["status"] in FINAL_STATES:
            return
        self._save_state(name, {**state, "status": "Stopping"})
        pid = state.get("pid")
        if pid:
            _signal_group(pid, signal.SIGTERM)
            kill = threading.Timer(self.stop_grace_s, _signal_group, args=(pid, signal.SIGKILL))
            kill.daemon = True
            kill.start()

    def describe(self, name: str) -> JobState:
        state = self._load_state(name)
        return JobState(name=name, status=state["status"], failure_reason=state.get("failure_reason"))

    # --- helpers for the runtime and tests

    def wait(self, name: str, timeout_s: float) -> JobState:
        """Block until the job ends (or ``timeout_s`` passes) and return its state."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = self.describe(name)
            if state.status in FINAL_STATES:
                thread = self._threads.get(name)
                if thread is not None:
                    thread.join(timeout=max(0.0, deadline - time.monotonic()))
                return state
            time.sleep(0.1)
        return self.describe(name)

    def log_path(self, name: str) -> Path:
        return self.root / name / "job.log"

    def running(self) -> list[str]:
        """Names of the jobs this runner started that have not ended."""
        return [name for name, thread in self._threads.items() if thread.is_alive()]

    def timings(self, name: str) -> dict[str, Any]:
        """When the job's command started and ended (epoch seconds), read from its state."""
        return self._load_state(name)

    # --- the job's life

    def _run(self, spec: StageJobSpec, job_dir: Path) -> None:
        ml_root = job_dir / "ml"
        status, reason = "Failed", None
        try:
            self._download_inputs(spec, ml_root)
            returncode = self._execute(spec, job_dir, ml_root)
            stopping = self._load_state(spec.name)["status"] == "Stopping"
            if stopping:
                status = "Stopped"
            elif returncode == 0:
                status = "Completed"
            else:
                failure = ml_root / "output" / "failure"
                reason = failure.read_text().strip() if failure.exists() else None
                reason = reason or f"AlgorithmError: the job exited with code {returncode}; see {job_dir / 'job.log'}"
            if status != "Stopped":
                # SageMaker uploads what the job left even when it failed, so the report
                # that explains the failure is readable beside it.
                self._upload_outputs(spec, ml_root)
        except Exception as error:  # a runner fault fails the job as SageMaker's InternalServerError would
            reason = f"InternalServerError: the local job runner failed: {error}"
            with (job_dir / "job.log").open("a") as log:
                log.write(f"\n{reason}\n")
        state = self._load_state(spec.name)
        self._save_state(spec.name, {**state, "status": status, "failure_reason": reason, "pid": None, "ended": _now()})
        self._emit_state_change(spec, status, reason, state)

    def _download_inputs(self, spec: StageJobSpec, ml_root: Path) -> None:
        s3 = _client("s3")
        if spec.kind == "processing":
            target = ProcessingPaths(ml_root).input
            target.mkdir(parents=True, exist_ok=True)
            for uri in spec.inputs.values():
                _download_uri(s3, uri, target)
            ProcessingPaths(ml_root).output.mkdir(parents=True, exist_ok=True)
        else:
            paths = TrainingPaths(ml_root)
            for channel, uri in spec.inputs.items():
                paths.channel(channel).mkdir(parents=True, exist_ok=True)
                _download_uri(s3, uri, paths.channel(channel))
            write_json_atomic(paths.hyperparameters_file, {k: str(v) for k, v in spec.hyperparameters.items()})
            for folder in (paths.model, paths.checkpoints, ml_root / "output" / "data"):
                folder.mkdir(parents=True, exist_ok=True)
            if spec.checkpoint_uri:
                # A first attempt has no checkpoints yet; a retried one resumes from them.
                _download_uri(s3, spec.checkpoint_uri, paths.checkpoints, missing_ok=True)

    def _execute(self, spec: StageJobSpec, job_dir: Path, ml_root: Path) -> int:
        env = {**os.environ, **spec.environment, ROOT_ENV: str(ml_root), "PYTHONUNBUFFERED": "1"}
        command = [_resolve_executable(spec.command[0]), *spec.command[1:]]
        with (job_dir / "job.log").open("w") as log:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=job_dir,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
            state = self._load_state(spec.name)
            self._save_state(spec.name, {**state, "pid": process.pid, "command_started": time.time()})
            if state["status"] == "Stopping":  # stopped while its inputs were downloading
                _signal_group(process.pid, signal.SIGTERM)
            assert process.stdout is not None
            for line in process.stdout:
                log.write(line)
                log.flush()
                event = ProgressEvent.from_line(line)
                if event is not None and self.progress is not None:
                    try:
                        self.progress(spec, event)
                    except Exception as error:  # progress is best effort; the job goes on
                        log.write(f"(progress not recorded: {error})\n")
            returncode = process.wait()
        state = self._load_state(spec.name)
        self._save_state(spec.name, {**state, "command_ended": time.time(), "exit_code": returncode})
        return returncode

    def _upload_outputs(self, spec: StageJobSpec, ml_root: Path) -> None:
        s3 = _client("s3")
        bucket, prefix = _split_s3(spec.output_uri)
        if spec.kind == "processing":
            output = ProcessingPaths(ml_root).output
            files = sorted(p for p in output.rglob("*") if p.is_file())
            _in_parallel(
                lambda path: s3.upload_file(str(path), bucket, _join_key(prefix, path.relative_to(output).as_posix())),
                files,
            )
            return
        paths = TrainingPaths(ml_root)
        archive_prefix = _join_key(prefix, f"{spec.name}/output")
        for folder, archive in ((paths.model, "model.tar.gz"), (ml_root / "output" / "data", "output.tar.gz")):
            tarball = ml_root.parent / archive
            with tarfile.open(tarball, "w:gz") as tar:
                for path in sorted(folder.rglob("*")):
                    tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
            s3.upload_file(str(tarball), bucket, f"{archive_prefix}/{archive}")
        if spec.checkpoint_uri:
            checkpoint_bucket, checkpoint_prefix = _split_s3(spec.checkpoint_uri)
            files = sorted(p for p in paths.checkpoints.rglob("*") if p.is_file())
            _in_parallel(
                lambda path: s3.upload_file(
                    str(path),
                    checkpoint_bucket,
                    _join_key(checkpoint_prefix, path.relative_to(paths.checkpoints).as_posix()),
                ),
                files,
            )

    def _emit_state_change(self, spec: StageJobSpec, status: str, reason: str | None, state: dict) -> None:
        entry = state_change_entry(spec, status, reason, state.get("created"), _now())
        response = _client("events").put_events(Entries=[entry])
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"could not put the state change of {spec.name}: {response['Entries']}")

    # --- state.json

    def _load_state(self, name: str) -> dict[str, Any]:
        path = self.root / name / "state.json"
        if not path.exists():
            raise JobNotFoundError(f"No local job named {name!r} was started.")
        return json.loads(path.read_text())

    def _save_state(self, name: str, state: dict[str, Any]) -> None:
        write_json_atomic(self.root / name / "state.json", state)


def state_change_entry(
    spec: StageJobSpec, status: str, failure_reason: str | None, created: str | None, ended: str | None
) -> dict[str, Any]:
    """The ``PutEvents`` entry of SageMaker's state-change event for ``spec`` in ``status``."""
    detail_type, name_field, status_field = state_change_fields(spec.kind)
    region = boto3.session.Session().region_name or _REGION_FALLBACK
    kind_arn = "processing-job" if spec.kind == "processing" else "training-job"
    arn = f"arn:aws:sagemaker:{region}:{_ACCOUNT}:{kind_arn}/{spec.name}"
    tags = [{"Key": key, "Value": value} for key, value in spec.tags.items()]
    detail: dict[str, Any] = {
        name_field: spec.name,
        status_field: status,
        "CreationTime": created,
        "LastModifiedTime": ended,
        "Tags": tags,
    }
    if failure_reason:
        detail["FailureReason"] = failure_reason
    if spec.kind == "processing":
        detail.update(
            ProcessingJobArn=arn,
            ProcessingStartTime=created,
            ProcessingEndTime=ended if status in FINAL_STATES else None,
            AppSpecification={"ContainerEntrypoint": list(spec.command)},
            ProcessingInputs=[
                {"InputName": name, "S3Input": {"S3Uri": uri, "LocalPath": "/opt/ml/processing/input"}}
                for name, uri in spec.inputs.items()
            ],
            ProcessingOutputConfig={
                "Outputs": [
                    {
                        "OutputName": "output",
                        "S3Output": {"S3Uri": spec.output_uri, "LocalPath": "/opt/ml/processing/output"},
                    }
                ]
            },
            Environment=dict(spec.environment),
        )
    else:
        output = spec.output_uri.rstrip("/")
        detail.update(
            TrainingJobArn=arn,
            SecondaryStatus=status,
            TrainingStartTime=created,
            TrainingEndTime=ended if status in FINAL_STATES else None,
            HyperParameters={k: str(v) for k, v in spec.hyperparameters.items()},
            InputDataConfig=[
                {"ChannelName": name, "DataSource": {"S3DataSource": {"S3Uri": uri}}}
                for name, uri in spec.inputs.items()
            ],
            OutputDataConfig={"S3OutputPath": spec.output_uri},
            ModelArtifacts={"S3ModelArtifacts": f"{output}/{spec.name}/output/model.tar.gz"},
        )
    return {"Source": SAGEMAKER_SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail), "Resources": [arn]}


# --- small helpers


def _client(name: str):
    """A client from a session of its own: boto3's default session is not safe to share across threads."""
    return boto3.session.Session().client(name)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _spec_to_dict(spec: StageJobSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "kind": spec.kind,
        "command": list(spec.command),
        "inputs": spec.inputs,
        "output_uri": spec.output_uri,
        "hyperparameters": spec.hyperparameters,
        "tags": spec.tags,
        "environment": spec.environment,
        "checkpoint_uri": spec.checkpoint_uri,
    }


def _split_s3(uri: str) -> tuple[str, str]:
    where = S3Location.parse(uri)
    return where.bucket, where.key


def _join_key(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}" if prefix.strip("/") else name


def _download_uri(s3, uri: str, target: Path, missing_ok: bool = False) -> None:
    """An object keeps its file name in ``target``; a prefix keeps its relative layout."""
    bucket, key = _split_s3(uri)
    if key and not key.endswith("/"):
        try:
            s3.head_object(Bucket=bucket, Key=key)
            s3.download_file(bucket, key, str(target / Path(key).name))
            return
        except s3.exceptions.ClientError as error:
            if error.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
                raise
        key += "/"
    transfers: list[tuple[str, Path]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
        for item in page.get("Contents", []):
            relative = item["Key"][len(key) :]
            if not relative or relative.endswith("/"):
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            transfers.append((item["Key"], destination))
    if not transfers and not missing_ok:
        raise FileNotFoundError(f"nothing at {uri}")
    _in_parallel(lambda transfer: s3.download_file(bucket, transfer[0], str(transfer[1])), transfers)


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


# --- the one runner of this process

_shared: LocalJobRunner | None = None
_shared_lock = threading.Lock()


def install_shared_runner(runner: LocalJobRunner | None) -> None:
    """Make ``runner`` the one :func:`shared_runner` returns (the local stack installs its own)."""
    global _shared
    with _shared_lock:
        _shared = runner


def shared_runner() -> LocalJobRunner:
    """The process's local job runner: what a service launches through when ``job_runner`` is ``local``.

    The local stack installs one wired to the job store (progress) and its own job folder;
    without a stack, one is made over ``$TMPDIR/spaceport-jobs`` with no progress sink.
    """
    global _shared
    with _shared_lock:
        if _shared is None:
            import tempfile

            _shared = LocalJobRunner(Path(tempfile.gettempdir()) / "spaceport-jobs")
        return _shared
