"""Every expected failure: its exit code, its plain message, the report, and no side effects.

Each case builds its input under ``tmp_path/input``, runs the real ``spaceport sfm`` into
``tmp_path/out``, and checks that the input is byte-for-byte unchanged and that nothing
appeared under ``tmp_path`` outside ``out``.
"""

from __future__ import annotations

import hashlib
import io
import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spaceport_sfm import errors
from spaceport_sfm.cli import main
from spaceport_sfm.sample import orbit_cameras, render


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def _flat(value: int = 128, size=(240, 320)) -> bytes:
    return _jpeg(np.full((*size, 3), value, np.uint8))


def _zip(path: Path, entries: dict[str, bytes], compression=zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        for path in sorted(root.rglob("*"))
    }


def _run_failing(tmp_path: Path, photos: Path, capsys, *options: str) -> tuple[int, str, dict]:
    """Run the job; check the no-side-effects rules; return exit code, stderr, report."""
    out = tmp_path / "out"
    before = _snapshot(tmp_path)
    code = main([str(photos), str(out), *options])
    after = {name: digest for name, digest in _snapshot(tmp_path).items() if not name.startswith("out")}
    assert after == before, "the input changed or something was written outside OUT_DIR"
    assert sorted(p.name for p in out.iterdir()) == ["report.json"], "a failed run leaves only its report"
    report = json.loads((out / "report.json").read_text())
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    assert report["status"] == "failed" and report["error"]["exit_code"] == code
    assert f"error: {report['error']['message']}" in stderr
    return code, report["error"]["message"], report


@pytest.fixture
def input_dir(tmp_path) -> Path:
    path = tmp_path / "input"
    path.mkdir()
    return path


def test_missing_photos(tmp_path, input_dir, capsys):
    code, message, _ = _run_failing(tmp_path, input_dir / "nothing.zip", capsys)
    assert code == errors.PhotosNotFoundError.exit_code == 11
    assert "No photos were found" in message


def test_not_a_zip(tmp_path, input_dir, capsys):
    photos = input_dir / "photos.zip"
    photos.write_text("these are my holiday photos")
    code, message, report = _run_failing(tmp_path, photos, capsys)
    assert code == errors.NotAZipError.exit_code == 12
    assert message == "photos.zip is not a ZIP file: upload the photos as a .zip archive (or a folder)."
    assert report["error"]["code"] == "not_a_zip"


def test_corrupt_zip(tmp_path, input_dir, capsys):
    whole = _zip(tmp_path / "whole.zip", {f"IMG_{i}.jpg": _flat(i * 40) for i in range(4)}).read_bytes()
    (tmp_path / "whole.zip").unlink()
    photos = input_dir / "photos.zip"
    photos.write_bytes(whole[: len(whole) // 2])  # an interrupted upload
    code, message, _ = _run_failing(tmp_path, photos, capsys)
    assert code == errors.CorruptZipError.exit_code == 13
    assert "is damaged" in message


def test_corrupt_member_is_a_corrupt_zip(tmp_path, input_dir, capsys):
    data = bytearray(_zip(tmp_path / "z.zip", {"IMG_1.jpg": _flat(10), "IMG_2.jpg": _flat(200)}).read_bytes())
    (tmp_path / "z.zip").unlink()
    data[200] ^= 0xFF  # flip a byte inside the first photo: its CRC no longer matches
    photos = input_dir / "photos.zip"
    photos.write_bytes(bytes(data))
    code, message, _ = _run_failing(tmp_path, photos, capsys)
    assert code == errors.CorruptZipError.exit_code
    assert "damaged" in message


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("../escape.jpg", "points outside the folder"),
        ("photos/../../escape.jpg", "points outside the folder"),
        ("/etc/escape.jpg", "absolute path"),
        ("C:\\Users\\escape.jpg", "absolute path"),
    ],
)
def test_zip_slip_and_absolute_paths_are_refused(tmp_path, input_dir, capsys, entry, expected):
    photos = _zip(input_dir / "photos.zip", {"IMG_1.jpg": _flat(), entry: _flat()})
    code, message, _ = _run_failing(tmp_path, photos, capsys)
    assert code == errors.UnsafeZipError.exit_code == 14
    assert expected in message


