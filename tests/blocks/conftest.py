"""Fixtures for the block tests: the control plane's mocked account, with a small budget per training job."""

from __future__ import annotations

import pytest
from control_helpers import ENV, World, fresh_world, mocked_account

from spaceport.contracts.blocks import SceneSummary, ViewSummary

ENU = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))

# A budget far below a real GPU's, so that a small scene summary splits into several blocks.
BLOCK_MAX_GAUSSIANS = 300_000


@pytest.fixture(scope="module")
def _account():
    """One mocked account per module, with the small budget."""
    yield from mocked_account({**ENV, "SPACEPORT_BLOCK_MAX_GAUSSIANS": str(BLOCK_MAX_GAUSSIANS)})


@pytest.fixture
def world(_account: World):
    yield from fresh_world(_account)


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
