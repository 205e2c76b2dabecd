"""What the local IAM lets through unsigned: exactly what AWS answers without a signature.

A browser and ``spaceport token`` sign up and in with no AWS credentials (the browser after a
CORS preflight), and API Gateway's authorizer reads the pool's public keys; anything else
unsigned (an admin action on the pool included) is refused before moto sees it.
"""

from __future__ import annotations

import io
import json

import pytest

from spaceport.local.iam import IamEnforcer

POOL = "us-east-1_abc123DEF"


def _call(method: str, path: str, target: str = "", body: bytes = b"") -> str:
    """The status the enforcer answers (``"passed"`` when the request reached the app behind it)."""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/x-amz-json-1.1",
        "wsgi.input": io.BytesIO(body),
    }
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    answered: list[str] = []

    def app(environ: dict, start_response) -> list[bytes]:
        answered.append("passed")
        return [b"{}"]

    def start_response(status: str, headers: list, exc_info=None) -> None:
        answered.append(status)

    IamEnforcer(app)(environ, start_response)
    return answered[0]


@pytest.mark.parametrize("action", ["SignUp", "ConfirmSignUp", "InitiateAuth", "RespondToAuthChallenge"])
def test_a_user_pools_sign_up_and_sign_in_pass_unsigned(action):
    body = json.dumps({"ClientId": "client"}).encode()
    assert _call("POST", "/", f"AWSCognitoIdentityProviderService.{action}", body) == "passed"


def test_a_user_pools_public_keys_pass_unsigned():
    assert _call("GET", f"/{POOL}/.well-known/jwks.json") == "passed"


def test_a_browsers_cors_preflight_passes_unsigned():
    # The web app's calls to Cognito (JSON with X-Amz-Target) are preflighted; no browser signs a preflight.
    assert _call("OPTIONS", "/") == "passed"


@pytest.mark.parametrize(
    ("method", "path", "target"),
    [
        ("POST", "/", "AWSCognitoIdentityProviderService.AdminCreateUser"),
        ("POST", "/", "AWSCognitoIdentityProviderService.AdminAddUserToGroup"),
        ("POST", "/", "DynamoDB_20120810.GetItem"),
        ("GET", f"/{POOL}/.well-known/other.json", ""),
        ("GET", "/spaceport-local-uploads/uploads/someone/photos.zip", ""),
    ],
)
def test_anything_else_unsigned_is_refused(method, path, target):
    status = _call(method, path, target)
    assert status.startswith(("400", "403")), status
