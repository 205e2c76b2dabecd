"""Verifying a Cognito ID token where no API Gateway does it: the local gateway and the tests.

What API Gateway's Cognito authorizer checks, checked with PyJWT against the pool's published
keys (its JWKS): the RS256 signature by one of the pool's keys, the issuer (the pool), the
audience (the app client), the expiry, and that it is an ID token (``token_use``).

>>> pool = UserPool(region="us-east-1", pool_id="us-east-1_abc", client_id="web")
>>> pool.issuer
'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc'
>>> pool.jwks_url()
'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc/.well-known/jwks.json'
>>> pool.jwks_url("http://127.0.0.1:5000")
'http://127.0.0.1:5000/us-east-1_abc/.well-known/jwks.json'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode

# Cognito signs with RS256 only; accepting nothing else closes the "alg" confusion attacks.
ALGORITHMS = ["RS256"]
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "token_use"]


class TokenRefused(SpaceportError):
    """An ID token that is missing, malformed, expired, or not this pool's and app client's."""

    code = "bad_token"
    exit_code = ExitCode.BAD_TOKEN


@dataclass(frozen=True)
class UserPool:
    """A Cognito user pool and the app client whose ID tokens the gateway accepts."""

    region: str
    pool_id: str
    client_id: str

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"

    def jwks_url(self, endpoint: str | None = None) -> str:
        """Where the pool publishes its keys: under the issuer, or under a local ``endpoint`` (moto)."""
        base = f"{endpoint.rstrip('/')}/{self.pool_id}" if endpoint else self.issuer
        return f"{base}/.well-known/jwks.json"


class IdTokenVerifier:
    """Checks ID tokens of one pool and app client; the pool's keys are fetched once and cached."""

    def __init__(self, pool: UserPool, jwks_url: str | None = None, timeout_s: float = 10.0) -> None:
        self.pool = pool
        self._keys = jwt.PyJWKClient(jwks_url or pool.jwks_url(), cache_keys=True, timeout=int(timeout_s))

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; :class:`TokenRefused` (saying why) for any token API Gateway would refuse."""
        if not token:
            raise TokenRefused("Sign in first: the request has no ID token.")
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=ALGORITHMS,
                audience=self.pool.client_id,
                issuer=self.pool.issuer,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("The sign-in has expired: sign in again.") from None
        except jwt.PyJWKClientConnectionError as error:
            raise TokenRefused(f"The user pool's keys could not be fetched: {error}.") from None
        except jwt.PyJWKClientError:
            raise TokenRefused("The token was not signed by one of the user pool's keys.") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused("The token was issued to another app client.") from None
        except jwt.InvalidIssuerError:
            raise TokenRefused("The token was issued by another user pool.") from None
        except jwt.InvalidTokenError as error:
            raise TokenRefused(f"The token is not valid ({error}).") from None
        if claims.get("token_use") != "id":
            raise TokenRefused("Send the ID token of the sign-in, not an access token.")
        return claims
