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
    assert report["georeference"] == {"used": False, "reason": "no photo has GPS", "images_with_gps": 0, "frame": "sfm"}
    assert len(list((tmp_path / "out" / "images").iterdir())) == count


SENECA_PHOTOS = 8  # consecutive photos of one flight line: enough to georeference, quick to match
SENECA_FIRST = 15  # IMG_0461: the first photos of the set include some that do not match (take-off)


def _seneca_copies(datasets_dir, folder, keep_gps: bool) -> list[tuple[str, tuple[float, float, float]]]:
    """Copies of the first seneca_drone photos, re-encoded alike (pixels identical), with or without GPS."""
    from PIL import ExifTags, Image

    from spaceport_sfm.exif import read_exif

    folder_in = datasets_dir / "seneca_drone" / "images"
    photos = sorted(p for p in folder_in.glob("*") if p.suffix.lower() in (".jpg", ".jpeg"))
    photos = photos[SENECA_FIRST : SENECA_FIRST + SENECA_PHOTOS]
    if len(photos) < SENECA_PHOTOS:
        pytest.skip("seneca_drone is missing from SPACEPORT_DATASETS")
    folder.mkdir()
    positions = []
    for path in photos:
        with Image.open(path) as image:
            exif = image.getexif()
            gps = read_exif(image).gps
            assert gps is not None
            positions.append((path.name, gps))
            if not keep_gps:
                del exif[ExifTags.IFD.GPSInfo]
            image.save(folder / path.name, quality="keep", exif=exif)
    return positions


def test_seneca_gps_from_a_flight_log_georeferences_as_the_exif_does(datasets_dir, tmp_path):
    with_exif = tmp_path / "exif"
    positions = _seneca_copies(datasets_dir, with_exif, keep_gps=True)
    _seneca_copies(datasets_dir, tmp_path / "stripped", keep_gps=False)
    log = tmp_path / "flight.csv"
    log.write_text("name,lat,lon,alt\n" + "".join(f"{n},{a:.9f},{o:.9f},{h:.3f}\n" for n, (a, o, h) in positions))
    common = ["--max-image-size", "1200", "--matcher", "exhaustive"]
    assert main([str(with_exif), str(tmp_path / "out_exif"), *common]) == 0
    assert main([str(tmp_path / "stripped"), str(tmp_path / "out_log"), *common, "--flight-log", str(log)]) == 0
    from_exif = json.loads((tmp_path / "out_exif" / "report.json").read_text())
    from_log = json.loads((tmp_path / "out_log" / "report.json").read_text())
    assert from_exif["gps"]["sources"] == {"exif": SENECA_PHOTOS}
    assert from_log["gps"]["sources"] == {"flight_log": SENECA_PHOTOS}
    a, b = from_exif["georeference"], from_log["georeference"]
    assert a["used"] and b["used"], (a["reason"], b["reason"])
    for key, tolerance in (("lat", 1e-7), ("lon", 1e-7), ("alt", 1e-3)):  # the log's 9 decimals and millimetres
        assert a["origin"][key] == pytest.approx(b["origin"][key], abs=tolerance)
    centres_a = {c["name"]: c["enu"] for c in a["camera_centres"]}
    centres_b = {c["name"]: c["enu"] for c in b["camera_centres"]}
    assert centres_a.keys() == centres_b.keys() and len(centres_a) >= 3
    for name, centre in centres_a.items():
        assert centre == pytest.approx(centres_b[name], abs=0.25), name
    assert a["horizontal_rms_m"] == pytest.approx(b["horizontal_rms_m"], abs=0.1)
