"""The generated sample reconstructs, and matches its ground truth."""

import json

import numpy as np
import pycolmap
import pytest

from spaceport_sfm.geo import GeoOrigin

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
    assert len(model.cameras) == 1 and all(camera.model.name == "PINHOLE" for camera in model.cameras.values())
    assert sorted(p.name for p in (sample_sfm / "images").iterdir()) == sorted(
        c.name for c in sample_capture.truth.cameras
    )


def _centres_and_rotations(model, names):
    images = [model.find_image_with_name(name) for name in names]
    centres = np.array([image.projection_center() for image in images])
    rotations = np.array([image.cam_from_world().rotation.matrix() for image in images])
    return centres, rotations


def _angles_deg(a, b):
    """Rotation angle between [N, 3, 3] rotations a and b, degrees."""
    cos = (np.einsum("nij,nij->n", a, b) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def test_poses_match_the_ground_truth_after_a_similarity(sample_sfm, sample_capture):
    truth = sample_capture.truth
    names = [camera.name for camera in truth.cameras]
    model = pycolmap.Reconstruction(sample_sfm / "sparse" / "0")
    centres, _ = _centres_and_rotations(model, names)
    truth_centres = np.stack([camera.centre for camera in truth.cameras])
    truth_from_model = pycolmap.estimate_sim3d(centres, truth_centres)
    model.transform(truth_from_model)
    aligned, rotations = _centres_and_rotations(model, names)
    errors = np.linalg.norm(aligned - truth_centres, axis=1)
    assert errors.max() < 0.01 * truth.scene_extent_m, errors
    angles = _angles_deg(rotations, np.stack([camera.R for camera in truth.cameras]))
    assert angles.max() < 1.0, angles


def test_gps_georeferences_to_metres_with_z_up(sample_sfm, sample_capture):
    report = json.loads((sample_sfm / "report.json").read_text())
    georeference = report["georeference"]
    assert report["gps_used"] and georeference["used"]
    assert georeference["images_with_gps"] == len(sample_capture.truth.cameras)
    origin = GeoOrigin(**georeference["origin"])
    truth = sample_capture.truth
    names = [camera.name for camera in truth.cameras]
    truth_enu = origin.to_enu(np.array([camera.lat_lon_alt for camera in truth.cameras]))
    centres, _ = _centres_and_rotations(pycolmap.Reconstruction(sample_sfm / "sparse" / "0"), names)
    residual = pycolmap.estimate_sim3d(centres, truth_enu)
    assert abs(residual.scale - 1.0) < 0.05
    # Already in ENU: what is left to align is (almost) no rotation, so up is up.
    assert _angles_deg(residual.rotation.matrix()[None], np.eye(3)[None])[0] < 1.0
    assert georeference["rmse_m"] < 0.01 * truth.scene_extent_m


def test_spatial_matching_and_global_mapping(sample_capture, tmp_path):
    from spaceport_sfm.cli import main

    out = tmp_path / "out"
    assert main([str(sample_capture.zip_path), str(out), "--matcher", "spatial", "--mapper", "global"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["matcher"]["name"] == "spatial" and report["mapper"] == "global"
    assert report["images_registered"] == len(sample_capture.truth.cameras)
    assert report["mean_reprojection_error_px"] < 1.0
    assert report["georeference"]["used"] and abs(report["georeference"]["rmse_m"]) < 0.5


def test_photos_of_one_camera_share_one_camera_after_matching(sample_capture, tmp_path):
    from spaceport_sfm.images import read_images
    from spaceport_sfm.reconstruct import (
        PositionPrior,
        extract,
        image_pairs,
        map_images,
        match,
        share_intrinsics,
        write_position_priors,
    )
    from spaceport_sfm.unpack import stage_photos

    staged = stage_photos(sample_capture.zip_path, tmp_path / "images")
    photos, _ = read_images(tmp_path / "images", staged.names, 3200)
    database = tmp_path / "database.db"
    extract(database, tmp_path / "images", photos)
    priors = {photo.name: PositionPrior((float(i), 0.0, 30.0), 3.0, 5.0) for i, photo in enumerate(photos)}
    write_position_priors(database, priors)
    match(database, image_pairs("exhaustive", [photo.name for photo in photos]))
    db = pycolmap.Database.open(database)
    assert db.num_cameras() == len(photos)  # one per photo while matching
    verified_pairs = db.num_verified_image_pairs()
    db.close()

    assert share_intrinsics(database) == 1
    db = pycolmap.Database.open(database)
    try:
        images = db.read_all_images()
        (camera_id,) = {image.camera_id for image in images}
        assert db.read_camera(camera_id).has_prior_focal_length  # the sample's EXIF focal
        for frame in db.read_all_frames():
            assert [d.sensor_id.id for d in frame.data_ids] == [camera_id]
        priors = {prior.corr_data_id.id: prior for prior in db.read_all_pose_priors()}
        assert all(priors[image.image_id].corr_data_id.sensor_id.id == camera_id for image in images)
        assert db.num_verified_image_pairs() == verified_pairs
    finally:
        db.close()
    model = map_images(database, tmp_path / "images", tmp_path / "sparse", "incremental")
    assert model.num_reg_images() == len(photos) and len(model.cameras) == 1
