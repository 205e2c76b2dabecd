"""Objects in S3: the few reads, writes and presigned links the control plane needs.

Example::

    objects = S3Objects(boto3.client("s3"))
    head = objects.head("s3://spaceport-uploads/u/photos.zip")   # None when missing
    report = objects.read_json("s3://spaceport-sfm/j1/r1/report.json")
    link = objects.presign_get("s3://spaceport-compressed/j1/r1/scene.sog", expires_s=3600)
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode

_MISSING = ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


class BadS3UriError(SpaceportError):
    code = "bad_s3_uri"
    exit_code = ExitCode.BAD_S3_URI


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        """``s3://bucket/key`` -> its parts; anything else is refused."""
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise BadS3UriError(f"{uri!r} is not an s3://bucket/key address.")
        return cls(parsed.netloc, parsed.path.lstrip("/"))

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def child(self, name: str) -> S3Location:
        prefix = self.key if not self.key or self.key.endswith("/") else self.key + "/"
        return S3Location(self.bucket, prefix + name)


@dataclass(frozen=True)
class ObjectHead:
    size: int
    content_type: str | None


def _is_missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _MISSING


class _ForwardOnly(io.RawIOBase):
    """A stream read front to back. A member of a streamed ``.tar.gz`` claims to seek but
    cannot; saying so makes boto3 upload it in parts as it reads, instead of seeking."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class S3Objects:
    """The S3 adapter (an ``ObjectStore``). ``client`` is a boto3 S3 client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def head(self, uri: str) -> ObjectHead | None:
        where = S3Location.parse(uri)
        try:
            answer = self.client.head_object(Bucket=where.bucket, Key=where.key)
        except ClientError as error:
            if _is_missing(error):
                return None
            raise
        return ObjectHead(int(answer["ContentLength"]), answer.get("ContentType"))

    def read_prefix(self, uri: str, length: int) -> bytes:
        """The first ``length`` bytes of an object (e.g. its magic number)."""
        where = S3Location.parse(uri)
        answer = self.client.get_object(Bucket=where.bucket, Key=where.key, Range=f"bytes=0-{length - 1}")
        return answer["Body"].read()

    def read_json(self, uri: str) -> dict[str, Any] | None:
        """A JSON object, or ``None`` when there is none at ``uri``."""
        where = S3Location.parse(uri)
        try:
            answer = self.client.get_object(Bucket=where.bucket, Key=where.key)
        except ClientError as error:
            if _is_missing(error):
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
            if _is_missing(error):
                return False
            raise
        return answer.get("KeyCount", 0) > 0

    def extract_from_tar(self, uri: str, members: dict[str, str]) -> dict[str, str]:
        """Copy the files of a ``.tar.gz`` named in ``members`` (file name -> destination URI).

        Streams the archive (a trained model can be hundreds of MB), matching members by file
        name whatever folder they sit in. Returns file name -> destination for those found.
        """
        where = S3Location.parse(uri)
        try:
            body = self.client.get_object(Bucket=where.bucket, Key=where.key)["Body"]
        except ClientError as error:
            if _is_missing(error):
                return {}
            raise
        found: dict[str, str] = {}
        with tarfile.open(fileobj=body, mode="r|gz") as archive:
            for member in archive:
                name = member.name.rsplit("/", 1)[-1]
                if not member.isfile() or name not in members or name in found:
                    continue
                target = S3Location.parse(members[name])
                # Straight from the archive to a multipart upload, a part at a time: neither the
                # Lambda's memory nor its /tmp has to hold a member of hundreds of MB.
                self.client.upload_fileobj(_ForwardOnly(archive.extractfile(member)), target.bucket, target.key)
                found[name] = members[name]
                if len(found) == len(members):
                    break
        return found

    def read_json_from_tar(self, uri: str, name: str) -> dict[str, Any] | None:
        """A small JSON file inside a ``.tar.gz`` (e.g. ``metrics.json`` in ``output.tar.gz``)."""
        where = S3Location.parse(uri)
        try:
            data = self.client.get_object(Bucket=where.bucket, Key=where.key)["Body"].read()
        except ClientError as error:
            if _is_missing(error):
                return None
            raise
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
                for member in archive.getmembers():
                    if member.isfile() and member.name.rsplit("/", 1)[-1] == name:
                        value = json.loads(archive.extractfile(member).read())
                        return value if isinstance(value, dict) else None
        except (tarfile.TarError, ValueError, OSError):
            return None
        return None

    def presign_get(self, uri: str, expires_s: int, filename: str | None = None) -> str:
        where = S3Location.parse(uri)
        params: dict[str, str] = {"Bucket": where.bucket, "Key": where.key}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)

    def presign_put(self, uri: str, expires_s: int) -> str:
        """A URL a browser can PUT the object to (any Content-Type) until it expires."""
        where = S3Location.parse(uri)
        return self.client.generate_presigned_url(
            "put_object",
            Params={"Bucket": where.bucket, "Key": where.key},
            ExpiresIn=expires_s,
        )
