"""The addresses a user is given: a job's status page and its viewer, and what counts as an email address.

>>> status_url("https://spaceport.example.com", "0a1b"), viewer_url("https://spaceport.example.com", "0a1b")
('https://spaceport.example.com/jobs/0a1b', 'https://spaceport.example.com/view/0a1b')
>>> share_viewer_url("https://spaceport.example.com", "tOkEn")
'https://spaceport.example.com/view/share/tOkEn'
>>> is_email_address("pilot@example.com"), is_email_address("pilot@example"), is_email_address("a b@example.com")
(True, False, False)
"""

from __future__ import annotations

import re

# Deliberately narrow: one @, no spaces, quotes, angle brackets or list separators (so an address
# can never smuggle a second recipient or a header), and a top-level domain of letters.
_EMAIL_ADDRESS = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[A-Za-z]{2,}$")
MAX_EMAIL_LENGTH = 254


def is_email_address(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_EMAIL_LENGTH and bool(_EMAIL_ADDRESS.match(value))


def status_url(public_base_url: str, job_id: str) -> str:
    """The job's page in the web app (and the API's ``statusUrl``)."""
    return f"{public_base_url.rstrip('/')}/jobs/{job_id}"


def viewer_url(public_base_url: str, job_id: str) -> str:
    """The viewer page for a job's scene."""
    return f"{public_base_url.rstrip('/')}/view/{job_id}"


def share_viewer_url(public_base_url: str, token: str) -> str:
    """The viewer page of a shared scene: anyone with the link may open it, until it is revoked."""
    return f"{public_base_url.rstrip('/')}/view/share/{token}"
