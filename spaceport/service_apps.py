"""The Chalice app of every queue-consuming service, made one way: each ``services/*/app.py`` is one call.

An app consumes its service's queue (named by the topology), builds the process's ports once
(:func:`~spaceport.adapters.default_ports`) and hands each SQS record to the service's plain
handler through Powertools' batch processor, which reports failed records back to SQS.
``app.py`` must keep both names at module level: Chalice's deployment points Lambda at
``app.consume``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from chalice.app import Chalice, CloudWatchEvent, Rate, SQSEvent

from spaceport.adapters import default_ports
from spaceport.contracts.deployment import deployment_from_env
from spaceport.contracts.stages import Stage
from spaceport.contracts.topology import SWEEPER, service
from spaceport.handlers import handle_notify_message, handle_stage_message, process_sqs_batch
from spaceport.handlers.sweeper import sweep as sweep_stalled_jobs
from spaceport.ports import Ports
from spaceport.unit_app import unit_app

MessageHandler = Callable[[str, Ports, Any], str]
SWEEP_EVERY_MINUTES = 15


def queue_service_app(name: str, handle: MessageHandler) -> tuple[Chalice, Callable[[SQSEvent], dict[str, Any]]]:
    """``(app, consume)`` for the service ``name``: ``consume`` handles one batch of its queue."""
    spec = service(name)
    app = unit_app(name)

    # Chalice reads the queue when it loads the app, with the deployment's environment (its stage's
    # environment_variables when deploying, the Lambda's when running).
    @app.on_sqs_message(queue=spec.queue_name(deployment_from_env()), batch_size=spec.batch_size)
    def consume(event: SQSEvent) -> dict[str, Any]:
        ports = default_ports(name)
        return process_sqs_batch(event.to_dict(), lambda body: handle(body, ports, event.context), event.context)

    return app, consume


def stage_service_app(stage: Stage) -> tuple[Chalice, Callable[[SQSEvent], dict[str, Any]]]:
    """The app of the service that runs ``stage``'s SageMaker job."""
    return queue_service_app(stage.value, partial(handle_stage_message, stage))


def notify_service_app() -> tuple[Chalice, Callable[[SQSEvent], dict[str, Any]]]:
    """The app that emails each run's outcome."""
    return queue_service_app("notify", handle_notify_message)


def sweeper_app() -> tuple[Chalice, Callable[[CloudWatchEvent], list[str]]]:
    """``(app, sweep)``: every :data:`SWEEP_EVERY_MINUTES`, fail the jobs nothing moved for too long."""
    app = unit_app(SWEEPER)

    @app.schedule(Rate(SWEEP_EVERY_MINUTES, unit=Rate.MINUTES))
    def sweep(event: CloudWatchEvent) -> list[str]:
        return sweep_stalled_jobs(default_ports(SWEEPER))

    return app, sweep
