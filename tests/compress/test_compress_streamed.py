"""Streamed SOG: levels merged from neighbours, a tree of chunks, and splat-transform reading it both ways."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from spaceport.splats import read_ply, write_ply
from spaceport_compress.cli import compress_main
from spaceport_compress.decimate import covariances, decimate, merge_cells
from spaceport_compress.errors import SogFileError
from spaceport_compress.fidelity import render_psnr
from spaceport_compress.order import PlasSettings, morton_order_in_parts, plas_order_in_parts
from spaceport_compress.sog import SogOptions
from spaceport_compress.streamed import (
    Chunking,
    chunking_for,
    lod_levels,
    read_streamed_sog,
    write_streamed_sog,
)


def morton_parts(splats, sizes):
    return morton_order_in_parts(splats.means, sizes)


def in_position_order(splats):
    return splats.subset(np.lexsort(splats.means.T[::-1]))


def matched(reference, decoded):
    """``decoded`` reordered so that splat i is the one nearest to ``reference``'s splat i."""
    import torch

    a, b = torch.from_numpy(reference.means).double(), torch.from_numpy(decoded.means).double()
    nearest = torch.cat([torch.cdist(a[i : i + 2048], b).argmin(1) for i in range(0, len(a), 2048)])
    assert len(set(nearest.tolist())) == len(reference)  # one to one
    return decoded.subset(nearest.numpy())


def test_merging_keeps_the_mixture_moments_and_single_splats(make_splats):
    splats = make_splats(n=600, sh_degree=1)
    labels = np.repeat(np.arange(300), 2)
    labels[:100] = np.arange(100) + 300  # a hundred cells of one
    labels = np.unique(labels, return_inverse=True)[1]
    merged = merge_cells(splats, labels)
    assert len(merged) == labels.max() + 1
    opacity = splats.opacities.astype(np.float64)
    cov = covariances(splats)
    weight = opacity * np.cbrt(np.linalg.det(cov))
    cell = labels[100]  # the cell of splats 100 and 101
    members = np.flatnonzero(labels == cell)
    w = weight[members] / weight[members].sum()
    mean = (w[:, None] * splats.means[members]).sum(0)
    offsets = splats.means[members] - mean
    mixture = (w[:, None, None] * (cov[members] + offsets[:, :, None] * offsets[:, None, :])).sum(0)
    assert np.allclose(merged.means[cell], mean, atol=1e-5)
    assert np.allclose(covariances(merged.subset(np.array([cell])))[0], mixture, rtol=1e-4, atol=1e-9)
    union = 1 - np.prod(1 - opacity[members])
    assert merged.opacities[cell] == pytest.approx(union, rel=1e-4)
    assert np.allclose(merged.sh0[cell], (w[:, None] * splats.sh0[members]).sum(0), atol=1e-5)
    for single in range(100):  # cells of one keep their splat exactly
        at = labels[single]
        assert np.array_equal(merged.means[at], splats.means[single])
        assert np.array_equal(merged.shN[at], splats.shN[single])


def test_decimate_hits_its_ratio_and_beats_dropping_from_afar(make_splats):
    splats = make_splats(n=4000, sh_degree=0)
    splats.log_scales -= 0.5  # many small splats, as a trained scene has
    quarter = decimate(splats, 0.25)
    assert abs(len(quarter) - 1000) <= 60
    dropped = splats.subset(np.random.default_rng(1).choice(len(splats), len(quarter), replace=False))
    # From three times the framing distance (where the viewer shows the next level).
    merged_psnr = render_psnr(splats, quarter, views=2, size=64, distance_scale=3)["psnr"]
    dropped_psnr = render_psnr(splats, dropped, views=2, size=64, distance_scale=3)["psnr"]
    assert merged_psnr > dropped_psnr
    with pytest.raises(ValueError):
        decimate(splats, 1.5)


def test_plas_over_a_chunk_keeps_each_leaf_in_its_range(make_splats):
    splats = make_splats(n=1200, sh_degree=0)
    sizes = [500, 7, 393, 300]
    order = plas_order_in_parts(splats, sizes, PlasSettings(steps_per_level=3))
    bounds = np.cumsum([0, *sizes])
    assert np.array_equal(np.sort(order), np.arange(1200))
    for p in range(len(sizes)):  # part p's pixels hold part p's splats, and all of them
        assert np.array_equal(np.sort(order[bounds[p] : bounds[p + 1]]), np.arange(bounds[p], bounds[p + 1]))
    assert not np.array_equal(order, morton_order_in_parts(splats.means, sizes))  # it did sort


