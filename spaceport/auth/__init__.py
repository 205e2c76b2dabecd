"""Who is calling: the signed-in user (a Cognito ID token's claims) or an integration's API key.

:mod:`spaceport.auth.caller` turns what API Gateway hands the gateway Lambda (the verified
claims of a Cognito ID token, or the id of the API key a request came with) into a
:class:`Caller`; :mod:`spaceport.auth.tokens` verifies ID tokens where no API Gateway does it
for us (the local gateway, and the tests). :mod:`spaceport.auth.share` makes share tokens.
"""

from spaceport.auth.caller import Caller, NotSignedIn, caller_from_claims, parse_groups
from spaceport.auth.share import hash_share_token, is_share_token, new_share_token

__all__ = [
    "Caller",
    "NotSignedIn",
    "caller_from_claims",
    "hash_share_token",
    "is_share_token",
    "new_share_token",
    "parse_groups",
]
