"""Drone captures with known GPS noise: the dome without GPS in bundle adjustment, and what fixes it.

The generated nadir grid is flown with a lens that has two radial terms (k1, k2). Modelled with
one radial term and no GPS in bundle adjustment, the block bends into a dome (the classic
failure of parallel nadir lines); with the GPS as position priors of its stated accuracy, the
camera centres land within that accuracy of the truth.
"""

from __future__ import annotations

import json

import numpy as np
import pycolmap
import pytest

from spaceport_sfm.cli import main
from spaceport_sfm.geo import GeoOrigin
from spaceport_sfm.sample import SampleOptions, make_sample

pytestmark = pytest.mark.slow

GPS_NOISE_M = 0.05  # RTK-grade GPS, standard deviation per axis
LENS = {"distortion_k1": -0.12, "distortion_k2": 0.10}


@pytest.fixture(scope="module")
def nadir_grid(tmp_path_factory):
    options = SampleOptions(flight="grid", gps_noise_m=GPS_NOISE_M, **LENS)
    return make_sample(tmp_path_factory.mktemp("grid") / "grid.zip", n=24, width=480, height=360, options=options)


def _centres_vs_truth(out, capture):
    """ENU errors [N, 3] of the placed cameras (in the report's frame) against the true centres, and the dome."""
    report = json.loads((out / "report.json").read_text())
    origin = GeoOrigin(**report["georeference"]["origin"])
    model = pycolmap.Reconstruction(out / "sparse" / "0")
    truth = {camera.name: camera for camera in capture.truth.cameras}
    names = sorted(image.name for image in model.images.values())
    centres = np.array([model.find_image_with_name(name).projection_center() for name in names])
    true_enu = origin.to_enu(np.array([truth[name].lat_lon_alt for name in names]))
    errors = centres - true_enu
    # The dome: height error against squared distance from the block's centre, fitted as a parabola.
    r2 = ((true_enu[:, :2] - true_enu[:, :2].mean(axis=0)) ** 2).sum(axis=1)
    slope = np.linalg.lstsq(np.stack([np.ones_like(r2), r2], axis=1), errors[:, 2], rcond=None)[0][1]
    return report, errors, float(slope * r2.max())


def _rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(values**2)))


def test_without_gps_in_bundle_adjustment_the_nadir_grid_domes(nadir_grid, tmp_path):
    out = tmp_path / "out"
    assert main([str(nadir_grid.zip_path), str(out), "--camera-model", "SIMPLE_RADIAL", "--gps-priors", "off"]) == 0
    report, errors, sag = _centres_vs_truth(out, nadir_grid)
    assert report["images_registered"] == 24 and not report["gps"]["priors_in_bundle_adjustment"]
    # Centre and edge of the block differ in height by more than ten times the GPS noise.
    assert abs(sag) > 10 * GPS_NOISE_M, sag
    assert _rms(errors[:, 2]) > 2 * GPS_NOISE_M


def test_with_gps_priors_the_centres_are_within_the_gps_noise_of_the_truth(nadir_grid, tmp_path):
    out = tmp_path / "out"
    accuracy = str(GPS_NOISE_M)
    args = ["--camera-model", "SIMPLE_RADIAL", "--gps-accuracy-m", accuracy, "--gps-vertical-accuracy-m", accuracy]
    assert main([str(nadir_grid.zip_path), str(out), *args]) == 0
    report, errors, sag = _centres_vs_truth(out, nadir_grid)
    assert report["gps"]["priors_in_bundle_adjustment"] and report["georeference"]["used"]
    assert _rms(np.linalg.norm(errors[:, :2], axis=1)) < 2 * GPS_NOISE_M
    assert _rms(errors[:, 2]) < 2 * GPS_NOISE_M
    assert abs(sag) < 5 * GPS_NOISE_M, sag
    # The report's residuals to the (noisy) GPS are the noise itself: about sqrt(2) sigma horizontally.
    georeference = report["georeference"]
    assert georeference["horizontal_rms_m"] < 3 * GPS_NOISE_M and georeference["outliers"] == []
    assert abs(georeference["scale_check"]["distance_ratio"] - 1) < 0.01
    assert [item["name"] for item in georeference["camera_centres"]] == sorted(c.name for c in nadir_grid.truth.cameras)


def test_gps_from_the_flight_log_alone_georeferences(tmp_path):
    options = SampleOptions(gps_in_exif=False, flight_log=True)
    capture = make_sample(tmp_path / "orbit.zip", n=12, width=480, height=360, options=options)
    out = tmp_path / "out"
    assert main([str(capture.zip_path), str(out), "--flight-log", str(capture.flight_log_path)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["gps"]["sources"] == {"flight_log": 12}
    assert report["gps"]["flight_log"]["matched_by"] == "name"
    georeference = report["georeference"]
    assert georeference["used"] and georeference["frame"] == "enu" and georeference["horizontal_rms_m"] < 0.1
