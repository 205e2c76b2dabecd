"""Shared fixtures. The shared datasets are found through ``SPACEPORT_DATASETS``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The shared real photo sets and splats; skips the test when they are not available."""
    value = os.environ.get("SPACEPORT_DATASETS")
    if not value:
        pytest.skip("SPACEPORT_DATASETS is not set: the shared photo sets and splats are not available")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"SPACEPORT_DATASETS={value} is not a folder")
    return path
