"""The generated sample reconstructs, and matches its ground truth."""

import json

import numpy as np
import pycolmap
import pytest

pytestmark = pytest.mark.slow


def test_every_sample_photo_is_placed_accurately(sample_sfm, sample_capture):
    report = json.loads((sample_sfm / "report.json").read_text())
    n = len(sample_capture.truth.cameras)
    assert report["status"] == "succeeded"
    assert report["images_found"] == report["images_used"] == report["images_registered"] == n
    assert report["unregistered"] == []
    assert report["mean_reprojection_error_px"] < 1.0
    model = pycolmap.Reconstruction(sample_sfm / "sparse" / "0")
    assert model.num_reg_images() == n
    assert all(camera.model.name == "PINHOLE" for camera in model.cameras.values())
    assert sorted(p.name for p in (sample_sfm / "images").iterdir()) == sorted(c.name for c in sample_capture.truth.cameras)
