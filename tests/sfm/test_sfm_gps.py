"""Every source of GPS (EXIF, DJI XMP, the flight-log CSV), the pairs to match, and the processing inputs.

No reconstruction: generated photos are only read, and logs are matched to them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from spaceport_sfm.cli import FLIGHT_LOG_INPUT, PHOTOS_INPUT, main, processing_flight_log, processing_input
from spaceport_sfm.errors import BadFlightLogError
from spaceport_sfm.geo import camera_rotation, gimbal_angles
from spaceport_sfm.gps import GpsAccuracy, PhotoMeta, locate_photos, parse_flight_log, read_flight_log
from spaceport_sfm.images import read_images
from spaceport_sfm.reconstruct import image_pairs
from spaceport_sfm.sample import SampleOptions, make_sample
from spaceport_sfm.unpack import stage_photos

ACCURACY = GpsAccuracy(3.0, 5.0)


@pytest.fixture(scope="module")
def xmp_capture(tmp_path_factory):
    """A small nadir grid whose GPS is only in DJI-style XMP and a flight log (none in EXIF)."""
    options = SampleOptions(flight="grid", xmp=True, gps_in_exif=False, flight_log=True, gps_noise_m=1.0)
    return make_sample(tmp_path_factory.mktemp("xmp") / "grid.zip", n=6, width=120, height=90, options=options)


def _angle_between(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _read(capture, tmp_path):
    staged = stage_photos(capture.zip_path, tmp_path / "images")
    photos, unreadable = read_images(tmp_path / "images", staged.names, 3200)
    assert unreadable == []
    return photos


def test_dji_xmp_of_generated_photos_is_read(xmp_capture, tmp_path):
    photos = _read(xmp_capture, tmp_path)
    truth = {camera.name: camera for camera in xmp_capture.truth.cameras}
    for photo in photos:
        camera = truth[photo.name]
        assert photo.gps is None and photo.xmp is not None
        np.testing.assert_allclose(photo.xmp.gps, camera.gps, atol=1e-7)
        assert photo.xmp.relative_altitude == pytest.approx(camera.centre[2], abs=1e-6)
        pitch, yaw, roll = camera.gimbal
        assert (photo.xmp.gimbal_pitch, photo.xmp.gimbal_roll) == (pytest.approx(pitch), pytest.approx(roll))
        assert _angle_between(photo.xmp.gimbal_yaw, yaw) < 1e-6
    located = locate_photos([photo.meta() for photo in photos], None, ACCURACY)
    assert located.sources == {"xmp": 6}
    assert all(position.gimbal is not None for position in located.positions.values())


def test_gimbal_angles_round_trip_and_point_the_camera():
    for pitch, yaw, roll in [(-90.0, 0.0, 0.0), (-45.0, 200.0, 3.0), (-10.0, 359.0, -8.0)]:
        R = camera_rotation(pitch, yaw, roll)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        back = gimbal_angles(R)
        assert back[0] == pytest.approx(pitch) and back[2] == pytest.approx(roll)
        assert _angle_between(back[1], yaw) < 1e-9
    forward = camera_rotation(-30.0, 90.0, 0.0)[2]  # looking east, 30 degrees down
    np.testing.assert_allclose(forward, [np.cos(np.radians(30)), 0.0, -0.5], atol=1e-12)


def test_flight_log_written_with_the_sample_positions_the_photos_by_name(xmp_capture, tmp_path):
    photos = [PhotoMeta(photo.name, None, None, photo.taken_at) for photo in _read(xmp_capture, tmp_path)]
    log = read_flight_log(xmp_capture.flight_log_path)
    located = locate_photos(photos, log, ACCURACY)
    assert located.sources == {"flight_log": 6}
    assert located.flight_log is not None and located.flight_log["matched_by"] == "name"
    for camera in xmp_capture.truth.cameras:
        # The log has 9 decimals of a degree and millimetres of altitude.
        lat_lon_alt = located.positions[camera.name].lat_lon_alt
        np.testing.assert_allclose(lat_lon_alt[:2], camera.gps[:2], rtol=0, atol=1e-8)
        assert lat_lon_alt[2] == pytest.approx(camera.gps[2], abs=1e-3)


def _timed_photos(n: int, start: datetime) -> list[PhotoMeta]:
    return [PhotoMeta(f"IMG_{i:04d}.JPG", None, None, start + timedelta(seconds=2 * i)) for i in range(n)]


def test_flight_log_by_time_interpolates_and_finds_the_time_zone():
    start = datetime(2026, 6, 1, 10, 0, 0)  # the camera's clock: local time, UTC+2
    rows = ["time,latitude,longitude,altitude"]
    for tick in range(0, 20):  # a 1 Hz log in UTC, moving 1e-5 degrees of latitude per second
        moment = start - timedelta(hours=2) + timedelta(seconds=tick)
        rows.append(f"{moment.isoformat()}Z,{47.0 + tick * 1e-5:.6f},8.0,{500 + tick}")
    log = parse_flight_log("\n".join(rows) + "\n")
    photos = [PhotoMeta(p.name, None, None, p.taken_at + timedelta(seconds=0.5)) for p in _timed_photos(5, start)]
    located = locate_photos(photos, log, ACCURACY)
    assert located.flight_log is not None
    assert located.flight_log["matched_by"] == "time" and located.flight_log["clock_offset_s"] == -7200.0
    for i, photo in enumerate(photos):
        lat, _, alt = located.positions[photo.name].lat_lon_alt
        assert lat == pytest.approx(47.0 + (2 * i + 0.5) * 1e-5) and alt == pytest.approx(500 + 2 * i + 0.5)


def test_flight_log_without_header_and_with_semicolons():
    log = parse_flight_log("IMG_0000.JPG;47.1;8.2;480\nIMG_0001.JPG;47.1001;8.2;481\n")
    assert [row.name for row in log.rows] == ["IMG_0000.JPG", "IMG_0001.JPG"] and log.rows[1].alt == 481


def test_a_log_that_disagrees_with_the_photo_gps_is_ignored_with_a_note():
    log = parse_flight_log("name,lat,lon,alt\nIMG_0000.JPG,47.0,8.0,500\nIMG_0001.JPG,47.0,8.0005,500\n")
    own = (47.0, 8.0, 500.0)
    photos = [PhotoMeta("IMG_0000.JPG", own, None, None), PhotoMeta("IMG_0001.JPG", own, None, None)]
    located = locate_photos(photos, log, ACCURACY)  # the second row is 38 m east of its photo's GPS
    assert {name: p.lat_lon_alt for name, p in located.positions.items()} == {"IMG_0000.JPG": own, "IMG_0001.JPG": own}
    assert located.flight_log is not None
    assert [item["name"] for item in located.flight_log["ignored_where_photos_have_gps"]] == ["IMG_0001.JPG"]
    assert "disagrees" in located.flight_log["note"]


@pytest.mark.parametrize(
    "text",
    ["", "name,when\nIMG_0000.JPG,10:00\n", "lat,lon,alt\n47.1,8.2,80\n", "name,lat,lon\nIMG_0000.JPG,91,8.2\n"],
)
def test_unusable_flight_logs_are_named_errors(text):
    with pytest.raises(BadFlightLogError):
        parse_flight_log(text)


def test_pairs_of_each_matcher():
    names = [f"IMG_{i:03d}.JPG" for i in range(40)]
    exhaustive = image_pairs("exhaustive", names)
    assert len(exhaustive) == len(set(exhaustive)) == 40 * 39 // 2
    positions = {name: (float(i % 8) * 10, float(i // 8) * 10, 30.0) for i, name in enumerate(names[:-2])}
    spatial = image_pairs("spatial", names, positions, spatial_neighbours=6)
    assert all(a < b for a, b in spatial) and len(spatial) == len(set(spatial))
    partners = {name: {b if a == name else a for a, b in spatial if name in (a, b)} for name in names}
    # Neighbours by GPS: IMG_000 (0, 0) pairs with (10, 0) and (0, 10), not with (70, 40).
    assert {"IMG_001.JPG", "IMG_008.JPG"} <= partners["IMG_000.JPG"] and "IMG_037.JPG" not in partners["IMG_000.JPG"]
    assert "IMG_037.JPG" in partners["IMG_039.JPG"]  # no GPS: neighbours by name
    many = [f"IMG_{i:03d}.JPG" for i in range(200)]
    sequential = image_pairs("sequential", many, sequential_overlap=3)
    assert ("IMG_000.JPG", "IMG_001.JPG") in sequential and ("IMG_000.JPG", "IMG_008.JPG") in sequential
    assert ("IMG_000.JPG", "IMG_005.JPG") not in sequential and len(sequential) < 200 * 199 // 2 / 10


def test_processing_inputs_with_and_without_a_flight_log(tmp_path):
    single = tmp_path / "single"
    single.mkdir()
    (single / "upload.zip").write_bytes(b"PK\x03\x04")
    assert processing_input(single) == single / "upload.zip" and processing_flight_log(single) is None
    both = tmp_path / "both"
    (both / PHOTOS_INPUT).mkdir(parents=True)
    (both / FLIGHT_LOG_INPUT).mkdir()
    (both / PHOTOS_INPUT / "upload.zip").write_bytes(b"PK\x03\x04")
    (both / FLIGHT_LOG_INPUT / "flight-plan.csv").write_text("name,lat,lon,alt\n")
    assert processing_input(both) == both / PHOTOS_INPUT / "upload.zip"
    assert processing_flight_log(both) == both / FLIGHT_LOG_INPUT / "flight-plan.csv"


def test_a_named_flight_log_that_is_missing_is_an_error(sample_capture, tmp_path, capsys):
    assert main([str(sample_capture.zip_path), str(tmp_path / "out"), "--flight-log", str(tmp_path / "no.csv")]) == 20
    assert "No flight log" in capsys.readouterr().err
