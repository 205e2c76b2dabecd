"""The whole stack on one machine: local AWS, the topology, the gateway, the workers, the job runner.

Everything runs in this process (threads) except the stage jobs (subprocesses). The gateway
and the services run the same code as in Lambda, launching through the same SageMaker
adapter: the local moto server hands each job to :class:`~spaceport.local.runner.LocalJobRunner`.
What differs from AWS is the endpoint, the credentials and the machine the jobs run on.

>>> import tempfile
>>> with LocalStack(StackOptions(workdir=Path(tempfile.mkdtemp()), gateway_port=0, web_dist=None)) as stack:
...     stack.gateway_url.startswith("http://127.0.0.1:"), sorted(stack.workers)
(True, ['compress', 'notify', 'sfm', 'train'])
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import boto3

from spaceport.adapters import reset_default_ports
from spaceport.adapters.wiring import use_sessions
from spaceport.app_loader import import_app_module
from spaceport.config import PipelineConfig
from spaceport.contracts.deployment import LOCAL_GATEWAY_PORT, deployment_from_env
from spaceport.contracts.stages import JOB_STAGES
from spaceport.contracts.topology import SERVICES, SWEEPER, service
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode
from spaceport.local.aws import REGION, LocalAws, free_port
from spaceport.local.environ import EnvironmentOverlay
from spaceport.local.http_server import GatewayServer, load_chalice_app
from spaceport.local.iam import role_session
from spaceport.local.provision import LOCAL_ACCOUNT_ID, Provisioned, image_uri, job_role_arn, provision
from spaceport.local.runner import LocalJobRunner
from spaceport.local.workers import LambdaContext, LambdaLogs, QueueWorker

logger = logging.getLogger("spaceport.local")

REPO_ROOT = Path(__file__).resolve().parents[2]


class StackError(SpaceportError):
    """The local stack could not start (a port in use, a missing app)."""

    code = "local_stack"
    exit_code = ExitCode.LOCAL_STACK


@dataclass(frozen=True)
class StackOptions:
    workdir: Path
    gateway_port: int = LOCAL_GATEWAY_PORT
    api_key: str | None = None
    web_dist: Path | None = REPO_ROOT / "web" / "dist"
    # None: the queues' own visibility timeout (6x the consumer timeout), as in AWS.
    visibility_timeout_s: int | None = None
    stop_grace_s: float = 30.0
    # How many jobs run at once, and the CPU threads each may use (None: every core, for one job at a time).
    max_concurrent_jobs: int = 1
    job_threads: int | None = None
    # How often the sweeper runs (AWS: every SWEEP_EVERY_MINUTES).
    sweep_interval_s: float = 60.0


class LocalStack:
    """Starts and stops every piece of the local runtime."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.api_key = options.api_key or os.environ.get("SPACEPORT_API_KEY") or ""
        self.generated_api_key = not self.api_key
        if self.generated_api_key:
            self.api_key = secrets.token_urlsafe(24)
        # Port 0: any free port (tests, and `spaceport run` beside a running `serve`).
        self.gateway_port = options.gateway_port or free_port()
        self.gateway_url = f"http://127.0.0.1:{self.gateway_port}"
        cores = len(os.sched_getaffinity(0))
        self.runner = LocalJobRunner(
            options.workdir / "jobs",
            # SageMaker moves a job's data and pulls its image with the job's own role.
            session_for_role=lambda role_arn: role_session(role_arn, "SageMaker"),
            job_threads=options.job_threads or max(1, cores // options.max_concurrent_jobs),
            max_concurrent_jobs=options.max_concurrent_jobs,
            stop_grace_s=options.stop_grace_s,
        )
        self.aws = LocalAws(runner=self.runner)
        self.workers: dict[str, QueueWorker] = {}
        self.config: PipelineConfig | None = None
        self.resources: Provisioned | None = None
        self._gateway: GatewayServer | None = None
        self._environ = EnvironmentOverlay()
        self._sessions: dict[str, boto3.session.Session] = {}
        self._sessions_lock = threading.Lock()
        self._sweeper_logs: LambdaLogs | None = None
        self._log_handler: logging.Handler | None = None
        self._paused: set[str] = set()
        self._workers_lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._sweeper = threading.Thread(target=self._sweep, name="sweeper", daemon=True)

    # --- lifecycle

    def start(self) -> LocalStack:
        self.options.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self._log_to_file()
        self.aws.start()
        deployment = deployment_from_env()
        stage_settings = {}
        for stage in JOB_STAGES:
            prefix = f"SPACEPORT_{stage.name}"
            stage_settings[f"{prefix}_IMAGE"] = image_uri(deployment, stage, REGION)
            stage_settings[f"{prefix}_ROLE_ARN"] = job_role_arn(deployment, stage)
        self._environ.set(
            {
                **stage_settings,
                "SPACEPORT_API_KEY": self.api_key,
                "SPACEPORT_PUBLIC_BASE_URL": self.gateway_url,
            }
        )
        # The apps build their ports once per process; this stack's endpoint is new.
        reset_default_ports()
        self.config = PipelineConfig.from_env()
        self.resources = provision(self.config)
        # Every unit calls AWS with its own role, whose policy is the one that deploys.
        use_sessions(self.unit_session)
        for spec in SERVICES:
            self._start_worker(spec.name)
        self._supervisor.start()
        self._sweeper.start()
        try:
            app = load_chalice_app(REPO_ROOT / "gateway" / "app.py")
            logs = LambdaLogs(self.unit_session("gateway"), f"spaceport-gateway-{self.config.deployment}")
            self._gateway = GatewayServer(
                app, self.gateway_port, self.api_key, self.options.web_dist, logs=logs
            ).start()
        except OSError as error:
            raise StackError(
                f"Cannot listen on {self.gateway_url}: {error.strerror}. Is another `spaceport serve` running?"
            ) from None

    @property
    def log_path(self) -> Path:
        """Where the gateway's, the services' and the runtime's log lines go."""
        return self.options.workdir / "stack.log"

    def stop(self) -> None:
        self._stopping.set()
        for thread in (self._supervisor, self._sweeper):
            if thread.is_alive():
                thread.join()
        for worker in self.workers.values():
            worker.stop()
        if self._gateway is not None:
            self._gateway.stop()
            self._gateway = None
        self.aws.stop()  # stops the running jobs first
        self._environ.restore()
        use_sessions(None)
        self._sessions.clear()
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the CLI and tests read

    def wait_until_idle(self, timeout_s: float, settle_s: float = 2.0) -> bool:
        """Wait until no job runs and every queue has stayed empty for ``settle_s``."""
        sqs = boto3.client("sqs")
        deadline = time.monotonic() + timeout_s
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            busy = bool(self.runner.running())
            for url in self.resources.queue_urls.values() if self.resources else ():
                attributes = sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                busy = busy or any(int(value) for value in attributes.values())
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= settle_s:
                return True
            time.sleep(0.2)
        return False

    def pause_worker(self, service_name: str) -> None:
        """Stop consuming a service's queue (like disabling its event source mapping)."""
        with self._workers_lock:
            self._paused.add(service_name)
            self.workers[service_name].stop()

    def resume_worker(self, service_name: str) -> None:
        with self._workers_lock:
            self._start_worker(service_name)
            self._paused.discard(service_name)

    def unit_session(self, unit: str) -> boto3.session.Session:
        """The session a deploy unit's code calls AWS with: its role's (the local IAM enforces its policy)."""
        assert self.resources is not None, "the units' roles exist once the stack is provisioned"
        with self._sessions_lock:
            if unit not in self._sessions:
                self._sessions[unit] = role_session(self.resources.role_arns[unit], f"{unit}-local")
            return self._sessions[unit]

    # --- internals

    def _start_worker(self, name: str) -> None:
        spec = service(name)
        app_path = REPO_ROOT / "services" / name / "app.py"
        if not app_path.exists():
            raise StackError(f"The {name} service has no app at {app_path}.")
        assert self.config is not None, "workers start once the stack is configured"
        worker = QueueWorker.for_app(
            spec,
            self.config.deployment,
            app_path,
            visibility_timeout_s=self.options.visibility_timeout_s,
            session=self.unit_session(name),
        )
        worker.start()
        self.workers[name] = worker

    def _supervise(self) -> None:
        """Replace a worker that died, as Lambda starts a new instance after one crashed."""
        while not self._stopping.wait(0.5):
            with self._workers_lock:
                for name, worker in list(self.workers.items()):
                    if not worker.is_alive() and name not in self._paused and not self._stopping.is_set():
                        logger.warning("worker %s died; starting a new one", name)
                        self._start_worker(name)

    def sweep_once(self) -> None:
        """Invoke the sweeper app's scheduled function now, as EventBridge Scheduler does every few minutes."""
        module = import_app_module(REPO_ROOT / "services" / SWEEPER / "app.py", "spaceport_local_app_sweeper")
        assert self.config is not None
        function_name = f"spaceport-{SWEEPER}-{self.config.deployment}-sweep"
        if self._sweeper_logs is None:
            self._sweeper_logs = LambdaLogs(self.unit_session(SWEEPER), function_name)
        event = {
            "version": "0",
            "id": "local",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": LOCAL_ACCOUNT_ID,
            "time": "",
            "region": "us-east-1",
            "resources": [],
            "detail": {},
        }
        context = LambdaContext(function_name, 300)
        started, outcome = time.time(), ""
        try:
            module.sweep(event, context)
        except Exception as error:  # a failed sweep is logged and tried again, as a scheduled Lambda is
            logger.exception("sweeper failed")
            outcome = f"[ERROR] {type(error).__name__}: {error}"
        self._sweeper_logs.invocation(context.aws_request_id, started, outcome)

    def _sweep(self) -> None:
        while not self._stopping.wait(self.options.sweep_interval_s):
            self.sweep_once()

    def _log_to_file(self) -> None:
        """Handlers' log lines go to ``stack.log``, so the terminal shows only the progress."""
        self._log_handler = logging.FileHandler(self.log_path)
        self._log_handler.setFormatter(
            logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s")
        )
        root = logging.getLogger()
        root.addHandler(self._log_handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
        for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        # Powertools reports why a record failed only at DEBUG; a failed message must say why.
        batch = logging.getLogger("aws_lambda_powertools.utilities.batch")
        batch.setLevel(logging.DEBUG)
        self._log_handler.addFilter(lambda r: r.levelno >= logging.INFO or r.name.startswith(batch.name))
        self._log_handler.setLevel(logging.DEBUG)
