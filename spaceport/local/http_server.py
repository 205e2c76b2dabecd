"""The gateway on http://127.0.0.1:8000: Chalice's local server for ``gateway/app.py``, in a thread.

It stands in for API Gateway in front of the app, and checks what API Gateway checks before
the Lambda runs (:class:`LocalApiGatewayChecks`): on a route behind the Cognito authorizer, the
``Authorization`` header's ID token, verified against the local user pool's keys (signature,
issuer, audience, expiry, ``token_use``; :mod:`spaceport.auth.tokens`), whose claims then go
where API Gateway puts them (``requestContext.authorizer.claims``, every value a string); on a
route that requires an API key, the ``x-api-key`` of an enabled key in a usage plan, named in
``requestContext.identity.apiKeyId``. A refusal is API Gateway's: 401 ``Unauthorized``, 403
``Forbidden``. (Chalice's own local server decodes the token without checking it.)
These checks are API Gateway's own, not a deploy unit's: they read the pool's public keys
unsigned, as API Gateway's authorizer does, and the API keys and usage plans with the
runtime's root credentials (the process's environment), never with the gateway's role, so no
unit's policy grants them (in AWS no policy of ours does either).

Besides the API it serves what the web app needs from the same origin:

* ``/config.json``: ``{"apiBaseUrl", "auth": {"region", "userPoolId", "clientId", "endpoint",
  "authFlow"}}``: where the API is and how to sign in (to the local user pool in moto); no
  secret;
* the built web app from ``web/dist`` (``/`` is its ``index.html``) when that folder exists,
  and ``index.html`` for any other GET whose ``Accept`` asks for ``text/html`` (a browser
  loading one of the app's routes such as ``/jobs/<id>`` or ``/view/<job>``); the app's own
  API calls do not ask for HTML, so ``GET /jobs/{id}`` still reaches the API.

The local stack starts one with ``GatewayServer(load_chalice_app(gateway_app_py), port,
web_dist).start()``, once the user pool's settings are in the environment, and ends it with
``stop()``.
"""

from __future__ import annotations

import functools
import json
import mimetypes
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import boto3

from spaceport.api.endpoints import API_KEY_HEADER, AUTHORIZATION_HEADER
from spaceport.app_loader import import_app_module
from spaceport.auth.tokens import IdTokenVerifier, TokenRefused, UserPool
from spaceport.config import PipelineConfig
from spaceport.local.cognito import LOCAL_AUTH_FLOW
from spaceport.local.workers import LambdaLogs


def load_chalice_app(app_path: Path, module_name: str = "spaceport_local_gateway_app") -> Any:
    """The ``app`` object of a Chalice ``app.py``, imported once under ``module_name``."""
    return import_app_module(app_path, module_name).app


def local_user_pool(config: PipelineConfig) -> UserPool | None:
    """The user pool the local gateway accepts tokens of (``None`` until one is provisioned)."""
    if not config.user_pool_id or not config.user_pool_client_id:
        return None
    region = boto3.session.Session().region_name or "us-east-1"
    return UserPool(region, config.user_pool_id, config.user_pool_client_id)


def api_key_id(value: str) -> str | None:
    """The id of the enabled local API key ``value`` that belongs to a usage plan, else ``None``."""
    apigateway = boto3.client("apigateway")
    for page in apigateway.get_paginator("get_api_keys").paginate(includeValues=True):
        for key in page["items"]:
            if key.get("value") == value and key.get("enabled"):
                plans = apigateway.get_usage_plans(keyId=key["id"]).get("items", [])
                return str(key["id"]) if plans else None
    return None


