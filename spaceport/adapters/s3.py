"""Objects in S3: the few reads, writes and presigned links the control plane needs.

>>> import boto3, moto
>>> with moto.mock_aws():
...     client = boto3.client("s3", region_name="us-east-1")
...     _ = client.create_bucket(Bucket="photos")
...     objects = S3Objects(client)
...     objects.put_bytes("s3://photos/a/answer.json", b'{"ok": true}', "application/json")
...     objects.read_json("s3://photos/a/answer.json"), objects.head("s3://photos/a/missing.zip")
({'ok': True}, None)
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from spaceport.adapters.aws_errors import is_not_found
from spaceport.contracts.s3_uri import S3Location
from spaceport.ports import ObjectHead, PresignedPost


def _precondition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412")


class S3Objects:
    """The S3 adapter (an ``ObjectStore``). ``client`` is a boto3 S3 client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def head(self, uri: str) -> ObjectHead | None:
        where = S3Location.parse(uri)
        try:
            answer = self.client.head_object(Bucket=where.bucket, Key=where.key)
        except ClientError as error:
            if is_not_found(error):
                return None
            raise
        return ObjectHead(int(answer["ContentLength"]), answer.get("ContentType"), answer.get("ETag"))

    def read_prefix(self, uri: str, length: int, etag: str | None = None) -> bytes:
        """The first ``length`` bytes of an object (e.g. its magic number); of version ``etag`` when given
        (empty when the object changed since)."""
        where = S3Location.parse(uri)
        extra = {"IfMatch": etag} if etag else {}
        try:
            answer = self.client.get_object(Bucket=where.bucket, Key=where.key, Range=f"bytes=0-{length - 1}", **extra)
        except ClientError as error:
            if _precondition_failed(error):
                return b""
            raise
        data: bytes = answer["Body"].read()
        return data

    def copy(self, source: str, destination: str, etag: str) -> bool:
        """Copy ``source`` to ``destination`` if ``source`` is still version ``etag``; ``False`` when it changed.

        The copy's own ETag is compared too: a single-part object's ETag is its MD5 under S3's own
        encryption, so the copy of the same bytes has the same one (and moto, which ignores
        ``CopySourceIfMatch``, is held to it as well).
        """
        origin, target = S3Location.parse(source), S3Location.parse(destination)
        try:
            answer = self.client.copy_object(
                Bucket=target.bucket,
                Key=target.key,
                CopySource={"Bucket": origin.bucket, "Key": origin.key},
                CopySourceIfMatch=etag,
            )
        except ClientError as error:
            if _precondition_failed(error) or is_not_found(error):
                return False
            raise
        return bool(answer.get("CopyObjectResult", {}).get("ETag") == etag)

    def read_json(self, uri: str) -> dict[str, Any] | None:
        """A JSON object, or ``None`` when there is none at ``uri``."""
        where = S3Location.parse(uri)
        try:
            answer = self.client.get_object(Bucket=where.bucket, Key=where.key)
        except ClientError as error:
            if is_not_found(error):
                return None
            raise
        try:
            value = json.loads(answer["Body"].read())
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def put_bytes(self, uri: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        where = S3Location.parse(uri)
        self.client.put_object(Bucket=where.bucket, Key=where.key, Body=data, ContentType=content_type)

    def has_prefix(self, uri: str) -> bool:
        """Whether any object lies under ``uri`` (a folder-like prefix)."""
        where = S3Location.parse(uri)
        try:
            answer = self.client.list_objects_v2(Bucket=where.bucket, Prefix=where.key, MaxKeys=1)
        except ClientError as error:
            if is_not_found(error):
                return False
            raise
        return int(answer.get("KeyCount", 0)) > 0

    def presign_get(self, uri: str, expires_s: int, filename: str | None = None) -> str:
        where = S3Location.parse(uri)
        params: dict[str, str] = {"Bucket": where.bucket, "Key": where.key}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s))

    def presign_post(self, uri: str, expires_s: int, max_bytes: int, content_type: str) -> PresignedPost:
        """A form that uploads exactly this key, of ``content_type``, of 1 to ``max_bytes`` bytes (S3 checks)."""
        where = S3Location.parse(uri)
        answer = self.client.generate_presigned_post(
            Bucket=where.bucket,
            Key=where.key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, max_bytes]],
            ExpiresIn=expires_s,
        )
        return PresignedPost(str(answer["url"]), {str(k): str(v) for k, v in answer["fields"].items()})

    def presign_put(self, uri: str, expires_s: int) -> str:
        """A URL a browser can PUT the object to (any Content-Type) until it expires."""
        where = S3Location.parse(uri)
        return str(
            self.client.generate_presigned_url(
                "put_object",
                Params={"Bucket": where.bucket, "Key": where.key},
                ExpiresIn=expires_s,
            )
        )
