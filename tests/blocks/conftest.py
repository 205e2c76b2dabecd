"""Fixtures for the block tests: the control plane's mocked account, with a small budget per training job."""

from __future__ import annotations

import pytest
from control_helpers import REGION, World
from moto import mock_aws

from spaceport.adapters import reset_default_ports
from spaceport.adapters.wiring import use_sessions
from spaceport.config import PipelineConfig
from spaceport.contracts.blocks import SceneSummary, ViewSummary
from spaceport.contracts.deployment import LOCAL_DEPLOYMENT
from spaceport.contracts.stages import JOB_STAGES
from spaceport.local.aws import answer_like_aws
from spaceport.local.provision import image_uri, job_role_arn

ENU = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

# A budget far below a real GPU's, so that a small scene summary splits into several blocks.
BLOCK_MAX_GAUSSIANS = 300_000
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    # Room for the many jobs these tests start as one user.
    "SPACEPORT_MAX_CONCURRENT_JOBS": "1000",
    "SPACEPORT_BLOCK_MAX_GAUSSIANS": str(BLOCK_MAX_GAUSSIANS),
    # The roles and images the local provisioning creates, as the local stack names them.
    **{f"SPACEPORT_{stage.name}_ROLE_ARN": job_role_arn(LOCAL_DEPLOYMENT, stage) for stage in JOB_STAGES},
    **{f"SPACEPORT_{stage.name}_IMAGE": image_uri(LOCAL_DEPLOYMENT, stage, REGION) for stage in JOB_STAGES},
}


@pytest.fixture(scope="module")
def _account():
    """One mocked account per module (the mock must end with the module, as tests/control's does)."""
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


@pytest.fixture(scope="session")
def strip_summary():
    """``strip_summary(length=200, width=40, cameras=40, extra=())``: a scene summary of a long field."""
    return _strip_summary


def _strip_summary(length: float = 200.0, width: float = 40.0, cameras: int = 40, extra=()) -> SceneSummary:
    """A long field of points along u (one cell each 2 m), nadir cameras 30 m up along its middle."""
    down = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0)
    views = [
        ViewSummary(
            name=f"n{i:03d}.jpg",
            centre=(-length / 2 + (i + 0.5) * length / cameras, 0.0, 30.0),
            rotation=down,
            fx=150.0,
            fy=150.0,
            cx=100.0,
            cy=75.0,
            width=200,
            height=150,
        )
        for i in range(cameras)
    ]
    cells = [(i, j, 20, 0.0, 3.0) for i in range(int(length / 2)) for j in range(int(width / 2))]
    return SceneSummary(
        frame="enu",
        axes=ENU,
        views=[*views, *extra],
        cell_size=2.0,
        origin=(-length / 2, -width / 2),
        cells=cells,
        points=sum(c[2] for c in cells),
        heights=(0.0, 3.0),
    )
