"""Email through SES: one raw MIME message per :class:`~spaceport.ports.Email`.

>>> import boto3, moto
>>> from spaceport.ports import Email
>>> with moto.mock_aws():
...     ses = boto3.client("ses", region_name="us-east-1")
...     _ = ses.verify_email_identity(EmailAddress="spaceport@example.com")
...     message_id = SesMailer(ses).send(Email("a@b.co", "spaceport@example.com", "Ready", "text", "<p>html</p>"))
>>> bool(message_id)
True
"""

from __future__ import annotations

from typing import Any

from spaceport.ports import Email


class SesMailer:
    """The ``Mailer`` adapter. ``client`` is a boto3 SES client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def send(self, email: Email) -> str:
        """Send ``email``; returns SES's message id."""
        answer = self.client.send_raw_email(
            Source=email.sender, Destinations=[email.to], RawMessage={"Data": email.to_mime()}
        )
        return str(answer["MessageId"])
