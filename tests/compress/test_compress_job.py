"""The compress/decompress commands: real runs, SageMaker layout, and named errors on bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from spaceport.exit_codes import ExitCode
from spaceport.splats import read_ply, write_ply
from spaceport_compress.cli import compress_main, decompress_main

INTEROP_LOCK = Path(__file__).resolve().parents[2] / "services/compress/interop/package-lock.json"
FAST = ["--fidelity-views", "2", "--fidelity-size", "48"]


@pytest.mark.slow
def test_compress_then_decompress_a_generated_splat(make_splats, tmp_path):
    splats = make_splats(n=900, sh_degree=2)
    splats.means[:5] = np.nan  # dropped and counted, not fatal
    write_ply(splats, tmp_path / "splat.ply")
    assert compress_main([str(tmp_path / "splat.ply"), str(tmp_path / "out"), "--sh-palette", "32", *FAST]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    visible = int((splats.opacities[5:] >= 1 / 255).sum())  # fainter ones are dropped too, and counted
    assert 0 < 895 - visible < 10
    assert metrics["splats_in"] == 900 and metrics["splats_dropped_nonfinite"] == 5
    assert metrics["splats_dropped_invisible"] == 895 - visible and metrics["splats_out"] == visible
    assert metrics["output_bytes"] == (tmp_path / "out" / "scene.sog").stat().st_size
    assert metrics["ratio"] == pytest.approx(metrics["input_bytes"] / metrics["output_bytes"], rel=1e-3)
    assert metrics["sh_bands_out"] == 2 and metrics["wall_time_s"] > 0
    assert metrics["psnr"] > 25  # the decoded splat renders close to the original
    assert decompress_main([str(tmp_path / "out" / "scene.sog"), str(tmp_path / "back.ply")]) == 0
    back = read_ply(tmp_path / "back.ply")
    assert len(back) == visible and back.sh_degree == 2


def test_morton_order_and_band_limit(make_splats, tmp_path):
    write_ply(make_splats(n=400, sh_degree=3), tmp_path / "splat.ply")
    args = [
        str(tmp_path / "splat.ply"),
        str(tmp_path / "out"),
        "--order",
        "morton",
        "--sh-bands",
        "0",
        "--fidelity-views",
        "0",
    ]
    assert compress_main(args) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["order"] == "morton" and metrics["sh_bands_out"] == 0 and metrics["psnr"] is None


def test_faint_splats_dropped_unless_all_are_faint_and_bad_threshold_is_named(make_splats, tmp_path):
    splats = make_splats(n=300, sh_degree=0)
    splats.opacity_logits[:] = -8.0  # opacity 0.0003: every splat below 1/255
    splats.opacity_logits[:100] = 2.0
    write_ply(splats, tmp_path / "splat.ply")
    assert compress_main([str(tmp_path / "splat.ply"), str(tmp_path / "out"), "--fidelity-views", "0"]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["splats_out"] == 100 and metrics["splats_dropped_invisible"] == 200
    splats.opacity_logits[:100] = -8.0  # all faint: nothing is left to drop them for
    write_ply(splats, tmp_path / "faint.ply")
    assert compress_main([str(tmp_path / "faint.ply"), str(tmp_path / "faint"), "--fidelity-views", "0"]) == 0
    assert json.loads((tmp_path / "faint" / "metrics.json").read_text())["splats_out"] == 300
    assert compress_main([str(tmp_path / "splat.ply"), str(tmp_path / "bad"), "--min-opacity", "1.5"]) == 54
    assert not (tmp_path / "bad" / "scene.sog").exists()


def test_sagemaker_processing_layout(make_splats, tmp_path, monkeypatch):
    monkeypatch.setenv("SPACEPORT_SAGEMAKER_ROOT", str(tmp_path / "ml"))
    (tmp_path / "ml/processing/input").mkdir(parents=True)
    write_ply(make_splats(n=300, sh_degree=0), tmp_path / "ml/processing/input/splat.ply")
    assert compress_main(["--fidelity-views", "0", "--min-opacity", "0"]) == 0
    assert (tmp_path / "ml/processing/output/scene.sog").is_file()
    assert json.loads((tmp_path / "ml/processing/output/metrics.json").read_text())["splats_out"] == 300


def test_sagemaker_failure_writes_the_failure_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SPACEPORT_SAGEMAKER_ROOT", str(tmp_path / "ml"))
    (tmp_path / "ml/processing/input").mkdir(parents=True)
    (tmp_path / "ml/processing/input/splat.ply").write_bytes(b"")
    assert compress_main(["--fidelity-views", "0"]) == ExitCode.BAD_SPLAT_FILE
    assert "empty" in (tmp_path / "ml/output/failure").read_text()


def _truncated(tmp_path: Path, make_splats) -> Path:
    write_ply(make_splats(n=200, sh_degree=0), tmp_path / "whole.ply")
    data = (tmp_path / "whole.ply").read_bytes()
    (tmp_path / "bad.ply").write_bytes(data[: len(data) // 2])
    return tmp_path / "bad.ply"


def _all_nan(tmp_path: Path, make_splats) -> Path:
    splats = make_splats(n=50, sh_degree=0)
    splats.opacity_logits[:] = np.nan
    return write_ply(splats, tmp_path / "bad.ply")


def _wrong_properties(tmp_path: Path, make_splats) -> Path:
    from plyfile import PlyData, PlyElement

    table = np.zeros(10, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1")])
    PlyData([PlyElement.describe(table, "vertex")]).write(str(tmp_path / "bad.ply"))
    return tmp_path / "bad.ply"


def _empty(tmp_path: Path, make_splats) -> Path:
    (tmp_path / "bad.ply").write_bytes(b"")
    return tmp_path / "bad.ply"


def _zero_splats(tmp_path: Path, make_splats) -> Path:
    return write_ply(make_splats(n=0, sh_degree=0), tmp_path / "bad.ply")


@pytest.mark.parametrize(
    "make_bad, exit_code, code",
    [
        (_empty, ExitCode.BAD_SPLAT_FILE, "bad_splat_file"),
        (_truncated, ExitCode.BAD_SPLAT_FILE, "bad_splat_file"),
        (_wrong_properties, ExitCode.BAD_SPLAT_FILE, "bad_splat_file"),
        (_zero_splats, 51, "empty_splat"),
        (_all_nan, 52, "no_finite_splats"),
    ],
    ids=["empty", "truncated", "wrong-properties", "zero-splats", "all-nan"],
)
def test_bad_input_gives_its_named_error_and_writes_no_bundle(make_bad, exit_code, code, make_splats, tmp_path, capsys):
    bad = make_bad(tmp_path, make_splats)
    before = bad.read_bytes()
    assert compress_main([str(bad), str(tmp_path / "out"), "--fidelity-views", "0"]) == exit_code
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "out" / "scene.sog").exists()
    assert not list((tmp_path / "out").glob("*partial*"))
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["error"]["code"] == code
    assert bad.read_bytes() == before  # the input is never modified


@pytest.mark.parametrize("content", [b"", b"not a zip", None], ids=["empty", "not-zip", "wrong-version"])
def test_decompress_rejects_a_bad_bundle_and_writes_nothing(content, tmp_path, capsys):
    import zipfile

    bad = tmp_path / "bad.sog"
    if content is None:
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("meta.json", json.dumps({"version": 1, "count": 3}))
    else:
        bad.write_bytes(content)
    assert decompress_main([str(bad), str(tmp_path / "out.ply")]) == 53
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "out.ply").exists()


def test_help_works():
    with pytest.raises(SystemExit) as exit_info:
        compress_main(["--help"])
    assert exit_info.value.code == 0


@pytest.mark.slow
@pytest.mark.parametrize("source_name", ["generated-sh3", "v3dg_donut.ply"])
def test_playcanvas_splat_transform_reads_our_bundle(
    source_name, make_splats, datasets_dir_or_none, tmp_path, splat_transform
):
    """PlayCanvas' own tool decodes our scene.sog to the same splats as our decoder."""
    if source_name == "generated-sh3":
        source = write_ply(make_splats(n=2000, sh_degree=3), tmp_path / "splat.ply")
    elif datasets_dir_or_none and (datasets_dir_or_none / "splats" / source_name).is_file():
        source = datasets_dir_or_none / "splats" / source_name
    else:
        pytest.skip(f"{source_name} needs SPACEPORT_DATASETS")
    assert compress_main([str(source), str(tmp_path / "out"), "--fidelity-views", "0", "--sh-palette", "64"]) == 0
    scene = tmp_path / "out" / "scene.sog"
    result = subprocess.run(
        [str(splat_transform), str(scene), str(tmp_path / "theirs.ply")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"splat-transform rejected our bundle:\n{result.stdout}\n{result.stderr}"
    assert decompress_main([str(scene), str(tmp_path / "ours.ply")]) == 0
    theirs, ours = read_ply(tmp_path / "theirs.ply"), read_ply(tmp_path / "ours.ply")
    assert len(theirs) == len(ours) and theirs.sh_degree == ours.sh_degree

    def in_position_order(splats):
        return splats.subset(np.lexsort(splats.means.T[::-1]))

    theirs, ours = in_position_order(theirs), in_position_order(ours)
    # Both decode the same 8/16-bit values; only float rounding differs.
    assert np.allclose(theirs.means, ours.means, rtol=1e-5, atol=1e-6)
    assert np.allclose(theirs.quats, ours.quats, atol=1e-5)
    assert np.allclose(theirs.log_scales, ours.log_scales, atol=1e-5)
    assert np.allclose(theirs.sh0, ours.sh0, atol=1e-5)
    assert np.allclose(theirs.opacity_logits, ours.opacity_logits, atol=1e-3)
    assert np.allclose(theirs.shN, ours.shN, atol=1e-5)


@pytest.fixture
def datasets_dir_or_none():
    import os

    value = os.environ.get("SPACEPORT_DATASETS")
    return Path(value) if value and Path(value).is_dir() else None


def test_npm_tooling_is_pinned():
    lock = json.loads(INTEROP_LOCK.read_text())
    assert lock["packages"]["node_modules/@playcanvas/splat-transform"]["version"] == "3.7.0"
