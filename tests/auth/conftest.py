"""The local gateway over HTTP, in front of the real gateway app, on a moto server provisioned like
the local stack (its user pool included), with no workers: what a request leaves behind is all
there is to see. A second user pool and a second app client stand for "another pool" and
"another audience"."""

from __future__ import annotations

import io
import json
import time
import urllib.request
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from moto.utilities.utils import load_resource

from spaceport.adapters import build_ports, reset_default_ports
from spaceport.auth import hash_share_token, new_share_token
from spaceport.config import PipelineConfig
from spaceport.contracts.events import JobOptions
from spaceport.contracts.job import JobRecord, JobStatus, RunRecord
from spaceport.contracts.layout import CompressOutputs
from spaceport.contracts.stages import Stage
from spaceport.integrations import issue_key
from spaceport.local.aws import LocalAws, free_port
from spaceport.local.cognito import LocalUserPool, SignedInUser, create_user_pool, sign_in_user
from spaceport.local.environ import EnvironmentOverlay
from spaceport.local.http_server import GatewayServer, load_chalice_app
from spaceport.local.provision import provision
from spaceport.ports import Ports

REPO = Path(__file__).resolve().parents[2]


def forged(claims: dict[str, Any], key: Any) -> str:
    """An RS256 token of ``claims`` signed with ``key`` under the kid moto's pools publish."""
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "dummy"})


@dataclass
class Harness:
    url: str
    aws: LocalAws
    config: PipelineConfig
    ports: Ports
    pool: LocalUserPool
    owner: SignedInUser
    other: SignedInUser
    operator: SignedInUser
    tokens: dict[str, str] = field(default_factory=dict)
    api_key: str = ""

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        """One request; ``(status, JSON body or {}, headers)``; redirects are not followed."""
        data = json.dumps(body).encode() if body is not None else None

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        opener = urllib.request.build_opener(NoRedirect)
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
        )
        try:
            with opener.open(request, timeout=30) as response:
                status, raw, answer_headers = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            status, raw, answer_headers = error.code, error.read(), dict(error.headers)
        try:
            decoded = json.loads(raw) if raw else {}
        except ValueError:
            decoded = {"raw": raw.decode(errors="replace")}
        return status, decoded, answer_headers

    # --- what a request may leave behind

    def job_count(self) -> int:
        return int(boto3.client("dynamodb").scan(TableName=self.config.jobs_table, Select="COUNT")["Count"])

    def locked_copies(self) -> int:
        answer = boto3.client("s3").list_objects_v2(Bucket=self.config.uploads_bucket, Prefix="jobs/")
        return int(answer["KeyCount"])

    def emails(self) -> int:
        return int(boto3.client("ses").get_send_quota()["SentLast24Hours"])

    def footprint(self) -> tuple[int, int, int]:
        return self.job_count(), self.locked_copies(), self.emails()

    # --- scenes to act on

    def upload(self, user: SignedInUser, name: str = "photos.zip") -> str:
        """A ZIP in ``user``'s own upload folder; returns its key."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("img_00.jpg", b"\xff\xd8\xff" + bytes(64))
        key = f"uploads/{user.sub}/{time.monotonic_ns()}/{name}"
        boto3.client("s3").put_object(Bucket=self.config.uploads_bucket, Key=key, Body=buffer.getvalue())
        return key

    def job(self, user: SignedInUser, status: JobStatus = JobStatus.QUEUED, shared: bool = False) -> tuple[str, str]:
        """A job of ``user``: a finished one has a compressed scene (and a streamed one);
        returns ``(job id, share token)`` (the token works only when ``shared``)."""
        job_id = f"{time.monotonic_ns():x}"[-16:]
        prefix = self.config.layout.run_prefix(Stage.COMPRESS, job_id, "r1")
        artifacts = {}
        if status is not JobStatus.QUEUED:
            artifacts = {"compress": prefix, "sog": prefix + CompressOutputs.SCENE, "sfm": "s3://x/"}
            for name in (CompressOutputs.SCENE, CompressOutputs.STREAMED, "lod/0_0/meta.json"):
                self.ports.objects.put_bytes(prefix + name, b"scene file " + name.encode())
        token = new_share_token()
        record = JobRecord(
            job_id=job_id,
            email=user.email,
            owner=user.sub,
            status=status,
            input_uri=f"s3://{self.config.uploads_bucket}/jobs/{job_id}/v/photos.zip",
            artifacts=artifacts,
            summary={"train_psnr": 25.0, "sfm_images_used": 3},
            runs=[
                RunRecord(
                    run_id="r1", from_stage=Stage.SFM, options=JobOptions(), started_at=datetime.now(UTC), status=status
                )
            ],
            share_token_hash=hash_share_token(token) if shared else None,
        )
        self.ports.store.create(record)
        return job_id, token


@pytest.fixture(scope="module")
def harness() -> Any:
    overlay = EnvironmentOverlay()
    port = free_port()
    with LocalAws() as aws:
        overlay.set(
            {
                "SPACEPORT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                "SPACEPORT_MAX_UPLOAD_BYTES": str(64 * 1024),
                "SPACEPORT_MAX_CONCURRENT_JOBS": "1000",
            }
        )
        reset_default_ports()
        resources = provision(PipelineConfig.from_env())
        overlay.set(resources.environment())
        reset_default_ports()
        config = PipelineConfig.from_env()
        assert resources.user_pool is not None
        pool = resources.user_pool
        app = load_chalice_app(REPO / "gateway" / "app.py", "auth_matrix_gateway")
        server = GatewayServer(app, port).start()
        try:
            owner = sign_in_user(pool, "owner@example.com")
            h = Harness(
                url=server.base_url,
                aws=aws,
                config=config,
                ports=build_ports(config),
                pool=pool,
                owner=owner,
                other=sign_in_user(pool, "other@example.com"),
                operator=sign_in_user(pool, "ops@example.com", operator=True),
            )
            now = int(time.time())
            claims = jwt.decode(owner.id_token, options={"verify_signature": False})
            pool_key = jwt.PyJWK(load_resource("cognitoidp/resources/jwks-private.json")).key
            stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            elsewhere = create_user_pool("another-pool", "operators")
            cognito = boto3.client("cognito-idp")
            other_client = cognito.create_user_pool_client(
                UserPoolId=pool.pool_id, ClientName="another-app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
            )["UserPoolClient"]["ClientId"]
            revoked = new_share_token()
            h.tokens = {
                "expired": forged({**claims, "iat": now - 7200, "exp": now - 3600}, pool_key),
                "wrong key": forged(claims, stranger),
                "other pool": sign_in_user(elsewhere, "owner@example.com").id_token,
                "other audience": sign_in_user(
                    LocalUserPool(pool.pool_id, other_client, pool.arn, pool.operators_group), "owner@example.com"
                ).id_token,
                "revoked share": revoked,
            }
            h.tokens["share"] = h.job(owner, JobStatus.SUCCEEDED, shared=True)[1]
            plan = resources.integration_usage_plan_id
            h.api_key = issue_key(
                boto3.client("apigateway"), cognito, h.ports, plan, pool.pool_id, owner.email, "backend"
            ).value
            yield h
        finally:
            server.stop()
            overlay.restore()
            reset_default_ports()
