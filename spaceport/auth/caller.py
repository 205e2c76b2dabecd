"""The caller of a gateway route, from what API Gateway verified before the Lambda ran.

In AWS the gateway's routes sit behind API Gateway's Cognito user pool authorizer: it checks
the ID token (signature, issuer, audience, expiry) and hands its claims to the Lambda under
``requestContext.authorizer.claims``, every value turned into a string. The local gateway
verifies the same tokens and puts the claims in the same place
(:mod:`spaceport.local.http_server`). An integration's routes take an API key instead;
API Gateway names the key in ``requestContext.identity.apiKeyId`` and the key's binding
names its owner (:func:`spaceport.integrations.caller_for_key`).

>>> claims = {"sub": "u-1", "email": "Pilot@Example.com", "email_verified": "true",
...           "token_use": "id", "cognito:groups": "[operators viewers]"}
>>> caller = caller_from_claims(claims, operators_group="operators")
>>> caller.subject, caller.email, caller.email_verified, caller.operator
('u-1', 'pilot@example.com', True, True)
>>> sorted(parse_groups("a,b")), sorted(parse_groups("[a b]")), sorted(parse_groups(["a"])), parse_groups(None)
(['a', 'b'], ['a', 'b'], ['a'], frozenset())
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode


class NotSignedIn(SpaceportError):
    """The request carries no identity the gateway can act for."""

    code = "not_signed_in"
    exit_code = ExitCode.NOT_SIGNED_IN


@dataclass(frozen=True)
class Caller:
    """Who a request acts for: ``subject`` is the Cognito user's ``sub`` (a job's owner).

    ``email`` is the user's address, lower-cased, and ``email_verified`` whether Cognito
    verified it (notifications go only to a verified address). ``operator``: a member of the
    operators group, who sees and acts on every job. ``api_key_id``: the integration key the
    request came with, when it came with one.
    """

    subject: str
    email: str
    email_verified: bool
    operator: bool = False
    api_key_id: str | None = None


def parse_groups(value: Any) -> frozenset[str]:
    """``cognito:groups`` as a set: a JSON list in a token, a string once API Gateway passed it on
    (``"a,b"`` or ``"[a b]"``)."""
    if isinstance(value, (list, tuple)):
        return frozenset(str(item) for item in value if str(item))
    if isinstance(value, str):
        return frozenset(part for part in re.split(r"[\s,]+", value.strip().strip("[]")) if part)
    return frozenset()


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def caller_from_claims(claims: Mapping[str, Any], operators_group: str) -> Caller:
    """The caller an ID token's verified ``claims`` name; :class:`NotSignedIn` when they name none."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise NotSignedIn("Sign in first: the request carries no user.")
    if claims.get("token_use") not in (None, "id"):
        raise NotSignedIn("Send the ID token of your sign-in, not an access token.")
    email = claims.get("email")
    return Caller(
        subject=subject,
        email=email.strip().lower() if isinstance(email, str) else "",
        email_verified=_is_true(claims.get("email_verified")),
        operator=operators_group in parse_groups(claims.get("cognito:groups")),
    )
