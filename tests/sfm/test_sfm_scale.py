"""SfM that scales: neighbours by GPS without O(n²), retrieval by a vocabulary tree, the scene summary for planning."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from spaceport.contracts.blocks import SceneSummary
from spaceport_sfm.reconstruct import image_pairs, nearest_neighbours
from spaceport_sfm.summary import ground_axes


@pytest.mark.parametrize("shape", ["flight lines", "a cloud"])
def test_nearest_neighbours_are_the_true_nearest(shape):
    rng = np.random.default_rng(3)
    if shape == "flight lines":  # a mapping flight: lines 30 m apart, shots 8 m apart, altitude wobble
        xyz = np.array([[30.0 * (i // 40), 8.0 * (i % 40), 60 + rng.normal(0, 0.3)] for i in range(400)])
    else:
        xyz = rng.normal(0, 50, (400, 3))
    k = 9
    found = nearest_neighbours(xyz, k)
    for i, neighbours in enumerate(found):
        distances = np.linalg.norm(xyz - xyz[i], axis=1)
        distances[i] = np.inf
        assert len(neighbours) == k and i not in neighbours
        np.testing.assert_allclose(np.sort(distances[neighbours]), np.sort(distances)[:k])


def test_spatial_pairs_grow_with_the_photos_not_their_square():
    names = [f"IMG_{i:04d}.JPG" for i in range(2000)]
    positions = {name: (30.0 * (i // 50), 8.0 * (i % 50), 60.0) for i, name in enumerate(names)}
    pairs = image_pairs("spatial", names, positions, spatial_neighbours=12)
    assert 2000 * 12 / 2 <= len(pairs) <= 2000 * 12
    partners = {b for a, b in pairs if a == "IMG_0000.JPG"}
    assert "IMG_0001.JPG" in partners and "IMG_0050.JPG" in partners and "IMG_1999.JPG" not in partners


def test_the_up_of_a_model_without_georeference_is_found_from_its_cameras():
    from spaceport_sfm.geo import camera_rotation

    # A nadir grid flown back and forth (so the photos' upright edges cancel), in a tilted frame.
    rotations, centres = [], []
    for i in range(30):
        yaw = 0.0 if (i // 6) % 2 == 0 else 180.0
        rotations.append(camera_rotation(-90.0, yaw, 0.0))
        centres.append([10.0 * (i // 6), 8.0 * (i % 6), 40.0])
    tilt = camera_rotation(-70.0, 35.0, 10.0)  # any rotation: the model's frame against the world's
    rotations = np.stack([r @ tilt.T for r in rotations])
    centres = np.stack(centres) @ tilt.T
    axes = ground_axes(rotations, centres)
    np.testing.assert_allclose(axes[2], tilt @ [0.0, 0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(axes @ axes.T, np.eye(3), atol=1e-9)


def test_sfm_leaves_a_scene_summary_that_plans_the_capture(sample_sfm):
    report = json.loads((sample_sfm / "report.json").read_text())
    summary = SceneSummary.model_validate_json((sample_sfm / "scene-summary.json").read_text())
    assert summary.frame == "enu" and len(summary.views) == report["images_registered"]
    assert summary.points == report["points3d"]
    counted = sum(cell[2] for cell in summary.cells)
    assert 0.95 * summary.points <= counted <= summary.points  # all but the far outliers are on the grid
    assert summary.heights[0] < summary.heights[1]
    # The views are the undistorted photos that training reads, not the photos as shot.
    view = summary.views[0]
    with Image.open(sample_sfm / "images" / view.name) as photo:
        assert (view.width, view.height) == photo.size and view.fx > 0


@pytest.mark.slow
def test_a_capture_without_gps_is_matched_by_its_own_vocabulary_tree(sample_capture, tmp_path):
    from spaceport_sfm.job import run_sfm
    from spaceport_sfm.options import SfmOptions

    options = SfmOptions(matcher="vocabtree", mapper="auto", gps_priors=False)
    report = run_sfm(sample_capture.zip_path, tmp_path / "out", options)
    assert report["matcher"]["name"] == "vocabtree" and report["mapper"] == "incremental"
    assert report["images_registered"] >= 11
    assert report["matcher"]["pairs"] <= 12 * 11 // 2
