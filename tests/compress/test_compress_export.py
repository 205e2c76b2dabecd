"""Exports: .spz, .glb, .ply round trips within each format's own quantisation, and other tools reading them."""

from __future__ import annotations

import json
import struct
import subprocess

import numpy as np
import pytest

from spaceport.exit_codes import ExitCode
from spaceport.splats import read_ply, write_ply
from spaceport_compress.cli import compress_main
from spaceport_compress.export import (
    ENU_TO_GLTF,
    STANDALONE_PAGE,
    main,
    read_glb,
    read_spz,
    rotate_splats,
    sh_rotation,
    write_glb,
    write_spz,
)

HALF_TURN_Z = np.diag([-1.0, -1.0, 1.0])  # splat-transform's PLY frame -> the engine's (and its .glb's)


def rotation_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle (radians) between the rotations of quaternions ``a`` and ``b`` ``[N, 4]``."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return 2 * np.arccos(np.clip(np.abs((a * b).sum(1)), 0, 1))


@pytest.fixture
def sh3(make_splats):
    splats = make_splats(n=1500, sh_degree=3)
    splats.shN = np.clip(splats.shN, -0.99, 0.99)  # SPZ stores coefficients in [-1, 1]
    splats.sh0 = np.clip(splats.sh0, -3.0, 3.0)  # and colours within +-0.5 / 0.15 of grey
    return splats


def test_spz_round_trip_within_its_quantisation(sh3, tmp_path):
    back = read_spz(write_spz(sh3, tmp_path / "scene.spz"))
    assert len(back) == len(sh3) and back.sh_degree == 3
    assert np.abs(back.means - sh3.means).max() <= 2**-13 + 1e-7  # 12 fractional bits
    assert np.abs(back.log_scales - sh3.log_scales).max() <= 1 / 32 + 1e-6  # steps of 1/16
    assert np.abs(back.opacities - sh3.opacities).max() <= 0.5 / 255 + 1e-6
    assert np.abs(back.sh0 - sh3.sh0).max() <= 0.5 / (0.15 * 255) + 1e-6
    # Smallest three at 9 bits of magnitude (steps of sqrt(1/2) / 511): well under a degree.
    assert rotation_angle(back.quats, sh3.quats).max() < 0.01
    assert np.abs(back.shN[:, :3] - sh3.shN[:, :3]).max() <= 4.5 / 128 + 1e-6  # degree 1: 5 bits
    assert np.abs(back.shN[:, 3:] - sh3.shN[:, 3:]).max() <= 8.5 / 128 + 1e-6  # degrees 2-3: 4 bits


def test_glb_round_trip_and_its_y_up_frame(sh3, tmp_path):
    path = write_glb(sh3, tmp_path / "scene.glb")
    back = read_glb(path)
    assert np.allclose(back.means, sh3.means, atol=1e-5)
    assert rotation_angle(back.quats, sh3.quats).max() < 1e-3
    assert np.allclose(back.log_scales, sh3.log_scales, atol=1e-5)
    assert np.allclose(back.opacities, sh3.opacities, atol=1e-5)
    assert np.allclose(back.shN, sh3.shN, atol=1e-4) and np.allclose(back.sh0, sh3.sh0)
    data = path.read_bytes()
    length, _ = struct.unpack_from("<II", data, 12)
    gltf = json.loads(data[20 : 20 + length])
    primitive = gltf["meshes"][0]["primitives"][0]
    assert gltf["extensionsUsed"] == ["KHR_gaussian_splatting"] and primitive["mode"] == 0
    assert "KHR_gaussian_splatting:SH_DEGREE_3_COEF_6" in primitive["attributes"]
    position = gltf["accessors"][primitive["attributes"]["POSITION"]]
    # Up (z, east-north-up) is glTF's y.
    assert position["max"][1] == pytest.approx(float(sh3.means[:, 2].max()), abs=1e-5)


def test_sh_rotation_is_orthogonal_and_turns_colour_with_the_splat(sh3):
    turn = ENU_TO_GLTF
    mixing = sh_rotation(tuple(map(tuple, turn.tolist())))
    assert np.allclose(mixing @ mixing.T, np.eye(15), atol=1e-9)
    import torch
    from gsplat.cuda._torch_impl import _spherical_harmonics

    turned = rotate_splats(sh3, turn)
    view = np.array([[0.3, -0.5, 0.8]])
    view /= np.linalg.norm(view)

    def colour(splats, direction):
        coeffs = torch.from_numpy(np.concatenate([splats.sh0[:, None], splats.shN], 1)).double()
        dirs = torch.from_numpy(np.repeat(direction, len(splats), 0))
        return _spherical_harmonics(3, dirs, coeffs).numpy()

    # Seen from the turned direction, the turned splat shows the colour the original showed.
    assert np.allclose(colour(turned, view @ turn.T), colour(sh3, view), atol=1e-6)


