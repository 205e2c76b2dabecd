"""Real photo sets (``SPACEPORT_DATASETS``): every image is placed."""

from __future__ import annotations

import json

import pytest

from spaceport_sfm.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.datasets]


@pytest.mark.parametrize(
    "photo_set, count",
    [("llff_fern/images_8", 20), ("middlebury_temple_ring/images", 47)],
)
def test_real_photo_sets_register_every_image(datasets_dir, tmp_path, photo_set, count):
    photos = datasets_dir / photo_set
    if not photos.is_dir():
        pytest.skip(f"{photos} is missing from SPACEPORT_DATASETS")
    assert main([str(photos), str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["images_found"] == report["images_registered"] == count
    assert report["unregistered"] == []
    assert report["mean_reprojection_error_px"] < 1.0
    assert report["georeference"] == {"used": False, "reason": "no photo has GPS", "images_with_gps": 0}
    assert len(list((tmp_path / "out" / "images").iterdir())) == count