def test_streamed_round_trip_chunks_and_tree(make_splats, tmp_path):
    splats = make_splats(n=6000, sh_degree=2)
    levels = lod_levels(splats, ratio=0.25, min_splats=300)
    assert [len(level) for level in levels][:1] == [6000] and len(levels) == 3
    chunking = Chunking(gaussians=1024, extent=2.0, min_gaussians=256)
    meta = write_streamed_sog(levels, tmp_path / "lod", SogOptions(sh_palette_size=32), morton_parts, chunking)
    index = tmp_path / "lod" / "lod-meta.json"
    assert json.loads(index.read_text())["counts"] == [len(level) for level in levels] == meta["counts"]
    assert meta["version"] == 1 and meta["lodLevels"] == 3 and meta["count"] == sum(meta["counts"])
    assert len(meta["filenames"]) > 6 and all((tmp_path / "lod" / name).is_file() for name in meta["filenames"])
    back = read_streamed_sog(index)
    for original, decoded in zip(levels, back, strict=True):
        assert len(original) == len(decoded) and decoded.sh_degree == 2
        again = matched(original, decoded)
        assert np.abs(again.means - original.means).max() < 1e-3 * np.abs(original.means).max()
        assert np.abs(again.opacities - original.opacities).max() <= 0.5 / 255 + 1e-6
    # Every leaf's bound holds its splats' centres, every inner node its children's bounds.
    units = {}

    def check(node, lo=None, hi=None):
        bound_lo, bound_hi = np.array(node["bound"]["min"]), np.array(node["bound"]["max"])
        if lo is not None:
            assert (bound_lo >= lo - 1e-5).all() and (bound_hi <= hi + 1e-5).all()
        for child in node.get("children", []):
            check(child, bound_lo, bound_hi)
        for lod, entry in node.get("lods", {}).items():
            unit_dir = tmp_path / "lod" / Path(meta["filenames"][entry["file"]]).parent
            if entry["file"] not in units:
                from spaceport_compress.sog import read_sog

                units[entry["file"]] = read_sog(unit_dir)
            assert meta["filenames"][entry["file"]].startswith(f"{lod}_")
            means = units[entry["file"]].means[entry["offset"] : entry["offset"] + entry["count"]]
            assert (means >= bound_lo - 1e-3).all() and (means <= bound_hi + 1e-3).all()

    check(meta["tree"])


def test_chunking_follows_the_scene_and_a_bad_index_is_named(tmp_path):
    rng = np.random.default_rng(0)
    small = chunking_for(rng.uniform(0, 10, (20000, 3)))
    large = chunking_for(rng.uniform(0, 100, (4_000_000, 3)))
    assert small.gaussians == 8 * 1024 and large.gaussians == 256 * 1024
    assert 2.0 < small.extent < 2.5 and 20 < large.extent < 25
    (tmp_path / "lod-meta.json").write_text(json.dumps({"version": 1, "lodLevels": 1, "counts": [5]}))
    with pytest.raises(SogFileError, match="lacks a required field"):
        read_streamed_sog(tmp_path / "lod-meta.json")
    with pytest.raises(SogFileError, match="does not exist"):
        read_streamed_sog(tmp_path / "missing" / "lod-meta.json")


@pytest.mark.slow
def test_the_job_writes_the_streamed_scene_with_per_level_fidelity(make_splats, tmp_path):
    write_ply(make_splats(n=5000, sh_degree=1), tmp_path / "splat.ply")
    args = [str(tmp_path / "splat.ply"), str(tmp_path / "out"), "--sh-palette", "32"]
    assert compress_main([*args, "--fidelity-views", "1", "--fidelity-size", "48"]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    streamed = metrics["streamed"]
    assert streamed["index"] == "lod/lod-meta.json" and streamed["levels"][0] == metrics["splats_out"]
    assert [level["level"] for level in streamed["fidelity"]] == list(range(len(streamed["levels"])))
    distances = [level["distance"] for level in streamed["fidelity"]]
    assert distances[1:] == sorted(distances[1:])
    assert (tmp_path / "out" / "scene.sog").is_file() and (tmp_path / "out" / "lod" / "lod-meta.json").is_file()
    assert compress_main([*args, "--no-streamed", "--fidelity-views", "0", "--order", "morton"]) == 0
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["streamed"] is None


@pytest.mark.slow
def test_splat_transform_reads_our_streamed_scene_and_we_read_its_own(make_splats, tmp_path, splat_transform):
    splats = make_splats(n=5000, sh_degree=3)
    levels = lod_levels(splats, ratio=0.25, min_splats=300)
    chunking = Chunking(gaussians=1024, extent=2.0, min_gaussians=256)
    write_streamed_sog(levels, tmp_path / "ours", SogOptions(sh_palette_size=64), morton_parts, chunking)
    ours = read_streamed_sog(tmp_path / "ours" / "lod-meta.json")
    for lod in range(len(levels)):
        out = tmp_path / f"theirs-{lod}.ply"
        result = subprocess.run(
            [str(splat_transform), "-w", str(tmp_path / "ours" / "lod-meta.json"), "-L", str(lod), str(out)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        theirs, mine = in_position_order(read_ply(out)), in_position_order(ours[lod])
        assert len(theirs) == len(mine) and theirs.sh_degree == 3
        assert np.allclose(theirs.means, mine.means, rtol=1e-5, atol=1e-6)
        assert np.allclose(theirs.log_scales, mine.log_scales, atol=1e-5)
        assert np.allclose(theirs.shN, mine.shN, atol=1e-5)
    # splat-transform's own streamed output, from our levels as PLY: our reader takes it.
    inputs = []
    for lod, level in enumerate(levels):
        inputs += [str(write_ply(level, tmp_path / f"level-{lod}.ply")), "-l", str(lod)]
    result = subprocess.run(
        [
            str(splat_transform),
            "-w",
            "-g",
            "cpu",
            *inputs,
            "--lod-chunk-count",
            "1",
            "--lod-chunk-extent",
            "2",
            str(tmp_path / "theirs" / "lod-meta.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    back = read_streamed_sog(tmp_path / "theirs" / "lod-meta.json")
    assert [len(level) for level in back] == [len(level) for level in levels]
    for original, decoded in zip(levels, back, strict=True):
        again = matched(original, decoded)
        assert np.abs(again.means - original.means).max() < 1e-3 * np.abs(original.means).max()
