"""Local AWS: a moto server on 127.0.0.1 that every thread and subprocess talks to via boto3.

The runtime points ``AWS_ENDPOINT_URL`` at the server (boto3 honours it natively) with
dummy credentials and a region, so adapters run the same code paths as in AWS.

Where moto differs from AWS, the smallest workaround lives here and is named:

* ``StartReplay`` in moto replays the whole archive to every rule, ignoring
  ``EventStartTime`` / ``EventEndTime`` and ``Destination.FilterArns``;
  :func:`_replay_like_eventbridge` makes it honour the window (by the events' ``time``)
  and the filter, as EventBridge does.

Example::

    with LocalAws() as aws:
        boto3.client("s3").create_bucket(Bucket="photos")   # goes to the moto server
        print(aws.endpoint)                                 # http://127.0.0.1:54321
"""

from __future__ import annotations

import json
import logging
import os
import socket
import urllib.request
import uuid
from datetime import UTC, datetime
from email import message_from_string
from email.message import Message
from typing import Any

REGION = "us-east-1"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class LocalAws:
    """A moto server in a thread of this process, and the environment that points boto3 at it."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def environment(self) -> dict[str, str]:
        """What a process needs to use this server through the ordinary boto3 code paths."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def start(self) -> LocalAws:
        from moto.server import ThreadedMotoServer

        # The server logs every request; the runtime's own output is what the user reads.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        _replay_like_eventbridge()
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        os.environ.update(self.environment())
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sent_emails(self) -> list[Message]:
        """Every email SES accepted, read back through moto's API (``/moto-api/data.json``)."""
        return sent_emails(self.endpoint)


def sent_emails(endpoint: str) -> list[Message]:
    """The raw emails moto's SES holds, oldest first, as :class:`email.message.Message`."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=10) as response:
        data = json.loads(response.read())
    raw = data.get("ses", {}).get("RawMessage", [])
    return [message_from_string(item["raw_data"]) for item in raw]


def _replay_like_eventbridge() -> None:
    """Make moto's ``StartReplay`` send only the events inside its time window, and only to
    the rules in ``Destination.FilterArns`` when it names any."""
    from moto.core.utils import unix_time
    from moto.events import models

    if getattr(models.Replay.replay_events, "_spaceport_eventbridge", False):
        return

    def replay_events(self: Any, archive: Any) -> None:
        start, end = _epoch(self.event_start_time), _epoch(self.event_end_time)
        chosen = set(self.destination.get("FilterArns") or ())
        backend = models.events_backends[self.account_id][self.region]
        bus = backend.describe_event_bus(self.destination["Arn"].split("/")[-1])
        rules = [rule for rule in bus.rules.values() if not chosen or rule.arn in chosen]
        for event in list(archive.events):
            if start <= _epoch(event.get("time")) <= end:
                for rule in rules:
                    rule.send_to_targets(
                        dict(event, **{"id": str(uuid.uuid4()), "replay-name": self.name}), transform_input=False
                    )
        self.state = models.ReplayState.COMPLETED
        self.end_time = unix_time()

    replay_events._spaceport_eventbridge = True  # type: ignore[attr-defined]
    models.Replay.replay_events = replay_events


def _epoch(value: Any) -> float:
    """Seconds since the epoch from moto's mix of floats and ISO strings."""
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return 0.0
