"""SOG v2 round trips stay within the format's quantisation; the bundle is what PlayCanvas specifies."""

from __future__ import annotations

import json
import math
import zipfile

import numpy as np
import pytest
import torch

from spaceport.splats import read_ply
from spaceport_compress.canonical import canonical_orientation, rotation_matrices
from spaceport_compress.compressed_ply import read_compressed_ply
from spaceport_compress.kmeans import kmeans, kmeans_1d
from spaceport_compress.order import PlasSettings, morton_order, plas_order
from spaceport_compress.sog import SogOptions, decode_sog, encode_quats, encode_sog, grid_shape, read_sog, write_sog


def _rotation_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Largest component error between unit quaternions, q and -q being one rotation."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.minimum(np.abs(a - b).max(1), np.abs(a + b).max(1))


def assert_within_quantisation(original, decoded, files, position_bits=16):
    """Every attribute is within the error the format's quantisation allows."""
    meta = json.loads(files["meta.json"])
    mins, maxs = np.asarray(meta["means"]["mins"]), np.asarray(meta["means"]["maxs"])
    # Positions: half a quantisation step in the log domain, times the slope of expm1 there.
    half_step = (maxs - mins) / 65535 * 2 ** (16 - position_bits) / 2
    slope = np.exp(np.abs(log := np.sign(original.means) * np.log1p(np.abs(original.means))) + half_step)
    assert (np.abs(decoded.means - original.means) <= slope * half_step * (1 + 1e-3) + 1e-6).all()
    assert np.isfinite(log).all()
    # Codebooks: a value is at most half the widest codebook gap from its entry, and the
    # decoded value is the nearest entry (no value could have been coded better).
    for name, codebook, values, got in (
        ("scales", meta["scales"]["codebook"], original.log_scales, decoded.log_scales),
        ("sh0", meta["sh0"]["codebook"], original.sh0, decoded.sh0),
    ):
        book = np.asarray(codebook, np.float64)
        best = np.abs(values[..., None].astype(np.float64) - book).min(-1)
        assert np.allclose(np.abs(values - got), best, atol=1e-5), name
        reach = max(np.diff(book).max() / 2, book[0] - values.min(), values.max() - book[-1])
        assert (np.abs(values - got) <= reach + 1e-5).all(), name
    opacity = lambda logits: 1 / (1 + np.exp(-logits.astype(np.float64)))  # noqa: E731
    assert np.abs(opacity(decoded.opacity_logits) - opacity(original.opacity_logits)).max() <= 0.5 / 255 + 1e-6
    # Smallest-three at 8 bits: kept components within half a step (1/255/sqrt2), the rebuilt one a little more.
    assert _rotation_error(decoded.quats, original.quats).max() < 0.015


def test_generated_splat_round_trip_within_quantisation(make_splats, tmp_path):
    splats = make_splats(n=1500, sh_degree=3)
    order = morton_order(splats.means)
    files = encode_sog(splats, order, SogOptions(sh_palette_size=64))
    scene = write_sog(files, tmp_path / "scene.sog")
    decoded = read_sog(scene)
    ordered = splats.subset(order)
    assert len(decoded) == 1500 and decoded.sh_degree == 3
    assert_within_quantisation(ordered, decoded, files)
    # 24 distinct SH vectors and a 64-entry palette: each splat gets its own vector back, to
    # within the 256-entry codebook of the palette values.
    sh_book = np.asarray(json.loads(files["meta.json"])["shN"]["codebook"])
    assert np.abs(decoded.shN - ordered.shN).max() <= np.diff(sh_book).max() / 2 + 1e-5


def test_bundle_layout_is_sog_version_2(make_splats, tmp_path):
    splats = make_splats(n=1000, sh_degree=1)
    scene = write_sog(encode_sog(splats, np.arange(1000), SogOptions(sh_palette_size=16)), tmp_path / "s.sog")
    with zipfile.ZipFile(scene) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        meta = json.loads(archive.read("meta.json"))
        assert all(info.compress_type == zipfile.ZIP_STORED for info in infos.values())
        assert set(infos) == {
            "meta.json",
            "means_l.webp",
            "means_u.webp",
            "quats.webp",
            "scales.webp",
            "sh0.webp",
            "shN_centroids.webp",
            "shN_labels.webp",
        }
        assert all(archive.read(name)[8:12] == b"WEBP" for name in infos if name.endswith(".webp"))
    assert meta["version"] == 2 and meta["count"] == 1000
    assert len(meta["scales"]["codebook"]) == 256 and len(meta["sh0"]["codebook"]) == 256
    assert meta["shN"]["bands"] == 1 and meta["shN"]["count"] == 16
    width, height = grid_shape(1000)
    assert width * height >= 1000 and width * height - 1000 < width  # padded, nothing dropped