def test_export_command_picks_the_format_by_extension(sh3, tmp_path, capsys):
    source = write_ply(sh3, tmp_path / "splat.ply")
    for suffix in (".spz", ".glb", ".ply"):
        assert main([str(source), str(tmp_path / f"out{suffix}")]) == 0
    assert len(read_spz(tmp_path / "out.spz")) == len(read_glb(tmp_path / "out.glb")) == len(sh3)
    assert np.array_equal(read_ply(tmp_path / "out.ply").means, sh3.means)
    assert main([str(source), str(tmp_path / "out.obj")]) == ExitCode.EXPORT_FAILED
    assert main([str(tmp_path / "missing.ply"), str(tmp_path / "x.spz")]) == ExitCode.EXPORT_FAILED
    assert main([str(source), str(source)]) == ExitCode.EXPORT_FAILED
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "out.obj").exists() and not (tmp_path / "x.spz").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0


@pytest.mark.skipif(not STANDALONE_PAGE.is_file(), reason="web/dist/standalone.html is not built (make web, needs npm)")
def test_html_export_inlines_the_scene_in_the_standalone_page(make_splats, tmp_path):
    import base64

    from spaceport_compress.export import SCENE_SLOT
    from spaceport_compress.sog import read_sog

    splats = make_splats(n=500, sh_degree=0)
    write_ply(splats, tmp_path / "splat.ply")
    assert main([str(tmp_path / "splat.ply"), str(tmp_path / "scene.html"), "--georeference", "47.1,8.2,400"]) == 0
    page = (tmp_path / "scene.html").read_text()
    assert SCENE_SLOT not in page and "<title>splat</title>" in page
    start = page.index('id="spaceport-scene">') + len('id="spaceport-scene">')
    scene = json.loads(page[start : page.index("</script>", start)])
    assert scene["georeference"]["origin"] == {"lat": 47.1, "lon": 8.2, "alt": 400.0}
    (tmp_path / "inlined.sog").write_bytes(base64.b64decode(scene["sog"]))
    assert len(read_sog(tmp_path / "inlined.sog")) == int((splats.opacities >= 1 / 255).sum())
    assert sorted(path.name for path in tmp_path.iterdir()) == ["inlined.sog", "scene.html", "splat.ply"]
    assert main([str(tmp_path / "splat.ply"), str(tmp_path / "x.html"), "--georeference", "north"]) == 55


def test_the_job_writes_spz_and_glb_beside_the_scene(make_splats, tmp_path):
    write_ply(make_splats(n=600, sh_degree=1), tmp_path / "splat.ply")
    args = [str(tmp_path / "splat.ply"), str(tmp_path / "out"), "--fidelity-views", "0", "--no-streamed"]
    assert compress_main([*args, "--order", "morton", "--sh-palette", "16"]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(metrics["exports"]) == {"scene.spz", "scene.glb"}
    assert metrics["exports"]["scene.spz"] == (tmp_path / "out" / "scene.spz").stat().st_size
    assert len(read_glb(tmp_path / "out" / "scene.glb")) == metrics["splats_out"]


@pytest.mark.slow
def test_splat_transform_reads_our_spz_and_ply_and_writes_the_glb_we_write(sh3, tmp_path, splat_transform):
    """splat-transform 3.7 reads .spz and .ply (not .glb): ours decode the same in both; for .glb,
    its own writer's file of the same splat holds the same splats as ours, frames aside."""
    ours = write_spz(sh3, tmp_path / "scene.spz")
    result = subprocess.run(
        [str(splat_transform), "-w", str(ours), str(tmp_path / "from-spz.ply")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    theirs, mine = read_ply(tmp_path / "from-spz.ply"), read_spz(ours)
    assert np.array_equal(theirs.means, mine.means) and np.array_equal(theirs.shN, mine.shN)
    assert np.allclose(theirs.log_scales, mine.log_scales) and np.allclose(theirs.sh0, mine.sh0, atol=1e-6)
    assert rotation_angle(theirs.quats, mine.quats).max() < 1e-5

    # Our .ply export (from a .sog) reads back in splat-transform as it does in ours.
    assert compress_main([str(write_ply(sh3, tmp_path / "in.ply")), str(tmp_path / "job"), "--fidelity-views", "0",
                          "--no-streamed", "--sh-palette", "64"]) == 0  # fmt: skip
    assert main([str(tmp_path / "job" / "scene.sog"), str(tmp_path / "exported.ply")]) == 0
    result = subprocess.run(
        [str(splat_transform), "-w", str(tmp_path / "exported.ply"), str(tmp_path / "again.ply")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert np.allclose(read_ply(tmp_path / "again.ply").means, read_ply(tmp_path / "exported.ply").means)

    write_ply(sh3, tmp_path / "splat.ply")
    result = subprocess.run(
        [str(splat_transform), "-w", str(tmp_path / "splat.ply"), str(tmp_path / "theirs.glb")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    # Theirs is in the engine frame (our frame half-turned about z), ours y-up: undo both.
    back = rotate_splats(read_glb(tmp_path / "theirs.glb"), HALF_TURN_Z.T @ ENU_TO_GLTF)
    assert np.allclose(back.means, sh3.means, atol=1e-5)
    assert rotation_angle(back.quats, sh3.quats).max() < 1e-3
    assert np.allclose(back.shN, sh3.shN, atol=1e-4)  # its SH rotation and ours agree
