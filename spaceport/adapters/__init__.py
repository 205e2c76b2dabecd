"""boto3 adapters behind the control plane's ports: S3, EventBridge, DynamoDB, SageMaker, SES.

Example::

    from spaceport.adapters import build_ports
    ports = build_ports(PipelineConfig.from_env())
    ports.store.get("0a1b2c3d4e5f6a7b")
"""

from spaceport.adapters.events import EventBridgePublisher, PublishError
from spaceport.adapters.idempotency import OnceOnly
from spaceport.adapters.jobstore import (
    CreateResult,
    DynamoJobStore,
    idempotency_table_definition,
    jobs_table_definition,
)
from spaceport.adapters.mail import Email, SesMailer
from spaceport.adapters.ports import (
    EventPublisher,
    Idempotency,
    JobStore,
    Mailer,
    ObjectStore,
    Ports,
    build_ports,
    default_ports,
)
from spaceport.adapters.s3 import BadS3UriError, ObjectHead, S3Location, S3Objects
from spaceport.adapters.sagemaker_jobs import LaunchError, SageMakerLauncher

__all__ = [
    "BadS3UriError",
    "CreateResult",
    "DynamoJobStore",
    "Email",
    "EventBridgePublisher",
    "EventPublisher",
    "Idempotency",
    "JobStore",
    "LaunchError",
    "Mailer",
    "ObjectHead",
    "ObjectStore",
    "OnceOnly",
    "Ports",
    "PublishError",
    "S3Location",
    "S3Objects",
    "SageMakerLauncher",
    "SesMailer",
    "build_ports",
    "default_ports",
    "idempotency_table_definition",
    "jobs_table_definition",
]
