"""Email: one message in HTML and plain text, sent through SES as raw MIME.

The same MIME bytes are what the local runtime saves as ``.eml``.

Example::

    email = Email(to="a@b.c", sender="spaceport@example.com", subject="Your splat is ready",
                  text="...", html="<p>...</p>")
    SesMailer(boto3.client("ses")).send(email)
    Path("job.eml").write_bytes(email.to_mime())
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any


@dataclass(frozen=True)
class Email:
    to: str
    sender: str
    subject: str
    text: str
    html: str

    def to_mime(self) -> bytes:
        """The message as ``multipart/alternative`` MIME (text first, HTML preferred)."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = self.to
        message["Subject"] = self.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.sender.rsplit("@", 1)[-1])
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message.as_bytes()


class SesMailer:
    """The ``Mailer`` adapter. ``client`` is a boto3 SES client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def send(self, email: Email) -> str:
        """Send ``email``; returns SES's message id."""
        answer = self.client.send_raw_email(
            Source=email.sender,
            Destinations=[email.to],
            RawMessage={"Data": email.to_mime()},
        )
        return answer["MessageId"]
