"""The five Chalice apps: where they live, which queue each consumes, and their Lambda names.

Chalice names a function ``<app_name>-<deployment>-<handler>`` (the REST API's handler is
``<app_name>-<deployment>``). The names are read from each app object, loaded from its
``app.py`` as Lambda loads it (the apps import no stage-job code, so this is light).

>>> sfm = app_named("sfm")
>>> sfm.directory.name, lambda_function_names(sfm, "prod")
('sfm', ('spaceport-sfm-prod-consume',))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spaceport.app_loader import import_app_module
from spaceport.contracts.topology import GATEWAY, SERVICES, SWEEPER, ServiceSpec
from spaceport_infra.imports import REPO_ROOT


@dataclass(frozen=True)
class ChaliceApp:
    name: str
    directory: Path
    # The topology service whose queue this app consumes; None for the gateway and the sweeper.
    service: ServiceSpec | None

    @property
    def is_api(self) -> bool:
        """The gateway: the one app behind API Gateway (the others are event handlers)."""
        return self.name == GATEWAY

    @property
    def app_name(self) -> str:
        return f"spaceport-{self.name}"

    @property
    def app_file(self) -> Path:
        return self.directory / "app.py"


APPS: tuple[ChaliceApp, ...] = (
    ChaliceApp(GATEWAY, REPO_ROOT / "gateway", None),
    *(ChaliceApp(spec.name, REPO_ROOT / "services" / spec.name, spec) for spec in SERVICES),
    ChaliceApp(SWEEPER, REPO_ROOT / "services" / SWEEPER, None),
)


def app_named(name: str) -> ChaliceApp:
    for app in APPS:
        if app.name == name:
            return app
    raise KeyError(f"no Chalice app named {name!r}; known: {[app.name for app in APPS]}")


def lambda_function_names(app: ChaliceApp, deployment: str) -> tuple[str, ...]:
    """The Lambda functions ``chalice deploy --stage DEPLOYMENT`` creates for ``app`` (none if no app.py yet)."""
    if not app.app_file.exists():
        return ()
    chalice_app = import_app_module(app.app_file, f"spaceport_infra_app_{app.name}").app
    names = {f"{app.app_name}-{deployment}-{source.name}" for source in chalice_app.event_sources}
    names |= {f"{app.app_name}-{deployment}-{function.name}" for function in chalice_app.pure_lambda_functions}
    if chalice_app.routes:
        names.add(f"{app.app_name}-{deployment}")
    return tuple(sorted(names))
