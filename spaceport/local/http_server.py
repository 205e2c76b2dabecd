"""The gateway on http://127.0.0.1:8000: Chalice's local server for ``gateway/app.py``, in a thread.

Besides the API it serves what the web app needs from the same origin:

* ``/config.json``: ``{"apiBaseUrl", "apiKey", "apiKeyHeader"}``, so the browser app finds
  the API and its key without a build step;
* the built web app from ``web/dist`` (``/`` is its ``index.html``) when that folder exists,
  and ``index.html`` for any other GET whose ``Accept`` asks for ``text/html`` (a browser
  loading one of the app's routes such as ``/jobs/<id>`` or ``/view/<job>``); the app's own
  API calls do not ask for HTML, so ``GET /jobs/{id}`` still reaches the API.

The local stack starts one with ``GatewayServer(load_chalice_app(gateway_app_py), port, api_key,
web_dist).start()`` and ends it with ``stop()``.
"""

from __future__ import annotations

import functools
import json
import mimetypes
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from spaceport.api.endpoints import API_KEY_HEADER
from spaceport.app_loader import import_app_module
from spaceport.local.workers import LambdaLogs


def load_chalice_app(app_path: Path, module_name: str = "spaceport_local_gateway_app") -> Any:
    """The ``app`` object of a Chalice ``app.py``, imported once under ``module_name``."""
    return import_app_module(app_path, module_name).app


class GatewayServer:
    """Chalice's local HTTP server for one app, plus ``/config.json`` and the web app's files."""

    def __init__(
        self,
        app: Any,
        port: int,
        api_key: str,
        web_dist: Path | None = None,
        host: str = "127.0.0.1",
        logs: LambdaLogs | None = None,
    ) -> None:
        from chalice.config import Config
        from chalice.local import CustomLocalChalice, LocalDevServer, create_local_server

        self.host, self.port = host, port
        self.base_url = f"http://{host}:{port}"
        site = _Site(self.base_url, api_key, web_dist if web_dist is not None and web_dist.is_dir() else None, logs)
        # create_local_server makes the app's current_request thread-local; the request handler
        # is swapped for ours so that /config.json and the web app come from the same origin.
        config = Config()
        if isinstance(app, CustomLocalChalice):
            # Served before in this process (a module is imported once): already made local.
            self._server = LocalDevServer(app, config, host, port)
        else:
            self._server = create_local_server(app, config, host, port)
        self._server.server.RequestHandlerClass = functools.partial(
            _handler_class(), app_object=self._server.app_object, config=config, site=site
        )
        self._thread = threading.Thread(target=self._server.server.serve_forever, name="gateway", daemon=True)

    def start(self) -> GatewayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.server.shutdown()
        self._server.server.server_close()


class _Site:
    def __init__(self, base_url: str, api_key: str, web_dist: Path | None, logs: LambdaLogs | None) -> None:
        self.config = json.dumps({"apiBaseUrl": base_url, "apiKey": api_key, "apiKeyHeader": API_KEY_HEADER})
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
    from chalice.local import ChaliceRequestHandler

    class GatewayRequestHandler(ChaliceRequestHandler):
        def __init__(
            self, request: Any, client_address: Any, server: Any, app_object: Any, config: Any, site: _Site
        ) -> None:
            self.site = site
            super().__init__(request, client_address, server, app_object, config)

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
