"""Publishing pipeline events on the EventBridge bus.

>>> import boto3, moto
>>> from spaceport.contracts.events import JobRequested
>>> from spaceport.contracts.stages import Stage
>>> with moto.mock_aws():
...     events = boto3.client("events", region_name="us-east-1")
...     _ = events.create_event_bus(Name="spaceport")
...     EventBridgePublisher(events, "spaceport").publish(
...         JobRequested(job_id="j1", run_id="r1", stage=Stage.SFM, input_uri="s3://uploads/photos.zip"))
"""

from __future__ import annotations

from typing import Any

from spaceport.contracts.events import PipelineEvent, to_put_events_entry
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode


class PublishError(SpaceportError):
    """EventBridge did not take the event (the caller's message is retried)."""

    code = "publish_failed"
    exit_code = ExitCode.PUBLISH_FAILED


class EventBridgePublisher:
    """The ``EventPublisher`` adapter: one ``PutEvents`` call per event, failures raised."""

    def __init__(self, client: Any, bus_name: str) -> None:
        self.client = client
        self.bus_name = bus_name

    def publish(self, event: PipelineEvent) -> None:
        answer = self.client.put_events(Entries=[to_put_events_entry(event, self.bus_name)])
        if answer.get("FailedEntryCount"):
            entry = answer["Entries"][0]
            raise PublishError(
                f"EventBridge refused {event.detail_type} for job {event.job_id}: "
                f"{entry.get('ErrorCode')} {entry.get('ErrorMessage')}"
            )
