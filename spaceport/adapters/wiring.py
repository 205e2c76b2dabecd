"""The boto3 adapters behind the ports a deploy unit was granted: what the apps call.

``build_ports(config, "notify")`` builds the adapters of the ports the ``notify`` unit's policy
grants (:data:`spaceport.contracts.units.UNITS`) and nothing else: a port a unit was not
granted is :class:`Withheld`, and the first call on it fails with the reason. So an app's IAM
policy and the ports it builds cannot drift apart.

The same code runs in AWS and on a laptop: boto3 reads ``AWS_ENDPOINT_URL``, so the local
runtime's moto server answers the very calls Lambda makes, and the local runtime hands each
unit the credentials of its own role through :func:`use_sessions`, as Lambda gives each
function its role's.

>>> import moto
>>> with moto.mock_aws():
...     ports = build_ports(PipelineConfig(), "gateway", boto3.session.Session(region_name="us-east-1"))
>>> type(ports.store).__name__, type(ports.launcher).__name__
('DynamoJobStore', 'Withheld')
>>> try:
...     ports.launcher.start
... except PortNotGranted as error:
...     print(error)
the gateway unit is not granted the launcher port (see spaceport.contracts.units)
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from spaceport.adapters.events import EventBridgePublisher
from spaceport.adapters.idempotency import OnceOnly
from spaceport.adapters.jobstore import DynamoJobStore
from spaceport.adapters.mail import SesMailer
from spaceport.adapters.s3 import S3Objects
from spaceport.adapters.sagemaker_jobs import SageMakerLauncher
from spaceport.config import PipelineConfig
from spaceport.contracts.units import UNITS, Port
from spaceport.ports import Ports

# unit name -> the boto3 session its code calls AWS with.
SessionProvider = Callable[[str], boto3.session.Session]


class PortNotGranted(AttributeError):
    """A unit's code reached for a port its policy does not grant."""


class Withheld:
    """Stands in for a port a unit was not granted."""

    def __init__(self, unit: str, port: Port) -> None:
        self._reason = f"the {unit} unit is not granted the {port.value} port (see spaceport.contracts.units)"

    def __getattr__(self, name: str) -> Any:
        raise PortNotGranted(self._reason)


def _environment_session(unit: str) -> boto3.session.Session:
    return boto3.session.Session()


_sessions: SessionProvider = _environment_session


def use_sessions(provider: SessionProvider | None) -> None:
    """Give each unit's ports the session ``provider(unit)`` returns (``None``: the environment's again)."""
    global _sessions
    _sessions = provider or _environment_session
    reset_default_ports()


def build_ports(config: PipelineConfig, unit: str | None = None, session: Any = None) -> Ports:
    """The adapters of the ports ``unit`` is granted, from ``session`` (default: the unit's session).

    ``unit=None`` builds every port, for an operator's tools and the tests that set a scene up.
    """
    granted = UNITS[unit].ports if unit is not None else frozenset(Port)
    session = session or (_sessions(unit) if unit is not None else boto3.session.Session())
    unit = unit or "operator"

    def port(name: Port, make: Callable[[], Any]) -> Any:
        return make() if name in granted else Withheld(unit, name)

    return Ports(
        config=config,
        store=port(Port.STORE, lambda: DynamoJobStore(session.resource("dynamodb").Table(config.jobs_table))),
        publisher=port(Port.PUBLISHER, lambda: EventBridgePublisher(session.client("events"), config.bus_name)),
        # Presigned links signed with SigV4, which every region accepts.
        objects=port(Port.OBJECTS, lambda: S3Objects(session.client("s3", config=Config(signature_version="s3v4")))),
        mailer=port(Port.MAILER, lambda: SesMailer(session.client("ses"))),
        launcher=port(Port.LAUNCHER, lambda: SageMakerLauncher(session.client("sagemaker"))),
        idempotency=OnceOnly(session.client("dynamodb"), config.idempotency_table)
        if Port.IDEMPOTENCY in granted
        else None,
    )


_default_lock = threading.Lock()


@functools.cache
def _cached_default_ports(unit: str) -> Ports:
    return build_ports(PipelineConfig.from_env(), unit)


def default_ports(unit: str) -> Ports:
    """The process's ports for ``unit``, from :meth:`PipelineConfig.from_env`, built on first use.

    Shared by every thread of a process: the adapters hold boto3 clients only, which are
    thread-safe. :func:`reset_default_ports` makes the next call read the environment again.
    """
    with _default_lock:
        return _cached_default_ports(unit)


def reset_default_ports() -> None:
    """Forget the process's ports (a test or the local runtime changed the environment)."""
    with _default_lock:
        _cached_default_ports.cache_clear()
