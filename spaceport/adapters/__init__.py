"""The boto3 adapters behind the ports (:mod:`spaceport.ports`): S3, EventBridge, DynamoDB, SageMaker, SES.

The apps build them with :func:`default_ports`; nothing else constructs a boto3 client for a handler.
"""

from spaceport.adapters.events import EventBridgePublisher, PublishError
from spaceport.adapters.idempotency import OnceOnly
from spaceport.adapters.jobstore import DynamoJobStore, idempotency_table_definition, jobs_table_definition
from spaceport.adapters.mail import SesMailer
from spaceport.adapters.s3 import S3Objects
from spaceport.adapters.sagemaker_jobs import SageMakerLauncher
from spaceport.adapters.wiring import build_ports, default_ports, reset_default_ports
from spaceport.ports import LaunchError

__all__ = [
    "DynamoJobStore",
    "EventBridgePublisher",
    "LaunchError",
    "OnceOnly",
    "PublishError",
    "S3Objects",
    "SageMakerLauncher",
    "SesMailer",
    "build_ports",
    "default_ports",
    "idempotency_table_definition",
    "jobs_table_definition",
    "reset_default_ports",
]
