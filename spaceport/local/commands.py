"""``spaceport serve | run | status | replay | token``: the local runtime's commands (parsing and what each does).

``serve`` runs the stack until Ctrl-C and leaves its state file (:mod:`spaceport.local.client`)
so that ``status``, ``replay`` and ``token`` in another terminal find it. ``run`` starts its
own stack, signs in to its user pool as ``--email``, sends one capture through it as that user
and saves the results (:mod:`spaceport.local.results`). ``status`` and ``replay`` act as the
local operator; ``token`` prints an ID token for curl and tests. Nothing here touches real AWS:
every call goes to the stack's moto server.

>>> parse_options(["steps=500", "matcher=sequential"], preset="quick")
{'preset': 'quick', 'steps': 500, 'matcher': 'sequential'}
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from spaceport.contracts.deployment import LOCAL_DEPLOYMENT, LOCAL_GATEWAY_PORT, deployment_from_env
from spaceport.contracts.job import JobRecord, JobStatus
from spaceport.contracts.links import status_url, viewer_url
from spaceport.contracts.stages import JOB_STAGES
from spaceport.contracts.topology import SERVICES
from spaceport.entrypoint import run_job
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode
from spaceport.local.aws import REGION
from spaceport.local.client import (
    GatewayClient,
    RunningStack,
    replay_archive,
    require_running_stack,
    running_stack,
    state_file,
    write_aws_state,
    write_stack_state,
)
from spaceport.local.cognito import sign_in_user
from spaceport.local.progress_view import JobNotCompletedError, describe, follow
from spaceport.local.results import JOB_FILE, SavedResultsServer, save_outputs
from spaceport.local.runner import CORES_PER_JOB, default_concurrency
from spaceport.local.stack import REPO_ROOT, LocalStack, StackOptions

OUT_ROOT = Path("spaceport-out")


class UnknownJobError(SpaceportError):
    code = "unknown_job"
    exit_code = ExitCode.UNKNOWN_JOB


class LocalOnlyError(SpaceportError):
    """A command of the local runtime was pointed at a deployed stack."""

    code = "local_only"
    exit_code = ExitCode.LOCAL_ONLY


# --- spaceport serve


def serve_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spaceport serve",
        description="Run the whole stack on this machine until Ctrl-C: moto as local AWS, the topology, "
        f"the gateway on http://127.0.0.1:{LOCAL_GATEWAY_PORT} (and the web app from web/dist), one worker per "
        "service, and the local job runner. Sign in on the web app, or get an ID token for curl "
        "with `spaceport token EMAIL`.",
    )
    parser.add_argument(
        "--port", type=int, default=LOCAL_GATEWAY_PORT, help=f"gateway port (default {LOCAL_GATEWAY_PORT})"
    )
    parser.add_argument("--out", type=Path, default=OUT_ROOT, help="where job folders and state go")
    _add_jobs_option(parser)
    args = parser.parse_args(argv)
    return _guard(lambda: _serve(args))


def _add_jobs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=_job_count,
        default=default_concurrency(),
        help="SageMaker jobs run at once, e.g. the blocks of a large capture (default: the cores over "
        f"{CORES_PER_JOB}, here %(default)s)",
    )


def _serve(args: argparse.Namespace) -> int:
    stack = LocalStack(
        StackOptions(workdir=args.out / ".stack", gateway_port=args.port, max_concurrent_jobs=args.jobs)
    ).start()
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    assert stack.resources is not None and stack.resources.user_pool is not None
    assert stack.resources.operator is not None
    running = RunningStack(stack.gateway_url, stack.aws.endpoint, os.getpid(), stack.resources.user_pool)
    state = write_stack_state(args.out, running)
    aws = write_aws_state(args.out, stack.aws.endpoint, REGION, stack.resources.operator)
    print(f"Spaceport is running: gateway {stack.gateway_url}   local AWS {stack.aws.endpoint}")
    print(f"Local AWS as an operator (IAM enforced for every unit's role): {aws}")
    print("Sign in: `spaceport token you@example.com` prints an ID token (send it as Authorization).")
    if stack.options.web_dist and stack.options.web_dist.is_dir():
        print(f"Web app: {stack.gateway_url}/")
    print("Ctrl-C stops it.", flush=True)
    try:
        stopping.wait()
    finally:
        print("Stopping (running jobs are stopped)...", flush=True)
        state.unlink(missing_ok=True)
        aws.unlink(missing_ok=True)
        stack.stop()
    return 0


# --- spaceport view


def view_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spaceport view",
        description="Serve the runs `spaceport run` saved in OUT (default ./spaceport-out) as the local gateway "
        "served them: the web app, each job's page and viewer, and the files the saved email links, until Ctrl-C.",
    )
    parser.add_argument("job", nargs="?", help="the job to open (default: the newest saved one)")
    parser.add_argument("--out", type=Path, default=OUT_ROOT, help="where `spaceport run` saved the runs")
    parser.add_argument(
        "--port", type=int, default=LOCAL_GATEWAY_PORT, help=f"port (default {LOCAL_GATEWAY_PORT}, the gateway's)"
    )
    args = parser.parse_args(argv)
    return _guard(lambda: _view(args))


def _view(args: argparse.Namespace) -> int:
    saved = sorted(args.out.glob(f"*/{JOB_FILE}"), key=lambda path: path.stat().st_mtime)
    job = args.job or (saved[-1].parent.name if saved else None)
    if job is None or not (args.out / job / JOB_FILE).is_file():
        raise SpaceportError(
            f"No saved run {'of ' + job if job else ''} in {args.out}/: `spaceport run` saves one there."
        )
    if not _port_free(args.port):
        raise SpaceportError(f"Port {args.port} is in use (a running `spaceport serve`?): pass --port.")
    server = SavedResultsServer(args.out, args.port, REPO_ROOT / "web" / "dist").start()
    print(f"job {job}: {status_url(server.base_url, job)}   viewer: {viewer_url(server.base_url, job)}")
    print("Ctrl-C stops it.", flush=True)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    try:
        stopping.wait()
    finally:
        server.stop()
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
    parser.add_argument(
        "--email",
        required=True,
        help="the local user the job runs as (created and signed in if needed); the result email goes "
        "there (captured locally)",
    )
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
        default=LOCAL_GATEWAY_PORT,
        help=f"gateway port (default {LOCAL_GATEWAY_PORT}; a free one is used when it is taken)",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    _add_jobs_option(parser)
    args = parser.parse_args(argv)
    return _guard(lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    if not args.photos.is_file():
        raise UnknownJobError(f"There is no file at {args.photos}.")
    options = parse_options(args.option, preset=args.preset)
    port = args.port if _port_free(args.port) else 0
    # The stack stops itself, and any job still running, on Ctrl-C or any error.
    print("starting the local stack (moto as AWS, gateway, workers, job runner)...", flush=True)
    with LocalStack(
        StackOptions(workdir=args.out / ".stack", gateway_port=port, max_concurrent_jobs=args.jobs)
    ) as stack:
        assert stack.resources is not None and stack.resources.user_pool is not None
        user = sign_in_user(stack.resources.user_pool, args.email)
        api = GatewayClient(stack.gateway_url, user.id_token)
        size = args.photos.stat().st_size
        print(f"gateway {stack.gateway_url}; signed in as {user.email}; uploading {args.photos.name} ({size:,} bytes)")
        job_id = api.create_job(api.upload(args.photos), options)
        print(f"job {job_id}", flush=True)
        follow(lambda: api.get_job(job_id), "r1", timeout_s=args.timeout)
        stack.wait_until_idle(timeout_s=30)  # let notify finish its email
        record = JobRecord.model_validate(api.get_job(job_id))
        out_dir = save_outputs(record, args.out, stack.aws.endpoint)
    return _report(record, out_dir)


# --- spaceport status


def status_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spaceport status",
        description=f"Show a job: from the running `spaceport serve`, else from ./spaceport-out/<job>/{JOB_FILE}.",
    )
    parser.add_argument("job", help="the job id")
    parser.add_argument("--json", action="store_true", help="print the job record as JSON")
    parser.add_argument("--out", type=Path, default=OUT_ROOT, help="results root (default ./spaceport-out)")
    args = parser.parse_args(argv)
    return _guard(lambda: _status(args))


def _status(args: argparse.Namespace) -> int:
    record = None
    stack = running_stack(args.out)
    if stack is not None:
        try:
            record = JobRecord.model_validate(stack.api().get_job(args.job))
        except SpaceportError:
            record = None
    saved = args.out / args.job / JOB_FILE
    if record is None and saved.exists():
        record = JobRecord.model_validate_json(saved.read_text())
    if record is None:
        where = "the running stack" if stack else f"{args.out} (no `spaceport serve` is running)"
        raise UnknownJobError(f"No job {args.job!r} in {where}.")
    print(record.model_dump_json(indent=2) if args.json else describe(record))
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
    parser.add_argument(
        "--block",
        action="append",
        type=int,
        default=[],
        metavar="N",
        help="with --job --from train, for a job trained in blocks: retrain only block N of its latest plan "
        "and keep the others; repeatable (default: plan again and train every block)",
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
    if args.block and args.from_stage != "train":
        parser.error("--block retrains blocks of the training stage: use it with --from train")
    return _guard(lambda: _replay(args))


def _replay(args: argparse.Namespace) -> int:
    stack = require_running_stack(args.out)
    stack.use()
    if args.archive:
        state = replay_archive(parse_time(args.since), parse_time(args.until), args.consumer)
        return 0 if state == "COMPLETED" else 1
    api = stack.api()
    options = parse_options(args.set)
    if args.from_stage == "train":
        # Options carry over to a new run; the blocks to retrain are this run's choice alone.
        options["blocks"] = sorted(set(args.block))
    answer = api.reprocess(args.job, args.from_stage, options)
    run_id = answer.get("runId") or answer.get("run_id")
    print(f"job {args.job} run {run_id} from {args.from_stage}", flush=True)
    if args.no_wait:
        return 0
    follow(lambda: api.get_job(args.job), str(run_id), timeout_s=args.timeout)
    time.sleep(1.0)  # notify's email follows the final transition
    record = JobRecord.model_validate(api.get_job(args.job))
    return _report(record, save_outputs(record, args.out, stack.aws_endpoint))


# --- spaceport token


def token_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spaceport token",
        description="Sign in to the running `spaceport serve` as EMAIL (the local user is created, its address "
        "verified, if it does not exist; it gets a new random password) and print its Cognito ID token on the "
        "last line, for curl (-H 'Authorization: <token>') and tests. Local only: against a deployed stack, "
        "sign in through the web app.",
    )
    parser.add_argument("email", help="the local user's email address (the user pool's username)")
    parser.add_argument("--operator", action="store_true", help="make the user a member of the operators group")
    parser.add_argument("--out", type=Path, default=OUT_ROOT, help="where `spaceport serve` keeps its state")
    args = parser.parse_args(argv)
    return _guard(lambda: _token(args))


def _token(args: argparse.Namespace) -> int:
    deployment = deployment_from_env()
    if deployment != LOCAL_DEPLOYMENT:
        raise LocalOnlyError(
            f"spaceport token signs in to the local stack only, not to deployment {deployment!r}: sign in "
            "through that deployment's web app (its Cognito user pool) instead."
        )
    user = require_running_stack(args.out).sign_in(args.email, operator=args.operator)
    print(f"user {user.email} (sub {user.sub}{', operator' if user.operator else ''}); ID token:", file=sys.stderr)
    print(user.id_token, flush=True)
    return 0


# --- spaceport integration-key


def integration_key_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spaceport integration-key",
        description="Issue an API key for a backend that submits jobs for the user EMAIL (an operator's task): "
        "the key goes into the deployment's integrations usage plan (its throttle and quota) and is bound to "
        "that user, whose verified address the jobs' emails go to. The key is printed once, on the last line; "
        "it belongs on a server, never in a browser. Locally it is issued on the running `spaceport serve`; "
        "with SPACEPORT_DEPLOYMENT set to a deployed stack, with this shell's AWS credentials.",
    )
    parser.add_argument("email", help="the user the key acts for (signed up, address verified)")
    parser.add_argument("--name", required=True, help="what the key is for, e.g. the integration's name")
    parser.add_argument("--out", type=Path, default=OUT_ROOT, help="where `spaceport serve` keeps its state (local)")
    args = parser.parse_args(argv)
    return _guard(lambda: _integration_key(args))


def _integration_key(args: argparse.Namespace) -> int:
    import boto3

    from spaceport.adapters import build_ports
    from spaceport.config import PipelineConfig
    from spaceport.integrations import find_usage_plan, find_user_pool, issue_key

    deployment = deployment_from_env()
    if deployment == LOCAL_DEPLOYMENT:
        require_running_stack(args.out).use()
    apigateway, cognito = boto3.client("apigateway"), boto3.client("cognito-idp")
    ports = build_ports(PipelineConfig.from_env())
    key = issue_key(
        apigateway,
        cognito,
        ports,
        find_usage_plan(apigateway, deployment),
        find_user_pool(cognito, deployment),
        args.email,
        args.name,
    )
    print(
        f"key {key.key_id} for {key.owner_email} (sub {key.owner}) in usage plan {key.usage_plan_id}:", file=sys.stderr
    )
    print(key.value, flush=True)
    return 0


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


def _report(record: JobRecord, out_dir: Path) -> int:
    print(describe(record))
    print(f"outputs: {out_dir}/")
    for path in sorted(out_dir.iterdir()):
        if path.is_file():
            print(f"  {path.name}  ({path.stat().st_size:,} bytes)")
    if (out_dir / JOB_FILE).is_file():
        print(
            f"look at it (job page, viewer, the email's links): spaceport view {record.job_id} --out {out_dir.parent}"
        )
    if record.status is not JobStatus.SUCCEEDED:
        raise JobNotCompletedError(
            f"Job {record.job_id} ended {record.status.value}" + (f": {record.error.message}" if record.error else ".")
        )
    return 0


def _job_count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a number of jobs is 1 or more, not {text!r}")
    return int(text)


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _guard(body: Callable[[], int]) -> int:
    """Plain message and exit code for an expected failure; 130 on Ctrl-C."""
    try:
        return run_job(body)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


__all__ = ["integration_key_main", "replay_main", "run_main", "serve_main", "state_file", "status_main", "token_main"]
