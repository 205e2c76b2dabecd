"""Fixtures for the local runtime: a whole stack per test module, and an event observer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The whole local stack (moto, topology, gateway on a free port, workers, job runner)."""
    from spaceport.local.stack import LocalStack, StackOptions

    workdir = tmp_path_factory.mktemp("stack")
    local = LocalStack(StackOptions(workdir=workdir, gateway_port=0, web_dist=None, stop_grace_s=5))
    local.start()
    try:
        yield local
    finally:
        local.stop()


@dataclass
class EventObserver:
    """A queue subscribed to every pipeline event and every SageMaker state change."""

    queue_url: str
    envelopes: list[dict[str, Any]] = field(default_factory=list)

    def drain(self) -> list[dict[str, Any]]:
        import boto3

        sqs = boto3.client("sqs")
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if not messages:
                return self.envelopes
            for message in messages:
                self.envelopes.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def pipeline_events(self, job_id: str, replayed: bool = False) -> list[dict[str, Any]]:
        """The job's pipeline events, in the order they happened; ``replayed``: those StartReplay sent."""
        mine = [
            e
            for e in self.drain()
            if e["source"] == "spaceport.pipeline"
            and e["detail"]["job_id"] == job_id
            and ("replay-name" in e) == replayed
        ]
        return sorted(mine, key=lambda e: e["detail"]["occurred_at"])


@pytest.fixture(scope="module")
def observer(stack) -> EventObserver:
    import boto3

    from spaceport.contracts.events import EVENT_SOURCE
    from spaceport.contracts.topology import SAGEMAKER_SOURCE

    sqs, events = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="spaceport-test-observer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for rule, bus, source in (
        ("observe-pipeline", stack.config.bus_name, EVENT_SOURCE),
        ("observe-sagemaker", "default", SAGEMAKER_SOURCE),
    ):
        events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": [source]}))
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}])
    return EventObserver(url)
