"""Queue workers: what Lambda's SQS event source mapping does, as one thread per service.

A worker long-polls its service's queue, wraps what it receives in the event Lambda would
pass (``{"Records": [...]}`` with ``eventSource: aws:sqs``), calls the same handler that
the service's Chalice ``app.py`` registers with ``on_sqs_message``, and deletes only the
messages that the handler did not list in ``batchItemFailures``. A message left undeleted
comes back after its visibility timeout and, after ``maxReceiveCount`` receives, SQS moves
it to the dead-letter queue, as in AWS.

One local difference, for speed: a message the handler reported as failed is made
visible again after ``retry_delay_s`` (1 s) instead of waiting out the queue's visibility
timeout (6x the Lambda timeout, minutes). A worker that dies mid-batch deletes nothing and
changes nothing, so its messages wait for the visibility timeout, as in AWS.

The local stack runs one per service: ``QueueWorker.for_app(service("sfm"), "local", sfm_app_py)``,
``start()`` and, at the end, ``stop()``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from spaceport.app_loader import import_app_module
from spaceport.contracts.topology import ServiceSpec

logger = logging.getLogger("spaceport.local")

LambdaHandler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    function_name: str
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class Delivery:
    """One message handed to the handler: when SQS got it and when the handler started."""

    service: str
    detail_type: str | None
    sent_at: float  # epoch seconds (SQS SentTimestamp)
    handler_started_at: float  # epoch seconds
    receive_count: int  # 1 for a first delivery; more for a retry or a redelivery

    @property
    def hop_s(self) -> float:
        return self.handler_started_at - self.sent_at


def load_sqs_handler(app_path: Path, queue_name: str) -> tuple[LambdaHandler, str]:
    """The function a Chalice app at ``app_path`` registers for ``queue_name``'s messages, and its name."""
    module = import_app_module(app_path, f"spaceport_local_app_{app_path.parent.name}")
    app = module.app
    for source in app.event_sources:
        if getattr(source, "queue", None) == queue_name:
            handler: LambdaHandler = getattr(module, source.handler_string.rsplit(".", 1)[-1])
            return handler, str(source.name)
    raise LookupError(f"{app_path} registers no on_sqs_message handler for queue {queue_name!r}")


class LambdaLogs:
    """What Lambda's runtime writes to CloudWatch Logs for each invocation, with the function's role.

    Lambda loses the lines, not the invocation, when the role may not write them; so does this.
    """

    def __init__(self, session: boto3.session.Session, function_name: str) -> None:
        self._logs = session.client("logs")
        self.group = f"/aws/lambda/{function_name}"
        self.stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self._ready = False
        self._lock = threading.Lock()

    def invocation(self, request_id: str, started: float, outcome: str = "") -> None:
        """START, END and REPORT of one invocation that began at ``started`` (epoch seconds)."""
        ended = time.time()
        lines = [
            f"START RequestId: {request_id} Version: $LATEST",
            *([outcome] if outcome else []),
            f"END RequestId: {request_id}",
            f"REPORT RequestId: {request_id}\tDuration: {(ended - started) * 1000:.2f} ms",
        ]
        stamp = int(ended * 1000)
        try:
            with self._lock:
                if not self._ready:
                    try:
                        self._logs.create_log_group(logGroupName=self.group)
                    except self._logs.exceptions.ResourceAlreadyExistsException:
                        pass
                    self._logs.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
                    self._ready = True
                self._logs.put_log_events(
                    logGroupName=self.group,
                    logStreamName=self.stream,
                    logEvents=[{"timestamp": stamp, "message": line} for line in lines],
                )
        except Exception as error:  # Lambda drops the lines, never the invocation
            logger.warning("%s: log lines lost: %s", self.group, error)


