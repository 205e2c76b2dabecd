"""The local user pool: Cognito in moto, made to answer as Cognito does where moto differs.

* moto's ``ConfirmSignUp`` confirms the user but leaves the address unverified; Cognito, for a
  pool that verifies ``email`` automatically, verifies it with the code the user typed.
  :func:`confirm_sign_up_verifies_email` makes moto do the same (moto accepts any code: there is
  no mail server locally).
* moto's ``USER_SRP_AUTH`` accepts any password proof, so the local web app signs in with
  ``USER_PASSWORD_AUTH``, where moto checks the password (:data:`LOCAL_AUTH_FLOW`).

>>> from spaceport.local.aws import LocalAws
>>> with LocalAws():
...     pool = create_user_pool("spaceport-local-users", "operators")
...     user = sign_in_user(pool, "pilot@example.com", operator=True)
>>> user.email, user.operator, user.id_token.count(".")
('pilot@example.com', True, 2)
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import boto3

from spaceport.auth.pool import MIN_PASSWORD_LENGTH

# How the local web app and `spaceport token` sign in (see the module's docstring).
LOCAL_AUTH_FLOW = "USER_PASSWORD_AUTH"
_AUTH_FLOWS = ["ALLOW_USER_SRP_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]


@dataclass(frozen=True)
class LocalUserPool:
    pool_id: str
    client_id: str
    arn: str
    operators_group: str


@dataclass(frozen=True)
class SignedInUser:
    email: str
    sub: str
    operator: bool
    id_token: str


def confirm_sign_up_verifies_email() -> None:
    """Make moto's ``ConfirmSignUp`` verify the address of a pool that auto-verifies email (once per process)."""
    from moto.cognitoidp.models import CognitoIdpBackend

    if getattr(CognitoIdpBackend.confirm_sign_up, "_spaceport_verifies", False):
        return
    original = CognitoIdpBackend.confirm_sign_up

    def confirm_sign_up(self: Any, client_id: str, username: str) -> str:
        answer: str = original(self, client_id, username)
        for pool in self.user_pools.values():
            if client_id in pool.clients and "email" in pool.extended_config.get("AutoVerifiedAttributes", []):
                self.admin_update_user_attributes(pool.id, username, [{"Name": "email_verified", "Value": "true"}])
        return answer

    setattr(confirm_sign_up, "_spaceport_verifies", True)  # noqa: B010
    setattr(CognitoIdpBackend, "confirm_sign_up", confirm_sign_up)  # noqa: B010


def create_user_pool(name: str, operators_group: str) -> LocalUserPool:
    """The pool (the email is the username, verified on sign-up), its web app client (no secret:
    it runs in a browser) and the operators group: what the CDK stack creates in AWS."""
    confirm_sign_up_verifies_email()
    cognito = boto3.client("cognito-idp")
    pool = cognito.create_user_pool(
        PoolName=name,
        UsernameAttributes=["email"],
        AutoVerifiedAttributes=["email"],
        Policies={
            "PasswordPolicy": {
                "MinimumLength": MIN_PASSWORD_LENGTH,
                "RequireUppercase": False,
                "RequireLowercase": False,
                "RequireNumbers": False,
                "RequireSymbols": False,
            }
        },
    )["UserPool"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool["Id"],
        ClientName="web",
        GenerateSecret=False,
        ExplicitAuthFlows=_AUTH_FLOWS,
        ReadAttributes=["email", "email_verified"],
    )["UserPoolClient"]
    cognito.create_group(UserPoolId=pool["Id"], GroupName=operators_group, Description="Act on every job")
    return LocalUserPool(pool["Id"], client["ClientId"], pool["Arn"], operators_group)


def sign_in_user(pool: LocalUserPool, email: str, operator: bool = False) -> SignedInUser:
    """Create the local user ``email`` if needed (its address verified), make it an operator if
    asked, and sign it in; its ID token is what the gateway takes."""
    cognito = boto3.client("cognito-idp")
    email = email.strip().lower()
    password = secrets.token_urlsafe(18) + "aA1!"
    try:
        cognito.admin_create_user(
            UserPoolId=pool.pool_id,
            Username=email,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            MessageAction="SUPPRESS",
        )
    except cognito.exceptions.UsernameExistsException:
        pass
    # A fresh password each time: nothing to remember, and the token below is all a caller needs.
    cognito.admin_set_user_password(UserPoolId=pool.pool_id, Username=email, Password=password, Permanent=True)
    if operator:
        cognito.admin_add_user_to_group(UserPoolId=pool.pool_id, Username=email, GroupName=pool.operators_group)
    tokens = cognito.initiate_auth(
        ClientId=pool.client_id,
        AuthFlow=LOCAL_AUTH_FLOW,
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )["AuthenticationResult"]
    user = cognito.admin_get_user(UserPoolId=pool.pool_id, Username=email)
    sub = next(item["Value"] for item in user["UserAttributes"] if item["Name"] == "sub")
    groups = cognito.admin_list_groups_for_user(UserPoolId=pool.pool_id, Username=email)["Groups"]
    is_operator = any(group["GroupName"] == pool.operators_group for group in groups)
    return SignedInUser(email, sub, is_operator, tokens["IdToken"])