def test_symlink_entries_are_refused(tmp_path, input_dir, capsys):
    photos = input_dir / "photos.zip"
    with zipfile.ZipFile(photos, "w") as archive:
        archive.writestr("IMG_1.jpg", _flat())
        link = zipfile.ZipInfo("IMG_2.jpg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    code, message, _ = _run_failing(tmp_path, photos, capsys)
    assert code == errors.UnsafeZipError.exit_code
    assert "symbolic link" in message


def test_zip_bomb_ratio_is_refused(tmp_path, input_dir, capsys):
    photos = _zip(input_dir / "photos.zip", {"IMG_1.jpg": b"\0" * (8 << 20)}, zipfile.ZIP_DEFLATED)
    code, message, report = _run_failing(tmp_path, photos, capsys)
    assert code == errors.ZipTooLargeError.exit_code == 15
    assert "zip bomb" in message and report["error"]["ratio"] > 100


def test_too_many_files_and_bytes_are_refused(tmp_path, input_dir, capsys):
    photos = _zip(input_dir / "photos.zip", {f"IMG_{i}.jpg": _flat(i) for i in range(6)})
    code, message, _ = _run_failing(tmp_path, photos, capsys)  # well within the defaults: fails later
    assert code == errors.ReconstructionFailedError.exit_code
    from spaceport_sfm.job import run_sfm
    from spaceport_sfm.options import SfmOptions
    from spaceport_sfm.unpack import UnpackLimits

    for limits, words in [(UnpackLimits(max_files=5), "6 files"), (UnpackLimits(max_total_bytes=1000), "expands to")]:
        with pytest.raises(errors.ZipTooLargeError, match=words):
            run_sfm(photos, tmp_path / "out", SfmOptions(limits=limits))


def test_no_images(tmp_path, input_dir, capsys):
    photos = _zip(
        input_dir / "photos.zip",
        {
            "notes.txt": b"flight 1",
            "__MACOSX/._IMG_1.jpg": b"meta",
            ".hidden.jpg": _flat(),
            "raw/IMG_1.DNG": b"raw",
        },
    )
    code, message, report = _run_failing(tmp_path, photos, capsys)
    assert code == errors.NoImagesError.exit_code == 16
    assert message == "No photos were found: the upload must contain JPEG, PNG or TIFF images."
    assert report["error"]["skipped"] == 4


def test_fewer_than_three_usable_images(tmp_path, input_dir, capsys):
    photos = _zip(
        input_dir / "photos.zip",
        {
            "IMG_1.jpg": _flat(60),
            "IMG_2.jpg": _flat(90),
            "IMG_3.jpg": _flat(120)[:400],
            "IMG_4.png": b"not a png",
        },
    )
    code, message, report = _run_failing(tmp_path, photos, capsys)
    assert code == errors.TooFewImagesError.exit_code == 17
    assert message.startswith("Only 2 of the 4 photos could be read; at least 3 are needed")
    assert [item["name"] for item in report["unreadable"]] == ["IMG_3.jpg", "IMG_4.png"]


@pytest.mark.slow
def test_featureless_photos_cannot_be_reconstructed(tmp_path, input_dir, capsys):
    photos = _zip(input_dir / "photos.zip", {f"IMG_{i}.jpg": _flat(40 * i) for i in range(5)})
    code, message, report = _run_failing(tmp_path, photos, capsys)
    assert code == errors.ReconstructionFailedError.exit_code == 18
    assert message.startswith(
        "None of the 5 photos could be placed in 3D; consecutive photos need about 60-80% overlap"
    )
    assert report["images_registered"] == 0 and len(report["unregistered"]) == 5


@pytest.mark.slow
def test_too_few_photos_placed(tmp_path, input_dir, capsys):
    # Five overlapping views of the scene, and six photos of unrelated scenes (other textures).
    cameras = orbit_cameras(24, 320, 240)
    entries = {f"A_{i}.jpg": _jpeg(render(c.K, c.R, c.centre, 320, 240, seed=0)) for i, c in enumerate(cameras[:5])}
    entries |= {
        f"B_{i}.jpg": _jpeg(render(c.K, c.R, c.centre, 320, 240, seed=100 + i)) for i, c in enumerate(cameras[12:18])
    }
    photos = _zip(input_dir / "photos.zip", entries)
    code, message, report = _run_failing(tmp_path, photos, capsys)
    assert code == errors.TooFewRegisteredError.exit_code == 19
    placed = report["images_registered"]
    assert 3 <= placed < 5.5
    assert message == f"Only {placed} of 11 photos could be placed; consecutive photos need about 60-80% overlap."
    assert len(report["unregistered"]) == 11 - placed


def test_processing_job_failure_writes_the_failure_file(tmp_path, monkeypatch, capsys):
    root = tmp_path / "opt_ml"
    (root / "processing" / "input").mkdir(parents=True)
    (root / "processing" / "input" / "upload.zip").write_text("not a zip at all")
    monkeypatch.setenv("SPACEPORT_SAGEMAKER_ROOT", str(root))
    monkeypatch.setenv("SPACEPORT_SFM_MAPPER", "global")
    code = main([])
    assert code == errors.NotAZipError.exit_code
    failure = (root / "output" / "failure").read_text()
    assert failure == "upload.zip is not a ZIP file: upload the photos as a .zip archive (or a folder)."
    report = json.loads((root / "processing" / "output" / "report.json").read_text())
    assert report["options"]["mapper"] == "global"
    assert report["error"]["code"] == "not_a_zip"
    capsys.readouterr()
