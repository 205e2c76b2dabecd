"""Integrations: a backend that submits jobs for its users with an API key of its own.

Each key is issued through an API Gateway usage plan (its throttle and quota) and bound to the
Spaceport user it acts for; the binding is kept in the jobs table (``apikey#<key id>``) and
read by the gateway for each call under :data:`INTEGRATION_PREFIX`, where API Gateway has
checked the key already and names it in ``requestContext.identity.apiKeyId``. A key never goes
to a browser: the web app signs its users in instead. Jobs an integration starts belong to the
key's user, and their emails go to that user's verified address.

:func:`issue_key` is what an operator runs (``spaceport integration-key``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from spaceport.auth import Caller, NotSignedIn
from spaceport.contracts.deployment import resource_name
from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode
from spaceport.ports import Ports

INTEGRATION_PREFIX = "/integration"
# The tag on each key naming its user (what an operator sees in the API Gateway console too).
OWNER_TAG = "spaceport:owner"


def usage_plan_name(deployment: str) -> str:
    """The usage plan a deployment's integration keys are issued in (the stack's and the local one).

    >>> usage_plan_name("prod")
    'spaceport-prod-integrations'
    """
    return resource_name(deployment, "integrations")


class IntegrationKeyError(SpaceportError):
    """A key cannot be issued: the user is unknown or unverified, or the usage plan is missing."""

    code = "integration_key"
    exit_code = ExitCode.INTEGRATION_KEY_REFUSED


@dataclass(frozen=True)
class IssuedKey:
    """A new key: ``value`` is shown once, to the operator who issued it."""

    key_id: str
    value: str
    owner: str
    owner_email: str
    usage_plan_id: str


def caller_for_key(ports: Ports, key_id: str) -> Caller:
    """The user an API key acts for; :class:`NotSignedIn` for a key bound to no one."""
    binding = ports.store.api_key_binding(key_id)
    if binding is None:
        raise NotSignedIn("This API key is bound to no Spaceport user: ask the operator to issue it again.")
    owner, email = binding
    return Caller(subject=owner, email=email, email_verified=True, api_key_id=key_id)


def _verified_user(cognito: Any, pool_id: str, email: str) -> tuple[str, str]:
    """``(sub, email)`` of the pool's user ``email``, whose address must be verified."""
    try:
        user = cognito.admin_get_user(UserPoolId=pool_id, Username=email)
    except cognito.exceptions.UserNotFoundException:
        raise IntegrationKeyError(f"There is no user {email} in the user pool: they sign up first.") from None
    attributes = {item["Name"]: item["Value"] for item in user.get("UserAttributes", [])}
    if attributes.get("email_verified", "").lower() != "true":
        raise IntegrationKeyError(f"{email} has not verified the address yet; a key's jobs email it.")
    return attributes["sub"], attributes.get("email", email).lower()


def issue_key(
    apigateway: Any, cognito: Any, ports: Ports, usage_plan_id: str, pool_id: str, owner_email: str, name: str
) -> IssuedKey:
    """Create an API key for the user ``owner_email``, add it to the usage plan, and bind it to the user."""
    owner, email = _verified_user(cognito, pool_id, owner_email.strip().lower())
    try:
        apigateway.get_usage_plan(usagePlanId=usage_plan_id)
    except apigateway.exceptions.NotFoundException:
        raise IntegrationKeyError(f"There is no usage plan {usage_plan_id}.") from None
    value = secrets.token_urlsafe(30)
    key = apigateway.create_api_key(
        name=name, description=f"Spaceport integration for {email}", enabled=True, value=value, tags={OWNER_TAG: owner}
    )
    apigateway.create_usage_plan_key(usagePlanId=usage_plan_id, keyId=key["id"], keyType="API_KEY")
    ports.store.bind_api_key(key["id"], owner, email)
    return IssuedKey(str(key["id"]), value, owner, email, usage_plan_id)


def find_usage_plan(apigateway: Any, deployment: str) -> str:
    """The id of the deployment's integrations usage plan (:func:`usage_plan_name`)."""
    name = usage_plan_name(deployment)
    for page in apigateway.get_paginator("get_usage_plans").paginate():
        for plan in page["items"]:
            if plan["name"] == name:
                return str(plan["id"])
    raise IntegrationKeyError(f"There is no usage plan {name}: deploy the stack (make deploy-infra) first.")


def find_user_pool(cognito: Any, deployment: str) -> str:
    """The id of the deployment's user pool (``spaceport-<deployment>-users``)."""
    name = resource_name(deployment, "users")
    for page in cognito.get_paginator("list_user_pools").paginate(MaxResults=60):
        for pool in page["UserPools"]:
            if pool["Name"] == name:
                return str(pool["Id"])
    raise IntegrationKeyError(f"There is no user pool {name}: deploy the stack (make deploy-infra) first.")
