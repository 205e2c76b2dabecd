"""Fixtures for the block tests: the control plane's mocked account, with a small budget per training job."""

from __future__ import annotations

import pytest
from control_helpers import API_KEY, REGION, World
from moto import mock_aws

from spaceport.adapters import reset_default_ports
from spaceport.config import PipelineConfig
from spaceport.contracts.blocks import SceneSummary, ViewSummary
from spaceport.local.aws import answer_like_aws

ENU = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

# A budget far below a real GPU's, so that a small scene summary splits into several blocks.
BLOCK_MAX_GAUSSIANS = 300_000
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "SPACEPORT_API_KEY": API_KEY,
    "SPACEPORT_BLOCK_MAX_GAUSSIANS": str(BLOCK_MAX_GAUSSIANS),
    **{
        f"SPACEPORT_{stage}_ROLE_ARN": f"arn:aws:iam::123456789012:role/spaceport-{stage.lower()}-job"
        for stage in ("SFM", "TRAIN", "COMPRESS")
    },
    **{
        f"SPACEPORT_{stage}_IMAGE": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/spaceport-{stage.lower()}:1"
        for stage in ("SFM", "TRAIN", "COMPRESS")
    },
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
        reset_default_ports()


@pytest.fixture
def world(_account) -> World:
    _account.reset()
    return _account


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
