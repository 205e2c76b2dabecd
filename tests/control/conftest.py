"""Fixtures for the control plane's tests: moto in-process, provisioned like the real stack."""

from __future__ import annotations

import pytest
from control_helpers import API_KEY, REGION, World
from moto import mock_aws

from spaceport.adapters import reset_default_ports
from spaceport.adapters.wiring import use_sessions
from spaceport.config import PipelineConfig
from spaceport.contracts.deployment import LOCAL_DEPLOYMENT
from spaceport.contracts.stages import JOB_STAGES
from spaceport.local.aws import answer_like_aws
from spaceport.local.provision import image_uri, job_role_arn

ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "SPACEPORT_API_KEY": API_KEY,
    # The roles and images the local provisioning creates, as the local stack names them.
    **{f"SPACEPORT_{stage.name}_ROLE_ARN": job_role_arn(LOCAL_DEPLOYMENT, stage) for stage in JOB_STAGES},
    **{f"SPACEPORT_{stage.name}_IMAGE": image_uri(LOCAL_DEPLOYMENT, stage, REGION) for stage in JOB_STAGES},
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
        use_sessions(None)


@pytest.fixture
def world(_account):
    _account.reset()
    yield _account
    assert _account.refused() == [], "a unit's own policy refused a call it made"