def _as_claim(value: Any) -> str:
    """A claim as API Gateway's Cognito authorizer passes it on: a string (a list as ``[a b]``)."""
    if isinstance(value, list):
        return "[" + " ".join(str(item) for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@functools.cache
def _checks_class() -> type:
    from chalice.app import CognitoUserPoolAuthorizer
    from chalice.local import ForbiddenError, LocalGatewayAuthorizer, NotAuthorizedError

    class LocalApiGatewayChecks(LocalGatewayAuthorizer):
        """What API Gateway checks before the Lambda runs: the ID token, the API key."""

        def __init__(
            self, app_object: Any, verifier: IdTokenVerifier | None, key_ids: Callable[[str], str | None]
        ) -> None:
            super().__init__(app_object)
            self._verifier = verifier
            self._key_ids = key_ids

        def authorize(self, raw_path: str, lambda_event: Any, lambda_context: Any) -> Any:
            route = self._route_for_event(lambda_event)
            if route is None:
                return lambda_event, lambda_context
            headers = lambda_event.get("headers") or {}
            error_headers = {"x-amzn-RequestId": lambda_context.aws_request_id}
            if route.api_key_required:
                given = headers.get(API_KEY_HEADER, "")
                key = self._key_ids(given) if given else None
                if key is None:
                    raise ForbiddenError(error_headers, b'{"message":"Forbidden"}')
                lambda_event["requestContext"]["identity"].update({"apiKey": given, "apiKeyId": key})
            if isinstance(route.authorizer, CognitoUserPoolAuthorizer):
                try:
                    if self._verifier is None:
                        raise TokenRefused("No user pool is provisioned.")
                    claims = self._verifier.verify(headers.get(AUTHORIZATION_HEADER, ""))
                except TokenRefused:
                    raise NotAuthorizedError(error_headers, b'{"message":"Unauthorized"}') from None
                lambda_event["requestContext"]["authorizer"] = {
                    "claims": {name: _as_claim(value) for name, value in claims.items()}
                }
            elif route.authorizer is not None:
                raise ForbiddenError(error_headers, b'{"message":"Forbidden"}')  # no other kind is used here
            return lambda_event, lambda_context

    return LocalApiGatewayChecks


def local_api_gateway_checks(app: Any, config: PipelineConfig, aws_endpoint: str | None) -> Any:
    """The checks for ``app`` against the local user pool (whose keys moto serves at ``aws_endpoint``)."""
    pool = local_user_pool(config)
    verifier = IdTokenVerifier(pool, jwks_url=pool.jwks_url(aws_endpoint)) if pool is not None else None
    return _checks_class()(app, verifier, api_key_id)


class GatewayServer:
    """Chalice's local HTTP server for one app, with API Gateway's checks, ``/config.json`` and the web app."""

    def __init__(
        self,
        app: Any,
        port: int,
        web_dist: Path | None = None,
        host: str = "127.0.0.1",
        logs: LambdaLogs | None = None,
    ) -> None:
        from chalice.config import Config
        from chalice.local import CustomLocalChalice, LocalDevServer, create_local_server

        self.host, self.port = host, port
        self.base_url = f"http://{host}:{port}"
        config = PipelineConfig.from_env()
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        pool = local_user_pool(config)
        site = _Site(
            self.base_url, pool, endpoint, web_dist if web_dist is not None and web_dist.is_dir() else None, logs
        )
        # create_local_server makes the app's current_request thread-local; the request handler
        # is swapped for ours so that /config.json and the web app come from the same origin.
        chalice_config = Config()
        if isinstance(app, CustomLocalChalice):
            # Served before in this process (a module is imported once): already made local.
            self._server = LocalDevServer(app, chalice_config, host, port)
        else:
            self._server = create_local_server(app, chalice_config, host, port)
        checks = local_api_gateway_checks(self._server.app_object, config, endpoint)
        self._server.server.RequestHandlerClass = functools.partial(
            _handler_class(), app_object=self._server.app_object, config=chalice_config, site=site, checks=checks
        )
        self._thread = threading.Thread(target=self._server.server.serve_forever, name="gateway", daemon=True)

    def start(self) -> GatewayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.server.shutdown()
        self._server.server.server_close()


class _Site:
    def __init__(
        self,
        base_url: str,
        pool: UserPool | None,
        aws_endpoint: str | None,
        web_dist: Path | None,
        logs: LambdaLogs | None,
    ) -> None:
        auth = (
            {
                "region": pool.region,
                "userPoolId": pool.pool_id,
                "clientId": pool.client_id,
                "endpoint": aws_endpoint,
                "authFlow": LOCAL_AUTH_FLOW,
            }
            if pool is not None
            else None
        )
        self.config = json.dumps({"apiBaseUrl": base_url, "auth": auth})
        self.web_dist = web_dist.resolve() if web_dist is not None else None
        # The API's function's log lines, one invocation per API request, as Lambda writes them.
        self.logs = logs

    def static_file(self, path: str, accept: str) -> Path | None:
        """The web app's file for a URL path (never outside ``web/dist``), or its page for a browser."""
        if self.web_dist is None:
            return None
        relative = unquote(path).lstrip("/") or "index.html"
        candidate = (self.web_dist / relative).resolve()
        if candidate.is_relative_to(self.web_dist) and candidate.is_file():
            return candidate
        index = self.web_dist / "index.html"
        if "text/html" in accept and index.is_file():
            return index  # the single-page app's router reads the path
        return None


@functools.cache
def _handler_class() -> type:
    from http.server import BaseHTTPRequestHandler

    from chalice.local import ChaliceRequestHandler, LocalGateway

    class GatewayRequestHandler(ChaliceRequestHandler):
        def __init__(
            self,
            request: Any,
            client_address: Any,
            server: Any,
            app_object: Any,
            config: Any,
            site: _Site,
            checks: Any,
        ) -> None:
            self.site = site
            # ChaliceRequestHandler's own __init__, with API Gateway's checks in place of Chalice's.
            self.local_gateway = LocalGateway(app_object, config)
            self.local_gateway._authorizer = checks
            BaseHTTPRequestHandler.__init__(self, request, client_address, server)

        def _serve_site(self) -> bool:
            path = urlparse(self.path).path
            if path == "/config.json":
                self._send_http_response(
                    200, {"Content-Type": "application/json", "Cache-Control": "no-store"}, self.site.config
                )
                return True
            found = self.site.static_file(path, self.headers.get("Accept", ""))
            if found is None:
                return False
            content_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
            body = b"" if self.command == "HEAD" else found.read_bytes()
            self._send_http_response(200, {"Content-Type": content_type}, body)
            return True

        def _generic_handle(self) -> None:
            started = time.time()
            super()._generic_handle()
            if self.site.logs is not None:
                self.site.logs.invocation(str(uuid.uuid4()), started)

        def do_GET(self) -> None:
            if not self._serve_site():
                self._generic_handle()

        do_HEAD = do_GET
        do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the runtime's own output is what the user reads

    return GatewayRequestHandler