def test_sh_bands_option_drops_higher_bands(make_splats):
    splats = make_splats(n=600, sh_degree=3)
    decoded = decode_sog(encode_sog(splats, np.arange(600), SogOptions(sh_bands=1, sh_palette_size=32)))
    assert decoded.sh_degree == 1
    decoded = decode_sog(encode_sog(splats, np.arange(600), SogOptions(sh_bands=0)))
    assert decoded.sh_degree == 0


def test_position_bits_round_to_a_coarser_grid(make_splats):
    splats = make_splats(n=800, sh_degree=0)
    files = encode_sog(splats, np.arange(800), SogOptions(position_bits=12))
    assert_within_quantisation(splats, decode_sog(files), files, position_bits=12)


def test_plas_order_is_a_permutation_and_keeps_real_splats_first(make_splats):
    splats = make_splats(n=1000, sh_degree=0)  # 32 x 32 grid, 24 padding cells
    order = plas_order(splats, PlasSettings(seed=0, start_radius=8, steps_per_level=4))
    assert np.array_equal(np.sort(order), np.arange(1000))


def test_kmeans_separates_clusters_and_1d_codebook_is_exact_for_few_values():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    points = centres.repeat_interleave(200, 0) + 0.1 * torch.randn(600, 2, generator=generator)
    found, labels = kmeans(points, 3, iterations=20, seed=1)
    assert torch.cdist(found, centres).min(1).values.max() < 0.1
    assert len(set(labels.tolist())) == 3
    values = torch.tensor([0.5, -1.0, 2.0, 0.5, 2.0])
    codebook, labels = kmeans_1d(values, 256)
    assert codebook.shape == (256,) and torch.equal(codebook[labels], values)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["v3dg_donut.ply", "playcanvas_guitar.ply"])
def test_real_splats_round_trip_within_quantisation(datasets_dir, name):
    path = datasets_dir / "splats" / name
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    splats = read_ply(path)
    order = morton_order(splats.means)
    files = encode_sog(splats, order)
    assert_within_quantisation(splats.subset(order), decode_sog(files), files)


def test_compressed_ply_reads_like_its_decoded_twin(datasets_dir):
    packed, plain = (datasets_dir / "splats" / f"playcanvas_guitar{suffix}.ply" for suffix in (".compressed", ""))
    if not packed.is_file() or not plain.is_file():
        pytest.skip("the PlayCanvas guitar splats are not available")
    a, b = read_compressed_ply(packed), read_ply(plain)
    for name in ("means", "quats", "log_scales", "sh0"):
        assert np.allclose(getattr(a, name), getattr(b, name), atol=1e-6), name
    # The decoded twin writes a fully opaque splat as logit 40; ours clamps at 1 - 1e-6.
    opaque = b.opacity_logits >= 13.8
    assert np.allclose(a.opacity_logits[~opaque], b.opacity_logits[~opaque], atol=1e-4)
    assert (a.opacity_logits[opaque] >= 13.8).all() and math.isfinite(float(a.opacity_logits.max()))


def _covariances(quats: np.ndarray, log_scales: np.ndarray) -> np.ndarray:
    rotations = rotation_matrices(quats.astype(np.float64) / np.linalg.norm(quats, axis=1, keepdims=True))
    return np.einsum("nij,nj,nkj->nik", rotations, np.exp(2 * log_scales.astype(np.float64)), rotations)


def test_canonical_orientation_keeps_every_gaussian_and_puts_w_first(make_splats):
    splats = make_splats(n=2000, sh_degree=0)
    quats, log_scales = canonical_orientation(splats.quats, splats.log_scales)
    before, after = _covariances(splats.quats, splats.log_scales), _covariances(quats, log_scales)
    assert np.abs(after - before).max() <= 1e-5 * np.abs(before).max()
    assert np.array_equal(np.sort(log_scales, 1), np.sort(splats.log_scales, 1))  # scales only permuted
    # Within about 63 degrees of identity: w is the largest component, so the quats alpha is constant.
    assert quats[:, 0].min() > 0.85 and (encode_quats(quats)[:, 3] == 252).all()
    # Already canonical: unchanged.
    again_quats, again_scales = canonical_orientation(quats, log_scales)
    assert np.allclose(again_quats, quats, atol=1e-6) and np.array_equal(again_scales, log_scales)


def test_1d_codebook_spends_its_entries_where_importance_is():
    values = torch.linspace(0, 1, 20001)
    important = (values > 0.9).double() * 99 + 1  # the top tenth weighs 100x
    plain, _ = kmeans_1d(values, 16, density_power=1.0)
    weighted, labels = kmeans_1d(values, 16, density_power=1.0, importance=important)
    assert (plain > 0.9).sum() <= 2 and (weighted > 0.9).sum() >= 4
    assert torch.equal(labels, torch.from_numpy(np.abs(values[:, None].numpy() - weighted.numpy()).argmin(1)))