class QueueWorker(threading.Thread):
    """Long-polls one service's queue and hands each batch to its Lambda handler."""

    def __init__(
        self,
        service: ServiceSpec,
        deployment: str,
        handler: LambdaHandler,
        wait_s: int = 1,
        retry_delay_s: int = 1,
        visibility_timeout_s: int | None = None,
        session: boto3.session.Session | None = None,
        function_name: str | None = None,
    ) -> None:
        super().__init__(name=f"worker-{service.name}", daemon=True)
        self.service = service
        self.handler = handler
        self.wait_s = wait_s
        self.retry_delay_s = retry_delay_s
        # None: the queue's own visibility timeout, as Lambda's event source mapping uses.
        self.visibility_timeout_s = visibility_timeout_s
        self.deliveries: list[Delivery] = []
        self.batches_handled = 0
        self._stop_requested = threading.Event()
        # Fault injection for tests: die after the next handler call, before deleting anything.
        self._die_after_next_batch = threading.Event()
        # The event source mapping knows its queue (looked up here as the account's admin) and polls
        # it with the function's role. Its own session: workers are (re)started from several
        # threads, and boto3's default session is not safe to share across threads.
        lookup = boto3.session.Session().client("sqs")
        self._queue_url = lookup.get_queue_url(QueueName=service.queue_name(deployment))["QueueUrl"]
        self._queue_arn = lookup.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        session = session or boto3.session.Session()
        self._sqs = session.client("sqs")
        self.function_name = function_name or f"spaceport-{service.name}-{deployment}"
        self.logs = LambdaLogs(session, self.function_name)

    @classmethod
    def for_app(cls, service: ServiceSpec, deployment: str, app_path: Path, **kwargs: Any) -> QueueWorker:
        handler, name = load_sqs_handler(app_path, service.queue_name(deployment))
        # Chalice names the function <app_name>-<deployment>-<handler>; the app is spaceport-<service>.
        return cls(
            service, deployment, handler, function_name=f"spaceport-{service.name}-{deployment}-{name}", **kwargs
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop_requested.set()
        if self.is_alive():
            self.join(timeout_s)

    def die_after_next_batch(self) -> None:
        """Simulate the worker's process dying mid-batch: the handler runs, nothing is acknowledged."""
        self._die_after_next_batch.set()

    def run(self) -> None:
        while not self._stop_requested.is_set():
            try:
                self.poll_once()
            except _WorkerDied:
                logger.warning("worker %s died mid-batch (injected)", self.service.name)
                return
            except Exception:  # keep polling, as the event source mapping does
                logger.exception("worker %s: polling failed", self.service.name)
                self._stop_requested.wait(1.0)

    def poll_once(self) -> int:
        """Receive one batch and handle it; returns how many messages were received."""
        request: dict[str, Any] = dict(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self.service.batch_size,
            WaitTimeSeconds=self.wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        if self.visibility_timeout_s is not None:
            request["VisibilityTimeout"] = self.visibility_timeout_s
        messages = self._sqs.receive_message(**request).get("Messages", [])
        if not messages:
            return 0
        event = {"Records": [self._record(message) for message in messages]}
        started = time.time()
        self.deliveries.extend(
            Delivery(
                self.service.name,
                _detail_type(message["Body"]),
                int(message["Attributes"]["SentTimestamp"]) / 1000,
                started,
                int(message["Attributes"].get("ApproximateReceiveCount", 1)),
            )
            for message in messages
        )
        context = LambdaContext(self.function_name, self.service.consumer_timeout_s)
        outcome = ""
        try:
            response = self.handler(event, context) or {}
            failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        except Exception as error:
            # A handler that raises fails the whole batch, as in Lambda.
            logger.exception("worker %s: handler raised; the batch will be retried", self.service.name)
            failed = {message["MessageId"] for message in messages}
            outcome = f"[ERROR] {type(error).__name__}: {error}"
        self.logs.invocation(context.aws_request_id, started, outcome)
        self.batches_handled += 1
        if self._die_after_next_batch.is_set():
            self._die_after_next_batch.clear()
            raise _WorkerDied()
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        if retry:
            self._sqs.change_message_visibility_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self.retry_delay_s}
                    for i, m in enumerate(retry)
                ],
            )
        return len(messages)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {
            name: {"stringValue": value.get("StringValue"), "dataType": value.get("DataType")}
            for name, value in message.get("MessageAttributes", {}).items()
        }
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": attributes,
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._queue_arn.split(":")[3],
        }


class _WorkerDied(Exception):
    pass


def _detail_type(body: str) -> str | None:
    """The EventBridge detail-type of a message body, for the hop-latency figures."""
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value.get("detail-type") if isinstance(value, dict) else None
