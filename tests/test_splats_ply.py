import numpy as np
import pytest

from spaceport.splats import SplatFileError, Splats, read_ply, write_ply


def random_splats(n: int, degree: int, seed: int = 0) -> Splats:
    rng = np.random.default_rng(seed)
    k = (degree + 1) ** 2 - 1
    f = lambda *s: rng.normal(size=s).astype(np.float32)  # noqa: E731
    return Splats(f(n, 3), f(n, 4), f(n, 3), f(n), f(n, 3), f(n, k, 3))


@pytest.mark.parametrize("degree", [0, 1, 3])
def test_round_trip_keeps_every_attribute(tmp_path, degree):
    splats = random_splats(50, degree)
    again = read_ply(write_ply(splats, tmp_path / "s.ply"))
    for name in ("means", "quats", "log_scales", "opacity_logits", "sh0", "shN"):
        np.testing.assert_array_equal(getattr(again, name), getattr(splats, name))


def test_f_rest_is_channel_major(tmp_path):
    from plyfile import PlyData

    splats = random_splats(3, 1)
    write_ply(splats, tmp_path / "s.ply")
    vertex = PlyData.read(str(tmp_path / "s.ply"))["vertex"].data
    # f_rest_0..2 are red's three degree-1 coefficients; f_rest_3 is green's first.
    np.testing.assert_array_equal(vertex["f_rest_1"], splats.shN[:, 1, 0])
    np.testing.assert_array_equal(vertex["f_rest_3"], splats.shN[:, 0, 1])


def test_damaged_files_are_named_errors(tmp_path):
    (tmp_path / "empty.ply").write_bytes(b"")
    with pytest.raises(SplatFileError, match="empty"):
        read_ply(tmp_path / "empty.ply")
    good = write_ply(random_splats(100, 0), tmp_path / "good.ply").read_bytes()
    (tmp_path / "cut.ply").write_bytes(good[: len(good) // 2])
    with pytest.raises(SplatFileError, match="truncated"):
        read_ply(tmp_path / "cut.ply")
