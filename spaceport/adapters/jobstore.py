"""The job store on DynamoDB: one item per job, moved forward only by conditional writes.

Every transition names its :func:`~spaceport.contracts.job.position`; DynamoDB writes it only
when that position is higher than the item's, so an old, duplicate or replayed event never
moves a job backwards, and two racing consumers cannot both win.

>>> import boto3, moto
>>> from spaceport.contracts.job import JobRecord, JobStatus, Phase, position
>>> from spaceport.contracts.stages import Stage
>>> with moto.mock_aws():
...     dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
...     _ = dynamodb.meta.client.create_table(**jobs_table_definition("jobs"))
...     store = DynamoJobStore(dynamodb.Table("jobs"))
...     _ = store.create(JobRecord(job_id="j1", email="a@b.co", input_uri="s3://u/p.zip"))
...     started = position("r1", Stage.SFM, 1, Phase.STARTED)
...     moved = store.transition("j1", started, status=JobStatus.RUNNING, stage=Stage.SFM)
...     back = store.transition("j1", position("r1", Stage.SFM, 1, Phase.REQUESTED))
>>> moved, back
(True, False)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from spaceport.adapters.aws_errors import is_condition_failed
from spaceport.contracts.job import JobFailure, JobRecord, JobStatus, RunRecord, run_number
from spaceport.contracts.stages import Stage
from spaceport.ports import CreateResult

EMAIL_INDEX = "by-email"
_KEEP = object()


def jobs_table_definition(name: str) -> dict[str, Any]:
    """``CreateTable`` arguments for the jobs table (the local runtime and infra use the same)."""
    return {
        "TableName": name,
        "KeySchema": [{"AttributeName": "job_id", "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": "job_id", "AttributeType": "S"},
            {"AttributeName": "email", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": EMAIL_INDEX,
                "KeySchema": [
                    {"AttributeName": "email", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def idempotency_table_definition(name: str) -> dict[str, Any]:
    """``CreateTable`` arguments for Powertools' idempotency table (key ``id``, TTL ``expiration``)."""
    return {
        "TableName": name,
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }


def _to_item(value: Any) -> Any:
    """JSON-able data -> DynamoDB attribute values (floats become Decimals)."""
    return json.loads(json.dumps(value), parse_float=Decimal)


