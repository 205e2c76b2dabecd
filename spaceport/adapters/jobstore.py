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
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError
from pydantic import TypeAdapter

from spaceport.adapters.aws_errors import is_condition_failed
from spaceport.contracts.job import (
    FINAL_STATUSES,
    OWNER_INDEX,
    SHARE_INDEX,
    BlockRun,
    JobFailure,
    JobRecord,
    JobStatus,
    NotificationState,
    OperatorAction,
    PartStatus,
    RunRecord,
    run_number,
    run_of,
)
from spaceport.contracts.stages import Stage
from spaceport.contracts.topology import MERGE_PART
from spaceport.ports import CreateResult

# Jobs by status, oldest change first: how the sweeper finds the ones nothing moved for long.
STATUS_INDEX = "by-status"
_FINAL = sorted(FINAL_STATUSES)
_KEEP = object()


def jobs_table_definition(name: str) -> dict[str, Any]:
    """``CreateTable`` arguments for the jobs table (the local runtime and infra use the same)."""
    return {
        "TableName": name,
        "KeySchema": [{"AttributeName": "job_id", "KeyType": "HASH"}],
        "AttributeDefinitions": [
            {"AttributeName": "job_id", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "updated_at", "AttributeType": "S"},
            {"AttributeName": "owner", "AttributeType": "S"},
            {"AttributeName": "share_token_hash", "AttributeType": "S"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": STATUS_INDEX,
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "updated_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": OWNER_INDEX,
                "KeySchema": [
                    {"AttributeName": "owner", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                # Sparse: only shared jobs carry the attribute. The job it finds is read again,
                # consistently, so a token revoked a moment ago is not honoured from a stale index.
                "IndexName": SHARE_INDEX,
                "KeySchema": [{"AttributeName": "share_token_hash", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            },
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


def _without_empty_index_keys(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB refuses an item whose index key is empty or null: such a job stays out of that index."""
    return {key: value for key, value in item.items() if key not in _SPARSE_KEYS or value not in ("", None)}


_SPARSE_KEYS = ("owner", "share_token_hash", "shared_at")
# An integration key's binding shares the jobs table: its key cannot be a job id (no "#" in those),
# and its attributes are named so that no job index picks it up.
_API_KEY = "apikey#"
_API_KEY_OWNER = "key_owner"
_API_KEY_EMAIL = "key_owner_email"


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
        item = _without_empty_index_keys(_to_item(record.model_dump(mode="json")))
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

    def list_by_owner(self, owner: str, limit: int | None = 50, since: datetime | None = None) -> list[JobRecord]:
        """An owner's jobs, newest first: at most ``limit`` (``None``: all), created after ``since`` if given."""
        condition = "#owner = :owner"
        values: dict[str, Any] = {":owner": owner}
        if since is not None:
            condition += " AND created_at > :since"
            # As the record stores it (pydantic's JSON form), so that the comparison is exact.
            values[":since"] = TypeAdapter(datetime).dump_python(since, mode="json")
        arguments: dict[str, Any] = {
            "IndexName": OWNER_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        found: list[JobRecord] = []
        while limit is None or len(found) < limit:
            if limit is not None:
                arguments["Limit"] = limit - len(found)
            answer = self.table.query(**arguments)
            found += [JobRecord.model_validate(_from_item(item)) for item in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                break
            arguments["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return found

    def find_shared(self, token_hash: str) -> JobRecord | None:
        """The job whose share token hashes to ``token_hash``, read consistently; ``None`` when none is."""
        answer = self.table.query(
            IndexName=SHARE_INDEX,
            KeyConditionExpression="share_token_hash = :hash",
            ExpressionAttributeValues={":hash": token_hash},
            Limit=1,
        )
        for item in answer.get("Items", []):
            record = self.get(str(item["job_id"]))
            if record is not None and record.share_token_hash == token_hash:
                return record
        return None

    def set_share_token(self, job_id: str, token_hash: str | None) -> bool:
        """Make ``token_hash`` the job's one share token (replacing any), or with ``None`` revoke it."""
        try:
            if token_hash is None:
                self.table.update_item(
                    Key={"job_id": job_id},
                    UpdateExpression="REMOVE share_token_hash, shared_at",
                    ConditionExpression="attribute_exists(job_id)",
                )
            else:
                self.table.update_item(
                    Key={"job_id": job_id},
                    UpdateExpression="SET share_token_hash = :hash, shared_at = :now",
                    ConditionExpression="attribute_exists(job_id)",
                    ExpressionAttributeValues={":hash": token_hash, ":now": _now()},
                )
        except ClientError as error:
            if is_condition_failed(error):
                return False
            raise
        return True

    def record_operator_action(self, job_id: str, action: OperatorAction) -> None:
        """Append what an operator did to the job's record of operator actions."""
        self.table.update_item(
            Key={"job_id": job_id},
            UpdateExpression="SET operator_actions = list_append(if_not_exists(operator_actions, :none), :action)",
            ConditionExpression="attribute_exists(job_id)",
            ExpressionAttributeValues={":none": [], ":action": [_to_item(action.model_dump(mode="json"))]},
        )

    def bind_api_key(self, key_id: str, owner: str, email: str) -> None:
        """Record that the integration key ``key_id`` acts for ``owner`` (``email``: their verified address)."""
        self.table.put_item(
            Item={_API_KEY_OWNER: owner, _API_KEY_EMAIL: email, "bound_at": _now(), "job_id": _API_KEY + key_id}
        )

    def api_key_binding(self, key_id: str) -> tuple[str, str] | None:
        """``(owner, email)`` the key acts for, or ``None`` for a key bound to no one."""
        item = self.table.get_item(Key={"job_id": _API_KEY + key_id}, ConsistentRead=True).get("Item")
        return (str(item[_API_KEY_OWNER]), str(item[_API_KEY_EMAIL])) if item else None

    def list_unchanged_since(self, status: JobStatus, before: datetime) -> list[JobRecord]:
        """The jobs in ``status`` whose record last changed before ``before``, oldest first."""
        found: list[JobRecord] = []
        arguments: dict[str, Any] = {
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": "#status = :status AND updated_at < :before",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":status": status.value, ":before": before.isoformat()},
        }
        while True:
            answer = self.table.query(**arguments)
            found += [JobRecord.model_validate(_from_item(item)) for item in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                return found
            arguments["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

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
        blocks: BlockRun | None = None,
    ) -> bool:
        """Apply the changes if ``to_position`` is past the job's; ``False`` when it is not.

        ``run_status`` sets the status of one run in the history; ``new_run`` appends a run;
        ``blocks`` replaces the record of the run trained in blocks.
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
        if blocks is not None:
            put("blocks", blocks.model_dump(mode="json"))
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
        # A run that ended stays ended: only a later run moves the job again.
        names.update({"#status": "status", "#run_id": "run_id"})
        values.update({":moving_run": run_of(to_position), **{f":final{i}": s.value for i, s in enumerate(_FINAL)}})
        still_open = f"NOT #status IN ({', '.join(f':final{i}' for i in range(len(_FINAL)))})"
        try:
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=(
                    f"attribute_exists(job_id) AND #position < :position AND ({still_open} OR #run_id <> :moving_run)"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as error_:
            if is_condition_failed(error_):
                return False
            raise
        return True

    def move_part(
        self, job_id: str, run_id: str, part: str, to_position: int, changes: dict[str, Any], count_done: bool = False
    ) -> int | None:
        """Move one part of the run's blocks (a block name, or ``merge``) forward.

        Written only while ``run_id`` is the job's open run and its blocks, and when
        ``to_position`` is past the part's (:func:`~spaceport.contracts.job.part_position`).
        ``count_done`` also adds the part to the run's count of done blocks, once: a part already
        done is not counted again. Returns the count of done blocks after the write, ``None``
        when nothing was written.
        """
        path = "#blocks.#merge" if part == MERGE_PART else "#blocks.#parts.#part"
        names = {
            "#blocks": "blocks",
            "#run_id": "run_id",
            "#status": "status",
            "#position": "position",
            "#updated_at": "updated_at",
            **({"#merge": "merge"} if part == MERGE_PART else {"#parts": "parts", "#part": part}),
        }
        values: dict[str, Any] = {
            ":run": run_id,
            ":position": to_position,
            ":now": _now(),
            **{f":final{i}": s.value for i, s in enumerate(_FINAL)},
        }
        sets = [f"{path}.#position = :position", "#updated_at = :now"]
        for index, (field, value) in enumerate(changes.items()):
            names[f"#f{index}"] = field
            values[f":f{index}"] = value.value if hasattr(value, "value") else value
            sets.append(f"{path}.#f{index} = :f{index}")
        condition = (
            f"#run_id = :run AND #blocks.#run_id = :run AND {path}.#position < :position AND "
            f"NOT #status IN ({', '.join(f':final{i}' for i in range(len(_FINAL)))})"
        )
        if count_done:
            names["#done"] = "done"
            values.update({":done_status": PartStatus.DONE.value, ":one": 1})
            sets.append("#blocks.#done = #blocks.#done + :one")
            condition += f" AND {path}.#status <> :done_status"
        try:
            answer = self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_to_item(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as error_:
            if is_condition_failed(error_):
                return None
            raise
        done = _from_item(answer["Attributes"]).get("blocks", {}).get("done", 0)
        return int(done)

    def claim_notification(self, job_id: str, marker: str, stale_after_s: float) -> bool:
        """Claim the email ``marker`` (``"<run_id>#<outcome>"``) before sending it.

        ``False`` when it was sent, or another invocation claimed it less than ``stale_after_s``
        ago and may still be sending it; a claim older than that belongs to an invocation that
        died before it could confirm, so it is taken over and the email goes out after all.
        """
        now = datetime.now(UTC)
        stale = (now - timedelta(seconds=stale_after_s)).isoformat()
        names = {"#notifications": "notifications", "#marker": marker, "#state": "state", "#since": "since"}
        try:
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="SET #notifications.#marker = :claim",
                ConditionExpression=(
                    "attribute_exists(job_id) AND (attribute_not_exists(#notifications.#marker) OR "
                    "(#notifications.#marker.#state = :sending AND #notifications.#marker.#since < :stale))"
                ),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={
                    ":claim": {"state": NotificationState.SENDING.value, "since": now.isoformat()},
                    ":sending": NotificationState.SENDING.value,
                    ":stale": stale,
                },
            )
        except ClientError as error:
            if is_condition_failed(error):
                return False
            raise
        return True

    def confirm_notification(self, job_id: str, marker: str, message_id: str) -> None:
        """Record that the email ``marker`` went out (SES's ``message_id``)."""
        sent = {"state": NotificationState.SENT.value, "since": _now(), "message_id": message_id}
        self.table.update_item(
            Key={"job_id": job_id},
            UpdateExpression="SET #notifications.#marker = :sent",
            ExpressionAttributeNames={"#notifications": "notifications", "#marker": marker},
            ExpressionAttributeValues={":sent": sent},
        )

    def release_notification(self, job_id: str, marker: str) -> None:
        """Give a claim back after the email could not be sent, so that a retry sends it at once."""
        try:
            self.table.update_item(
                Key={"job_id": job_id},
                UpdateExpression="REMOVE #notifications.#marker",
                ConditionExpression="#notifications.#marker.#state = :sending",
                ExpressionAttributeNames={"#notifications": "notifications", "#marker": marker, "#state": "state"},
                ExpressionAttributeValues={":sending": NotificationState.SENDING.value},
            )
        except ClientError as error:
            if not is_condition_failed(error):
                raise
