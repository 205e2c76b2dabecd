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


@pytest.fixture(scope="session")
def sample_capture(tmp_path_factory):
    """A small generated drone capture: ``.zip_path`` (12 JPEGs, 480x360, GPS EXIF) and ``.truth``.

    The truth (``spaceport_sfm.sample.SampleTruth``) has the ENU origin, the scene extent and,
    per photo, K, world-to-camera R|t (OpenCV axes) and the centre in ENU metres.
    """
    from spaceport_sfm.sample import make_sample

    return make_sample(tmp_path_factory.mktemp("sample") / "sample.zip", n=12, seed=0, width=480, height=360)


@pytest.fixture(scope="session")
def sample_sfm(sample_capture, tmp_path_factory) -> Path:
    """The real ``spaceport sfm`` output folder for ``sample_capture`` (sparse/0, images, report.json)."""
    from spaceport_sfm.cli import main

    out_dir = tmp_path_factory.mktemp("sample_sfm")
    exit_code = main([str(sample_capture.zip_path), str(out_dir)])
    assert exit_code == 0, f"spaceport sfm failed on the sample: {(out_dir / 'report.json').read_text()}"
    return out_dir