def _from_item(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _from_item(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_from_item(item) for item in value]
    return value


def _now() -> str:
    return datetime.now(UTC).isoformat()


class _Table:
    """A ``Table``'s item calls, made through its client.

    boto3 resources are not safe to share across threads (the local runtime's workers and
    gateway threads share one store); clients are. A resource's client still converts
    Python values to DynamoDB's and back.
    """

    def __init__(self, table: Any) -> None:
        self.client = table.meta.client
        self.name = table.name

    def put_item(self, **arguments: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.put_item(TableName=self.name, **arguments)
        return answer

    def get_item(self, **arguments: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.get_item(TableName=self.name, **arguments)
        return answer

    def update_item(self, **arguments: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.update_item(TableName=self.name, **arguments)
        return answer

    def query(self, **arguments: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.client.query(TableName=self.name, **arguments)
        return answer


class DynamoJobStore:
    """The ``JobStore`` adapter. ``table`` is a boto3 DynamoDB ``Table`` resource; one store
    may serve several threads."""

    def __init__(self, table: Any) -> None:
        self.table = _Table(table)

    def create(self, record: JobRecord, fingerprint: str = "") -> CreateResult:
        """Write a new job unless one with its id exists (a repeated idempotent request)."""
        item = _to_item(record.model_dump(mode="json"))
        item["request_fingerprint"] = fingerprint
        try:
            self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(job_id)")
        except ClientError as error:
            if not is_condition_failed(error):
                raise
            existing = self.table.get_item(Key={"job_id": record.job_id}, ConsistentRead=True).get("Item", {})
            return CreateResult(False, str(existing.get("request_fingerprint", "")))
        return CreateResult(True, fingerprint)

    def get(self, job_id: str) -> JobRecord | None:
        item = self.table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")
        return JobRecord.model_validate(_from_item(item)) if item else None

    def list_by_email(self, email: str, limit: int = 50) -> list[JobRecord]:
        """A user's jobs, newest first."""
        answer = self.table.query(
            IndexName=EMAIL_INDEX,
            KeyConditionExpression="email = :email",
            ExpressionAttributeValues={":email": email},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [JobRecord.model_validate(_from_item(item)) for item in answer.get("Items", [])]

    def transition(
        self,
        job_id: str,
        to_position: int,
        *,
        status: JobStatus | None = None,
        stage: Stage | None = None,
        run_id: str | None = None,
        attempt: int | None = None,
        stage_percent: float | None = None,
        options: Any = None,
        artifacts: dict[str, str] | None = None,
        summary: dict[str, Any] | None = None,
        error: JobFailure | None | object = _KEEP,
        run_status: tuple[str, JobStatus] | None = None,
        new_run: RunRecord | None = None,
    ) -> bool:
        """Apply the changes if ``to_position`` is past the job's; ``False`` when it is not.

        ``run_status`` sets the status of one run in the history; ``new_run`` appends a run.
        """
        names = {"#position": "position", "#updated_at": "updated_at"}
        values: dict[str, Any] = {":position": to_position, ":now": _now()}
        sets = ["#position = :position", "#updated_at = :now"]

        def put(field: str, value: Any) -> None:
            names[f"#{field}"] = field
            values[f":{field}"] = _to_item(value)
            sets.append(f"#{field} = :{field}")

        for field, value in (
            ("status", status),
            ("stage", stage),
            ("run_id", run_id),
            ("attempt", attempt),
            ("stage_percent", stage_percent),
        ):
            if value is not None:
                put(field, value.value if hasattr(value, "value") else value)
        if options is not None:
            put("options", options.model_dump(mode="json"))
        if isinstance(error, JobFailure) or error is None:
            put("error", error.model_dump(mode="json") if error is not None else None)
        for group, entries in (("artifacts", artifacts or {}), ("summary", summary or {})):
            if entries:
                names[f"#{group}"] = group
            for index, (key, value) in enumerate(entries.items()):
                names[f"#{group}{index}"] = key
                values[f":{group}{index}"] = _to_item(value)
                sets.append(f"#{group}.#{group}{index} = :{group}{index}")
        if run_status is not None:
            names["#runs"], names["#run_status"] = "runs", "status"
            values[":run_status"] = run_status[1].value
            sets.append(f"#runs[{run_number(run_status[0]) - 1}].#run_status = :run_status")
        if new_run is not None:
            names["#runs"] = "runs"
            values[":new_run"] = [_to_item(new_run.model_dump(mode="json"))]
            sets.append("#runs = list_append(#runs, :new_run)")
        try:
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_exists(job_id) AND #position < :position",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error_:
            if is_condition_failed(error_):
                return False
            raise
        return True

    def claim_notification(self, job_id: str, marker: str) -> bool:
        """Record that ``marker`` (``"<run_id>#<kind>"``) is being emailed; ``False`` if it already was."""
        try:
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET notified = list_append(notified, :marker)",
                ConditionExpression="attribute_exists(job_id) AND NOT contains(notified, :marker_value)",
                ExpressionAttributeValues={":marker": [marker], ":marker_value": marker},
            )
        except ClientError as error:
            if is_condition_failed(error):
                return False
            raise
        return True

    def release_notification(self, job_id: str, marker: str) -> None:
        """Undo :meth:`claim_notification` after the email could not be sent, so a retry sends it."""
        record = self.get(job_id)
        if record is None or marker not in record.notified:
            return
        index = record.notified.index(marker)
        try:
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression=f"REMOVE notified[{index}]",
                ConditionExpression=f"notified[{index}] = :marker",
                ExpressionAttributeValues={":marker": marker},
            )
        except ClientError as error:
            if not is_condition_failed(error):
                raise
