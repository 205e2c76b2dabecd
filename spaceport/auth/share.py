"""Share tokens: unguessable, shown once, stored only as their SHA-256.

A token is 32 random bytes (256 bits), URL-safe base64 without padding (43 characters). The
job record keeps its hash; ``GET /share/{token}`` hashes what it is given and looks the hash
up, so a copy of the table names no working link.

>>> token = new_share_token()
>>> len(token), is_share_token(token), is_share_token("../etc"), len(hash_share_token(token))
(43, True, False, 64)
"""

from __future__ import annotations

import hashlib
import re
import secrets

SHARE_TOKEN_BYTES = 32
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_share_token() -> str:
    return secrets.token_urlsafe(SHARE_TOKEN_BYTES)


def is_share_token(value: object) -> bool:
    """Whether ``value`` has a share token's shape (anything else is refused before a lookup)."""
    return isinstance(value, str) and bool(_TOKEN.match(value))


def hash_share_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
