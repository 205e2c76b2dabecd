"""Fixtures for the control plane's tests: moto in-process, provisioned like the real stack."""

from __future__ import annotations

import pytest
from control_helpers import REGION, World
from moto import mock_aws

from spaceport.adapters import reset_default_ports
from spaceport.config import PipelineConfig
from spaceport.local.aws import answer_like_aws

ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    # Room for the many jobs these tests start as one user (the limits' own tests set theirs).
    "SPACEPORT_MAX_CONCURRENT_JOBS": "1000",
    "SPACEPORT_SFM_ROLE_ARN": "arn:aws:iam::123456789012:role/spaceport-sfm-job",
    "SPACEPORT_TRAIN_ROLE_ARN": "arn:aws:iam::123456789012:role/spaceport-train-job",
    "SPACEPORT_COMPRESS_ROLE_ARN": "arn:aws:iam::123456789012:role/spaceport-compress-job",
    "SPACEPORT_SFM_IMAGE": "123456789012.dkr.ecr.us-east-1.amazonaws.com/spaceport-sfm:1",
    "SPACEPORT_TRAIN_IMAGE": "123456789012.dkr.ecr.us-east-1.amazonaws.com/spaceport-train:1",
    "SPACEPORT_COMPRESS_IMAGE": "123456789012.dkr.ecr.us-east-1.amazonaws.com/spaceport-compress:1",
    "SPACEPORT_MAX_UPLOAD_BYTES": str(64 * 1024),
    "SPACEPORT_PUBLIC_BASE_URL": "https://spaceport.example.com",
}


# Module scope, not session (or package, which is session-wide for a folder without
# __init__.py): the mock and these variables must end with each module, or they leak into the
# local-runtime and browser tests that run later in the same process.
@pytest.fixture(scope="module")
def _account():
    """One mocked account for these tests (provisioning it takes seconds); tests get it wiped."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("AWS_ENDPOINT_URL", raising=False)
        for name, value in ENV.items():
            patch.setenv(name, value)
        reset_default_ports()
        answer_like_aws()
        with mock_aws():
            yield World(PipelineConfig.from_env())
        reset_default_ports()


@pytest.fixture
def world(_account) -> World:
    _account.reset()
    return _account
