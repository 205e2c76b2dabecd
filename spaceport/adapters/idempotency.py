"""Once per business key: Powertools' idempotency utility on its DynamoDB table.

A message handled twice (SQS delivers at least once; two Lambdas may even hold the same
message at the same time) runs its action once: the second delivery gets the first one's
answer, or, while the first is still running, an error that sends the message back to
the queue for later. A failed action leaves no record, so its retry runs again.

The record lives for ``expires_after_s``; after that (an archive replayed days later) the
job record's forward-only positions are what keep a job from moving backwards.

>>> import boto3, moto
>>> from spaceport.adapters.jobstore import idempotency_table_definition
>>> with moto.mock_aws():
...     dynamodb = boto3.client("dynamodb", region_name="us-east-1")
...     _ = dynamodb.create_table(**idempotency_table_definition("spaceport-idempotency"))
...     once = OnceOnly(dynamodb, "spaceport-idempotency")
...     launches = []
...     answers = [once.run("JobRequested#j1#r1#sfm#1", lambda: launches.append(1) or "launched") for _ in range(2)]
>>> answers, len(launches)
(['launched', 'launched'], 1)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)


@dataclass(frozen=True)
class _Deadline:
    """Stands in for Lambda's context outside Lambda: how long a run may hold its key."""

    hold_s: float

    def get_remaining_time_in_millis(self) -> int:
        return int(self.hold_s * 1000)


class OnceOnly:
    """Runs an action at most once per key (the ``Idempotency`` port)."""

    def __init__(self, client: Any, table_name: str, expires_after_s: int = 3600, hold_s: float = 60) -> None:
        self.layer = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=client)
        self.expires_after_s = expires_after_s
        self.hold_s = hold_s

    def run(self, key: str, action: Callable[[], str], lambda_context: Any = None) -> str:
        """``action()``'s answer, computed once for ``key``.

        A run that dies mid-way stops holding the key when its Lambda invocation would have
        timed out (``hold_s`` without a Lambda context), so the redelivered message runs again.
        """
        if not hasattr(lambda_context, "get_remaining_time_in_millis"):
            lambda_context = _Deadline(self.hold_s)
        # A config per call: it holds the invocation's context, and threads may share this object.
        config = IdempotencyConfig(
            event_key_jmespath="key", expires_after_seconds=self.expires_after_s, lambda_context=lambda_context
        )

        def once(message: dict[str, str]) -> str:
            return action()

        idempotent: Callable[..., str] = idempotent_function(
            data_keyword_argument="message", persistence_store=self.layer, config=config, key_prefix="spaceport-message"
        )(once)
        return str(idempotent(message={"key": key}))
