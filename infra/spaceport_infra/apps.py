"""The five Chalice apps: where they live, which queue each consumes, and their Lambda names.

Chalice names a function ``<app_name>-<stage>-<handler>`` (the REST API's handler is
``<app_name>-<stage>``). The names are read from each ``app.py`` without importing it, so
the stack can alarm on every function without loading Lambda code.

Example::

    sfm = app_named("sfm")
    sfm.directory                          # <repo>/services/sfm
    lambda_function_names(sfm, "prod")     # ("spaceport-sfm-prod-consume",) or so
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from spaceport.contracts.topology import SERVICES, ServiceSpec
from spaceport_infra.imports import REPO_ROOT

# Chalice decorators that each make one Lambda function named after the handler (or name=).
_FUNCTION_DECORATORS = {
    "on_sqs_message",
    "lambda_function",
    "schedule",
    "on_s3_event",
    "on_sns_message",
    "on_cw_event",
    "on_kinesis_record",
    "on_dynamodb_record",
    "authorizer",
    "on_ws_connect",
    "on_ws_message",
    "on_ws_disconnect",
}


@dataclass(frozen=True)
class ChaliceApp:
    name: str
    directory: Path
    # The topology service whose queue this app consumes; None for the gateway.
    service: ServiceSpec | None

    @property
    def app_name(self) -> str:
        return f"spaceport-{self.name}"

    @property
    def app_file(self) -> Path:
        return self.directory / "app.py"


APPS: tuple[ChaliceApp, ...] = (
    ChaliceApp("gateway", REPO_ROOT / "gateway", None),
    *(ChaliceApp(spec.name, REPO_ROOT / "services" / spec.name, spec) for spec in SERVICES),
)


def app_named(name: str) -> ChaliceApp:
    for app in APPS:
        if app.name == name:
            return app
    raise KeyError(f"no Chalice app named {name!r}; known: {[app.name for app in APPS]}")


def lambda_function_names(app: ChaliceApp, stage: str) -> tuple[str, ...]:
    """The Lambda functions ``chalice deploy --stage STAGE`` creates for ``app`` (none if no app.py yet)."""
    if not app.app_file.exists():
        return ()
    tree = ast.parse(app.app_file.read_text(), filename=str(app.app_file))
    names: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call else decorator
            if not (isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)):
                continue
            if target.attr == "route":
                names.add(f"{app.app_name}-{stage}")
            elif target.attr in _FUNCTION_DECORATORS:
                explicit = [k.value for k in (call.keywords if call else []) if k.arg == "name"]
                handler = explicit[0].value if explicit and isinstance(explicit[0], ast.Constant) else node.name
                names.add(f"{app.app_name}-{stage}-{handler}")
    return tuple(sorted(names))
