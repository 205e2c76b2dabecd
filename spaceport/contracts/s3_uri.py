"""``s3://bucket/key`` addresses, parsed and built (no AWS call).

>>> where = S3Location.parse("s3://spaceport-sfm/0a1b/r1/")
>>> where.bucket, where.key, where.child("sparse/0").uri
('spaceport-sfm', '0a1b/r1/', 's3://spaceport-sfm/0a1b/r1/sparse/0')
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode


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
