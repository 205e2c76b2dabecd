"""``spaceport serve | run | status | replay``: the local runtime's commands.

``serve`` runs the stack until Ctrl-C and leaves ``spaceport-out/.stack/serve.json`` so
that ``status`` and ``replay`` (in another terminal) find it. ``run`` starts its own stack,
sends one capture through it and saves the results. Nothing here touches real AWS: every
call goes to the stack's moto server.

Example::

    spaceport run photos.zip --email me@example.com --preset quick
    spaceport status 3f2a9c... --json
    spaceport replay --job 3f2a9c... --from train --set steps=500
    spaceport replay --archive --since 30m
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import boto3

from spaceport.adapters.jobstore import DynamoJobStore
from spaceport.adapters.s3 import S3Location
from spaceport.contracts.job import JobRecord, JobStatus
from spaceport.contracts.stages import JOB_STAGES
from spaceport.contracts.topology import PIPELINE_BUS, SERVICES, service
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode
from spaceport.files import atomic_path, write_json_atomic
from spaceport.local.aws import sent_emails
from spaceport.local.client import GatewayClient
from spaceport.local.stack import DEFAULT_GATEWAY_PORT, LocalStack, StackOptions

OUT_ROOT = Path("spaceport-out")
STATE_FILE = "serve.json"
BAR_WIDTH = 30


class NoStackError(SpaceportError):
    code = "no_local_stack"
    exit_code = ExitCode.NO_LOCAL_STACK


class JobNotCompletedError(SpaceportError):
    code = "job_not_completed"
    exit_code = ExitCode.JOB_NOT_COMPLETED


class UnknownJobError(SpaceportError):
    code = "unknown_job"
    exit_code = ExitCode.UNKNOWN_JOB


# --- spaceport serve


def serve_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spaceport serve",
        description="Run the whole stack on this machine until Ctrl-C: moto as local AWS, the topology, "
        "the gateway on http://127.0.0.1:8000 (and the web app from web/dist), one worker per "
        "service, and the local job runner. The API key comes from SPACEPORT_API_KEY; one is "
        "generated and printed when it is unset.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_GATEWAY_PORT, help="gateway port (default 8000)")
    parser.add_argument("--out", type=Path, default=OUT_ROOT, help="where job folders and state go")
    args = parser.parse_args(argv)
    return _guard(lambda: _serve(args))


def _serve(args: argparse.Namespace) -> int:
    stack = LocalStack(StackOptions(workdir=args.out / ".stack", gateway_port=args.port)).start()
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    state = {
        "gateway_url": stack.gateway_url,
        "api_key": stack.api_key,
        "aws_endpoint": stack.aws.endpoint,
        "jobs_table": stack.config.jobs_table,
        "pid": os.getpid(),
    }
    state_file = args.out / ".stack" / STATE_FILE
    _write_private_json(state_file, state)
    print(f"Spaceport is running: gateway {stack.gateway_url}   local AWS {stack.aws.endpoint}")
    if stack.generated_api_key:
        print(f"API key (generated; set SPACEPORT_API_KEY to choose one): {stack.api_key}")
    if stack.options.web_dist and stack.options.web_dist.is_dir():
        print(f"Web app: {stack.gateway_url}/")
    print("Ctrl-C stops it.", flush=True)
    try:
        stopping.wait()
    finally:
        print("Stopping (running jobs are stopped)...", flush=True)
        state_file.unlink(missing_ok=True)
        stack.stop()
    return 0


# --- spaceport run


def run_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spaceport run",
        description="Start the local stack, upload PHOTOS.zip through POST /uploads, POST /jobs, show live "
        "progress, and save the results (.sog, .ply, reports, the email as .html and .eml) in "
        "./spaceport-out/<job>/. Exits 0 only when the job completed.",
    )
    parser.add_argument("photos", type=Path, help="a ZIP of photos (spaceport sample makes one)")
    parser.add_argument("--email", required=True, help="where the result email goes (captured locally)")
    parser.add_argument("--preset", choices=("quick", "default", "quality"), help="training preset")
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="K=V",
        help="a job option (matcher, mapper, steps, sh_bands, from_stage); repeatable",
    )
    parser.add_argument("--out", type=Path, default=OUT_ROOT, help="results root (default ./spaceport-out)")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_GATEWAY_PORT,
        help="gateway port (default 8000; a free one is used when it is taken)",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    args = parser.parse_args(argv)
    return _guard(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    if not args.photos.is_file():
        raise UnknownJobError(f"There is no file at {args.photos}.")
    options = parse_options(args.option, preset=args.preset)
    port = args.port if _port_free(args.port) else 0
    # The stack stops itself, and any job still running, on Ctrl-C or any error.
    print("starting the local stack (moto as AWS, gateway, workers, job runner)...", flush=True)
    with LocalStack(StackOptions(workdir=args.out / ".stack", gateway_port=port)) as stack:
        api = GatewayClient(stack.gateway_url, stack.api_key)
        print(
            f"gateway {stack.gateway_url}; uploading {args.photos.name} ({args.photos.stat().st_size:,} bytes)",
            flush=True,
        )
        s3_url = api.upload(args.photos)
        job_id = api.create_job(s3_url, args.email, options)
        print(f"job {job_id}", flush=True)
        store = _job_store(stack.config.jobs_table)
        record = follow(store, job_id, "r1", timeout_s=args.timeout)
        stack.wait_until_idle(timeout_s=30)  # let notify finish its email
        out_dir = save_outputs(store.get(job_id) or record, args.out, stack.aws.endpoint)
    return _report(record, out_dir)


# --- spaceport status


def status_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spaceport status",
        description="Show a job: from the running `spaceport serve`, else from ./spaceport-out/<job>/job.json.",
    )
    parser.add_argument("job", help="the job id")
    parser.add_argument("--json", action="store_true", help="print the job record as JSON")
    parser.add_argument("--out", type=Path, default=OUT_ROOT, help="results root (default ./spaceport-out)")
    args = parser.parse_args(argv)
    return _guard(lambda: _status(args))


def _status(args: argparse.Namespace) -> int:
    record = None
    state = _serve_state(args.out)
    if state is not None:
        _use_stack(state)
        record = _job_store(state["jobs_table"]).get(args.job)
    saved = args.out / args.job / "job.json"
    if record is None and saved.exists():
        record = JobRecord.model_validate_json(saved.read_text())
    if record is None:
        where = "the running stack" if state else f"{args.out} (no `spaceport serve` is running)"
        raise UnknownJobError(f"No job {args.job!r} in {where}.")
    if args.json:
        print(record.model_dump_json(indent=2))
    else:
        print(describe(record))
    return 0


# --- spaceport replay


def replay_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spaceport replay",
        description="Reprocess on the running `spaceport serve`. With --job: a new run of that job from a "
        "stage (POST /jobs/{id}/reprocess), reusing the earlier run's artifacts; progress is shown "
        "and the results saved. With --archive: EventBridge StartReplay of the archived pipeline "
        "events between --since and --until (consumers are idempotent, so only what did not "
        "happen yet happens).",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--job", help="the job to reprocess")
    target.add_argument("--archive", action="store_true", help="replay archived events (StartReplay)")
    parser.add_argument(
        "--from",
        dest="from_stage",
        choices=[s.value for s in JOB_STAGES],
        default="train",
        help="with --job: the stage the new run starts from (default train)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="K=V",
        help="with --job: an option for the new run (steps=500, sh_bands=1, preset=quick); repeatable",
    )
    parser.add_argument("--since", help="with --archive: start of the window (ISO time, or 30m / 2h / 1d ago)")
    parser.add_argument("--until", default="now", help="with --archive: end of the window (default now)")
    parser.add_argument(
        "--consumer",
        action="append",
        default=[],
        choices=[spec.name for spec in SERVICES],
        help="with --archive: replay only to this service's pipeline rules (StartReplay "
        "FilterArns); repeatable; default every rule on the bus",
    )
    parser.add_argument("--no-wait", action="store_true", help="with --job: return once the run is accepted")
    parser.add_argument("--out", type=Path, default=OUT_ROOT, help="results root (default ./spaceport-out)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    args = parser.parse_args(argv)
    if args.archive and not args.since:
        parser.error("--archive needs --since")
    return _guard(lambda: _replay(args))


def _replay(args: argparse.Namespace) -> int:
    state = _serve_state(args.out)
    if state is None:
        raise NoStackError("No local stack is running: start `spaceport serve` (in another terminal) first.")
    _use_stack(state)
    if args.archive:
        return replay_archive(parse_time(args.since), parse_time(args.until), args.consumer)
    options = parse_options(args.set)
    answer = GatewayClient(state["gateway_url"], state["api_key"]).reprocess(args.job, args.from_stage, options)
    run_id = answer.get("runId") or answer.get("run_id")
    print(f"job {args.job} run {run_id} from {args.from_stage}", flush=True)
    if args.no_wait:
        return 0
    store = _job_store(state["jobs_table"])
    record = follow(store, args.job, run_id, timeout_s=args.timeout)
    time.sleep(1.0)  # notify's email follows the final transition
    out_dir = save_outputs(store.get(args.job) or record, args.out, state["aws_endpoint"])
    return _report(record, out_dir)


def replay_archive(since: datetime, until: datetime, consumers: Sequence[str] = ()) -> int:
    """``StartReplay`` of the pipeline archive between ``since`` and ``until``; waits for it.

    With ``consumers`` (service names), only those services' rules on the pipeline bus get
    the events (``FilterArns``); otherwise every rule on the bus does.
    """
    from spaceport.config import PipelineConfig
    from spaceport.local.provision import archive_name

    events = boto3.client("events")
    archive = events.describe_archive(ArchiveName=archive_name(PipelineConfig.from_env()))
    destination: dict[str, Any] = {"Arn": archive["EventSourceArn"]}
    if consumers:
        bus = archive["EventSourceArn"].split("/")[-1]
        rules = [
            subscription.rule_name
            for name in consumers
            for subscription in service(name).subscriptions
            if subscription.bus == PIPELINE_BUS
        ]
        destination["FilterArns"] = [events.describe_rule(Name=rule, EventBusName=bus)["Arn"] for rule in rules]
    name = f"spaceport-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    events.start_replay(
        ReplayName=name,
        EventSourceArn=archive["ArchiveArn"],
        EventStartTime=since,
        EventEndTime=until,
        Destination=destination,
    )
    for _ in range(600):
        replay = events.describe_replay(ReplayName=name)
        if replay["State"] in ("COMPLETED", "FAILED", "CANCELLED"):
            break
        time.sleep(0.5)
    print(f"replay {name}: {replay['State']} ({since.isoformat()} .. {until.isoformat()})")
    return 0 if replay["State"] == "COMPLETED" else 1


# --- shared pieces


def parse_options(pairs: list[str], preset: str | None = None) -> dict[str, Any]:
    """``["steps=500", "matcher=sequential"]`` -> ``{"steps": 500, "matcher": "sequential"}``.

    The gateway validates the names and values; here numbers are only made numbers.
    """
    options: dict[str, Any] = {"preset": preset} if preset else {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise argparse.ArgumentTypeError(f"options are NAME=VALUE, not {pair!r}")
        options[name.strip()] = int(value) if value.strip().lstrip("-").isdigit() else value.strip()
    return options


def parse_time(text: str) -> datetime:
    """An ISO time, ``now``, or a span ago such as ``30m``, ``2h``, ``1d``, ``45s``."""
    now = datetime.now(UTC)
    if text == "now":
        return now
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    if text[-1:] in units and text[:-1].isdigit():
        return now - timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SpaceportError(f"{text!r} is not a time: use ISO 8601 (2026-11-27T18:00:00Z) or 30m / 2h ago.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def follow(
    store: DynamoJobStore, job_id: str, run_id: str, timeout_s: float, poll_s: float = 0.5, stream=None
) -> JobRecord:
    """Show the job's progress until run ``run_id`` ends; returns the final record."""
    stream = stream or sys.stdout
    live = stream.isatty()
    started = time.monotonic()
    last_line, last_step = "", None
    while True:
        record = store.get(job_id)
        if record is None:
            raise UnknownJobError(f"No job {job_id!r} in the job store.")
        elapsed = time.monotonic() - started
        line = progress_line(record, elapsed)
        # Not a terminal (a log, CI): one line per stage, status and tenth of the stage.
        step = (record.stage, record.status, int(record.stage_percent // 10))
        if live:
            stream.write("\r" + line.ljust(len(last_line)))
        elif step != last_step:
            stream.write(line + "\n")
        stream.flush()
        last_line, last_step = line, step
        if record.run_id == run_id and record.status.is_final:
            if live:
                stream.write("\n")
            return record
        if elapsed > timeout_s:
            raise JobNotCompletedError(
                f"Job {job_id} did not finish within {timeout_s:.0f} s (still {record.status.value})."
            )
        time.sleep(poll_s)


def progress_line(record: JobRecord, elapsed_s: float) -> str:
    """``sfm      [#########.....................]  30%  00:42  RUNNING``."""
    percent = 100.0 if record.status is JobStatus.SUCCEEDED else max(0.0, min(100.0, record.stage_percent))
    filled = int(round(BAR_WIDTH * percent / 100))
    minutes, seconds = divmod(int(elapsed_s), 60)
    return (
        f"{record.stage.value:<8} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {percent:3.0f}%  "
        f"{minutes:02d}:{seconds:02d}  {record.status.value}"
    )


def describe(record: JobRecord) -> str:
    lines = [
        f"job {record.job_id}  {record.status.value}  stage {record.stage.value} {record.stage_percent:.0f}%  "
        f"run {record.run_id} attempt {record.attempt}",
        f"  email {record.email}   created {record.created_at:%Y-%m-%d %H:%M:%S}   updated {record.updated_at:%H:%M:%S}",
    ]
    if record.error is not None:
        lines.append(f"  error ({record.error.stage.value}, {record.error.code}): {record.error.message}")
    lines += [f"  {name}: {uri}" for name, uri in sorted(record.artifacts.items())]
    lines += [f"  {name} = {value}" for name, value in sorted(record.summary.items())]
    lines += [f"  run {run.run_id} from {run.from_stage.value}: {run.status.value}" for run in record.runs]
    return "\n".join(lines)


def save_outputs(record: JobRecord, out_root: Path, aws_endpoint: str) -> Path:
    """Download the run's results and its email into ``out_root/<job>/`` (``.../<job>/<run>/`` after r1)."""
    out_dir = out_root / record.job_id if record.run_id == "r1" else out_root / record.job_id / record.run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    s3 = boto3.client("s3")
    for name, uri in sorted(record.artifacts.items()):
        # Folders (the SfM tree), archives and the photos stay in S3; the results come down.
        if not uri.startswith("s3://") or uri.endswith(("/", ".tar.gz", ".zip")):
            continue
        where = S3Location.parse(uri)
        file_name = Path(where.key).name
        if not file_name.endswith((".sog", ".ply")):
            file_name = f"{name}{Path(file_name).suffix}"
        _download(s3, where, out_dir / file_name)
    (out_dir / "job.json").write_text(record.model_dump_json(indent=2))
    email = latest_email(aws_endpoint, record)
    if email is not None:
        (out_dir / "email.eml").write_bytes(email.as_bytes())
        html = next((part for part in email.walk() if part.get_content_type() == "text/html"), None)
        if html is not None:
            (out_dir / "email.html").write_bytes(html.get_payload(decode=True))
    return out_dir


def latest_email(aws_endpoint: str, record: JobRecord) -> Message | None:
    """The last email SES accepted for this job (moto keeps every message sent)."""
    mine = [m for m in sent_emails(aws_endpoint) if record.email in (m.get("To") or "") and _mentions(m, record.job_id)]
    return mine[-1] if mine else None


def _mentions(email: Message, text: str) -> bool:
    """Whether ``text`` appears in the email's subject or any decoded text part."""
    parts = [email.get("Subject") or ""]
    parts += [
        part.get_payload(decode=True).decode(errors="replace")
        for part in email.walk()
        if part.get_content_maintype() == "text"
    ]
    return any(text in part for part in parts)


def _download(s3: Any, where: S3Location, target: Path) -> None:
    with atomic_path(target) as partial:
        s3.download_file(where.bucket, where.key, str(partial))


def _report(record: JobRecord, out_dir: Path) -> int:
    print(describe(record))
    print(f"outputs: {out_dir}/")
    for path in sorted(out_dir.iterdir()):
        if path.is_file():
            print(f"  {path.name}  ({path.stat().st_size:,} bytes)")
    if record.status is not JobStatus.SUCCEEDED:
        raise JobNotCompletedError(
            f"Job {record.job_id} ended {record.status.value}" + (f": {record.error.message}" if record.error else ".")
        )
    return 0


def _job_store(table: str) -> DynamoJobStore:
    return DynamoJobStore(boto3.resource("dynamodb").Table(table))


def _serve_state(out_root: Path) -> dict[str, Any] | None:
    """The running ``spaceport serve``'s endpoints, or ``None`` when none answers."""
    path = out_root / ".stack" / STATE_FILE
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    try:
        os.kill(int(state["pid"]), 0)
    except (ProcessLookupError, ValueError, KeyError):
        return None
    return state


def _use_stack(state: dict[str, Any]) -> None:
    from spaceport.local.aws import LocalAws

    os.environ.update({**LocalAws().environment(), "AWS_ENDPOINT_URL": state["aws_endpoint"]})


def _write_private_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, data, mode=0o600)  # it holds the API key


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _guard(body) -> int:
    """Plain message and exit code for an expected failure; 130 on Ctrl-C."""
    from spaceport.entrypoint import run_job

    try:
        return run_job(body)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
