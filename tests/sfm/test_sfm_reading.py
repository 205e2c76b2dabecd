"""Unpacking and per-image reading on small generated files (no reconstruction)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import ExifTags, Image

from spaceport_sfm.exif import make_exif, read_exif
from spaceport_sfm.geo import GeoOrigin
from spaceport_sfm.images import read_images
from spaceport_sfm.reconstruct import _loop_closure_pairs, choose_matcher
from spaceport_sfm.unpack import stage_photos


def _image(width=64, height=48, seed=0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (height, width, 3), np.uint8))


def _encoded(image: Image.Image, fmt: str, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def test_exif_round_trip_keeps_gps_and_focal():
    gps = (-33.856784, 151.215297, 58.25)
    data = _encoded(_image(400, 300), "JPEG", exif=make_exif(focal_35mm=24, gps=gps))
    meta = read_exif(Image.open(io.BytesIO(data)))
    np.testing.assert_allclose(meta.gps, gps, atol=1e-7)
    assert meta.focal_px == pytest.approx(24 / 36 * 400)
    assert meta.orientation == 1


def test_enu_round_trip():
    origin = GeoOrigin(47.0, 8.0, 400.0)
    enu = np.array([[10.0, -20.0, 5.0], [1000.0, 300.0, -2.0]])
    np.testing.assert_allclose(origin.to_enu(origin.to_lat_lon_alt(enu)), enu, atol=1e-6)
    north = origin.to_enu(np.array([[47.001, 8.0, 400.0]]))[0]
    assert north[1] == pytest.approx(111.2, abs=0.5) and abs(north[0]) < 1e-6


def test_zip_staging_finds_images_case_insensitively_and_lists_skips(tmp_path):
    photos = tmp_path / "photos.zip"
    with zipfile.ZipFile(photos, "w") as archive:
        for name, fmt in [
            ("a.JPG", "JPEG"),
            ("b.Jpeg", "JPEG"),
            ("sub/c.PNG", "PNG"),
            ("d.tif", "TIFF"),
            ("e.TIFF", "TIFF"),
        ]:
            archive.writestr(name, _encoded(_image(), fmt))
        archive.writestr("__MACOSX/._a.JPG", b"x")
        archive.writestr(".DS_Store", b"x")
        archive.writestr("notes.txt", b"x")
        archive.writestr("sub/", b"")
    before = photos.read_bytes()
    staged = stage_photos(photos, tmp_path / "staged")
    assert staged.names == ["a.JPG", "b.Jpeg", "d.tif", "e.TIFF", "sub/c.PNG"]
    assert {item["name"]: item["reason"] for item in staged.skipped} == {
        "__MACOSX/._a.JPG": "macOS metadata",
        ".DS_Store": "hidden file",
        "notes.txt": "not a JPEG, PNG or TIFF image",
    }
    assert photos.read_bytes() == before
    assert (
        sorted(p.relative_to(tmp_path / "staged").as_posix() for p in (tmp_path / "staged").rglob("*.*"))
        == staged.names
    )


def test_folder_staging_copies_and_skips_symlinks(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    _image().save(folder / "a.jpg")
    (folder / "link.jpg").symlink_to(folder / "a.jpg")
    staged = stage_photos(folder, folder / "out" / ".work")  # output inside the photo folder
    assert staged.names == ["a.jpg"]
    assert staged.skipped == [{"name": "link.jpg", "reason": "symbolic link"}]


def test_orientation_downscaling_and_unreadable_files(tmp_path):
    exif = make_exif(focal_35mm=36, gps=(10.0, 20.0, 30.0))
    exif[ExifTags.Base.Orientation] = 6  # stored landscape, shown portrait (rotate 90 degrees clockwise)
    image = _image(800, 600)
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    _image(300, 200).save(tmp_path / "plain.png")
    (tmp_path / "broken.jpg").write_bytes((tmp_path / "rotated.jpg").read_bytes()[:3000])
    photos, unreadable = read_images(tmp_path, ["broken.jpg", "plain.png", "rotated.jpg"], max_image_size=400)
    assert [item["name"] for item in unreadable] == ["broken.jpg"]
    assert not (tmp_path / "broken.jpg").exists()
    plain, rotated = photos
    assert (plain.width, plain.height, plain.scale, plain.focal_px, plain.gps) == (300, 200, 1.0, None, None)
    assert (rotated.width, rotated.height) == (300, 400) and rotated.original_size == (600, 800)
    assert rotated.focal_px == pytest.approx(400.0)  # 36 mm equivalent = the long side, after downscaling
    np.testing.assert_allclose(rotated.gps, (10.0, 20.0, 30.0), atol=1e-7)
    with Image.open(tmp_path / "rotated.jpg") as written:
        assert written.size == (300, 400)
        assert written.getexif().get(ExifTags.Base.Orientation) is None  # not rotated twice
        # The top-left of the stored image ends up top-right once upright.
        expected = np.asarray(image.transpose(Image.Transpose.ROTATE_270).resize((300, 400)), np.float32)
        assert np.abs(np.asarray(written, np.float32) - expected).mean() < 40


def test_auto_matcher_choice():
    assert choose_matcher("auto", 24, 24, 50).name == "exhaustive"
    assert choose_matcher("auto", 200, 150, 50).name == "spatial"
    assert choose_matcher("auto", 200, 20, 50).name == "sequential"
    assert choose_matcher("spatial", 10, 0, 50).name == "spatial"


def test_loop_closure_pairs_reach_across_the_sequence():
    names = [f"{i:03d}.jpg" for i in range(200)]
    pairs = _loop_closure_pairs(names, overlap=10)
    assert ("000.jpg", "192.jpg") in pairs  # the last keyframe closes the loop with the first
    assert all(int(b[:3]) - int(a[:3]) > 10 for a, b in pairs)
    assert len(pairs) < 400


def test_duplicate_names_are_skipped_and_password_protected_zips_refused(tmp_path):
    from spaceport_sfm.errors import CorruptZipError

    photos = tmp_path / "photos.zip"
    with zipfile.ZipFile(photos, "w") as archive:
        archive.writestr("a.jpg", _encoded(_image(), "JPEG"))
        archive.writestr("A.JPG", _encoded(_image(seed=1), "JPEG"))
    staged = stage_photos(photos, tmp_path / "staged")
    assert staged.names == ["a.jpg"] and staged.skipped == [{"name": "A.JPG", "reason": "duplicate name"}]

    locked = tmp_path / "locked.zip"
    with zipfile.ZipFile(locked, "w") as archive:
        archive.writestr("a.jpg", b"ciphertext")
    data = bytearray(locked.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[6] |= 0x1  # the "encrypted" flag, in the local header and in the central directory
    data[central + 8] |= 0x1
    locked.write_bytes(bytes(data))
    with pytest.raises(CorruptZipError, match="password-protected"):
        stage_photos(locked, tmp_path / "staged2")
    assert not list((tmp_path / "staged2").iterdir())


def test_options_come_from_the_environment_and_bad_ones_are_usage_errors(monkeypatch, capsys):
    from spaceport_sfm.cli import build_parser, main

    monkeypatch.setenv("SPACEPORT_SFM_MAX_IMAGE_SIZE", "1600")
    monkeypatch.setenv("SPACEPORT_SFM_MAPPER", "global")
    args = build_parser().parse_args(["in.zip", "out", "--mapper", "incremental"])
    assert args.max_image_size == 1600 and args.mapper == "incremental"  # arguments win
    monkeypatch.setenv("SPACEPORT_SFM_MATCHER", "fastest")
    with pytest.raises(SystemExit) as exit_info:
        main(["in.zip", "out"])
    assert exit_info.value.code == 2 and "SPACEPORT_SFM_MATCHER must be one of" in capsys.readouterr().err
