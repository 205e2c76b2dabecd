"""What a boto3 ``ClientError`` says, read the same way by every adapter.

>>> from botocore.exceptions import ClientError
>>> missing = ClientError({"Error": {"Code": "NoSuchKey", "Message": "gone"}}, "GetObject")
>>> error_code(missing), is_not_found(missing), is_condition_failed(missing)
('NoSuchKey', True, False)
"""

from __future__ import annotations

from botocore.exceptions import ClientError

# The codes S3 (and HEAD requests, which carry no body) answer for an object or bucket that is not there.
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound", "NoSuchBucket"})


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_not_found(error: ClientError) -> bool:
    return error_code(error) in NOT_FOUND_CODES


def is_condition_failed(error: ClientError) -> bool:
    """DynamoDB refused a conditional write because its condition did not hold."""
    return error_code(error) == "ConditionalCheckFailedException"
