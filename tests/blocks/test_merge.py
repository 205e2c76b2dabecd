"""Block training inputs and the merge: each block trains what it sees; the merge keeps each Gaussian once."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spaceport.cli import main as spaceport_main
from spaceport.contracts.blocks import BlockBudget, BlockPlan, SceneSummary
from spaceport.contracts.layout import TrainOutputs, block_name
from spaceport.handlers.block_plan import make_plan
from spaceport.splats import Splats, read_ply, write_ply
from spaceport_train.blocks import block_scene, points_within, read_plan
from spaceport_train.errors import BlockPlanError, MergeError
from spaceport_train.merge import find_block_outputs, merge_blocks, merge_job, owned


@pytest.fixture(scope="module")
def wide_truth(tmp_path_factory):
    """A generated wide capture (40 nadir photos, 160 x 120) and its reconstruction from the truth (no SfM)."""
    from spaceport_sfm.sample import SampleOptions, make_sample, write_truth_reconstruction

    folder = tmp_path_factory.mktemp("wide")
    capture = make_sample(folder / "wide.zip", n=40, width=160, height=120, options=SampleOptions(flight="wide"))
    return write_truth_reconstruction(capture, folder / "sfm", points_per_photo=150)


@pytest.fixture(scope="module")
def wide_plan(wide_truth) -> BlockPlan:
    import pycolmap

    from spaceport_sfm.summary import scene_summary

    summary = scene_summary(pycolmap.Reconstruction(str(wide_truth / "sparse" / "0")), georeferenced=True)
    assert SceneSummary.model_validate_json(summary.model_dump_json()) == summary
    whole = make_plan(summary, BlockBudget(max_gaussians=10**9, max_megapixels=1e9, image_size_px=0, steps=1)).whole
    return make_plan(
        summary, BlockBudget(max_gaussians=int(whole.gaussians * 0.75), max_megapixels=1e9, image_size_px=0, steps=40)
    )


def splats_at(u: list[float], sh_degree: int = 0) -> Splats:
    splats = Splats.empty(len(u), sh_degree)
    splats.means[:, 0] = u
    splats.sh0[:] = 0.3
    return splats


def test_the_summary_of_a_wide_capture_plans_blocks_along_its_length(wide_plan):
    assert len(wide_plan.blocks) == 2 and wide_plan.frame == "enu"
    south, north = sorted(wide_plan.blocks, key=lambda block: block.bounds.v_min)
    assert south.core.v_max == north.core.v_min  # the wide flight is long north-south: cut across it
    assert set(south.cameras) & set(north.cameras)  # the photos over the seam train both


def test_a_block_trains_its_cameras_and_its_region_and_never_the_capture_s_held_out_photos(wide_truth, wide_plan):
    from spaceport_train.data import load_scene

    scene = load_scene(wide_truth, eval_every_nth_image=8)
    held_out = {scene.views[i].name for i in scene.eval_ids}
    block = wide_plan.blocks[0]
    part = block_scene(scene, wide_plan, block.index, eval_every_nth_image=8)
    assert {view.name for view in part.views} == set(block.cameras)
    assert {part.views[i].name for i in part.eval_ids} == held_out & set(block.cameras)
    assert not {part.views[i].name for i in part.train_ids} & held_out
    inside = points_within(part.points, wide_plan.axes, block.bounds)
    assert int(inside.sum()) == int(points_within(scene.points, wide_plan.axes, block.bounds).sum())
    assert 0 < int((~inside).sum()) <= 0.25 * int(inside.sum())  # a thin context beyond the bounds
    with pytest.raises(BlockPlanError, match="no block 7"):
        block_scene(scene, wide_plan, 7, eval_every_nth_image=8)


def test_a_plan_for_another_reconstruction_is_refused(wide_truth, wide_plan):
    from spaceport_train.data import load_scene

    scene = load_scene(wide_truth)
    block = wide_plan.blocks[0]
    foreign = wide_plan.model_copy(update={"blocks": [block.model_copy(update={"cameras": ["elsewhere.jpg"]})]})
    with pytest.raises(BlockPlanError, match="belongs to another"):
        block_scene(scene, foreign, block.index, eval_every_nth_image=8)


def test_the_merge_keeps_each_gaussian_from_the_owner_of_its_place_only(wide_plan):
    south, north = sorted(wide_plan.blocks, key=lambda block: block.bounds.v_min)
    seam = south.core.v_max
    # Both blocks trained the overlap: each holds Gaussians on both sides of the seam, and far away.
    ys = [seam - 30.0, seam - 1.0, seam - 1e-6, seam, seam + 1.0, seam + 30.0, -1e5, 1e5]
    blocks = {}
    for block, colour in ((south, 0.1), (north, 0.9)):
        splats = Splats.empty(len(ys))
        splats.means[:, 1] = ys
        splats.sh0[:] = colour
        blocks[block.index] = splats
    merged, kept = merge_blocks(wide_plan, blocks)
    assert len(merged) == len(ys)  # the overlap is drawn once
    order = np.argsort(merged.means[:, 1])
    colours = merged.sh0[order, 0]
    below = np.sort(merged.means[:, 1].astype(np.float64)) < seam
    assert np.all(colours[below] == 0.1) and np.all(colours[~below] == 0.9)
    assert kept == {south.index: int(below.sum()), north.index: int((~below).sum())}


def test_blocks_of_different_sh_degrees_merge_at_the_highest(wide_plan):
    south, north = sorted(wide_plan.blocks, key=lambda block: block.bounds.v_min)
    low = Splats.empty(2, sh_degree=1)
    low.means[:, 1] = south.core.v_max - 5.0
    high = Splats.empty(2, sh_degree=3)
    high.means[:, 1] = north.core.v_min + 5.0
    high.shN[:] = 0.5
    merged, _ = merge_blocks(wide_plan, {south.index: low, north.index: high})
    assert merged.sh_degree == 3 and np.all(merged.shN[:2] == 0.0) and np.all(merged.shN[2:] == 0.5)
    with pytest.raises(MergeError, match=r"Blocks \[1\]"):
        merge_blocks(wide_plan, {south.index: low})


def test_owned_matches_the_training_side_selection(wide_plan):
    block = wide_plan.blocks[1]
    rng = np.random.default_rng(0)
    means = rng.uniform(-80, 80, (500, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        owned(means, wide_plan.axes, block.core), points_within(torch.from_numpy(means), wide_plan.axes, block.core)
    )


def test_merge_job_reads_the_blocks_folders_and_writes_the_training_job_s_outputs(tmp_path, wide_plan):
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(wide_plan.model_dump_json())
    south, north = sorted(wide_plan.blocks, key=lambda block: block.bounds.v_min)
    for block, v, psnr in ((south, south.core.v_max - 2.0, 20.0), (north, north.core.v_min + 2.0, 30.0)):
        # As the merge job's manifest lays them out: <run>/blocks/<block>/outputs/.
        folder = tmp_path / "in" / "r1" / "blocks" / block_name(block.index) / "outputs"
        splats = splats_at([0.0, 1.0, 2.0])
        splats.means[:, 1] = v
        write_ply(splats, folder / TrainOutputs.SPLAT)
        metrics = {"psnr": psnr, "eval_images": 1 if block is south else 3, "steps": 40, "total_wall_s": 5.0}
        (folder / TrainOutputs.METRICS).write_text(json.dumps({**metrics, "device": "cpu", "preset": "quick"}))
    assert set(find_block_outputs(tmp_path / "in")) == {south.index, north.index}
    report = merge_job(plan_path, tmp_path / "in", tmp_path / "out")
    assert len(read_ply(tmp_path / "out" / TrainOutputs.SPLAT)) == report["num_gaussians"] == 6
    assert report["psnr"] == pytest.approx((20.0 + 3 * 30.0) / 4) and report["steps"] == 80
    assert json.loads((tmp_path / "out" / TrainOutputs.METRICS).read_text())["merged_blocks"] == 2


def test_merge_job_explains_a_missing_block_in_its_report(tmp_path, wide_plan):
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(wide_plan.model_dump_json())
    write_ply(splats_at([0.0]), tmp_path / "in" / block_name(0) / TrainOutputs.SPLAT)
    write_ply(splats_at([0.0]), tmp_path / "in" / "r2" / block_name(0) / TrainOutputs.SPLAT)
    with pytest.raises(MergeError, match="two splats"):
        merge_job(plan_path, tmp_path / "in", tmp_path / "out")
    (tmp_path / "in" / "r2" / block_name(0) / TrainOutputs.SPLAT).unlink()
    exit_code = spaceport_main(["merge", str(plan_path), str(tmp_path / "in"), str(tmp_path / "out")])
    assert exit_code == MergeError.exit_code
    report = json.loads((tmp_path / "out" / TrainOutputs.METRICS).read_text())
    assert report["error"]["code"] == "merge_failed" and "Block 1" in report["error"]["message"]
    with pytest.raises(BlockPlanError):
        read_plan(tmp_path / "in" / block_name(0) / TrainOutputs.SPLAT)


@pytest.mark.slow
def test_blocks_trained_from_the_plan_merge_into_one_splat(tmp_path, wide_truth, wide_plan):
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(wide_plan.model_dump_json())
    for block in wide_plan.blocks:
        out = tmp_path / "blocks" / block_name(block.index)
        settings = ["--preset", "quick", "--steps", "15", "--device", "cpu", "--eval-every", "15"]
        argv = ["train", str(wide_truth), str(out), *settings, "--block-plan", str(plan_path), "--block"]
        assert spaceport_main([*argv, str(block.index)]) == 0
        metrics = json.loads((out / TrainOutputs.METRICS).read_text())
        assert metrics["block"]["index"] == block.index and metrics["block"]["cameras"] == len(block.cameras)
    assert spaceport_main(["merge", str(plan_path), str(tmp_path / "blocks"), str(tmp_path / "merged")]) == 0
    merged = read_ply(tmp_path / "merged" / TrainOutputs.SPLAT)
    trained = [read_ply(tmp_path / "blocks" / block_name(b.index) / TrainOutputs.SPLAT) for b in wide_plan.blocks]
    assert len(merged) < sum(len(splats) for splats in trained)  # the overlaps went
    for block in wide_plan.blocks:
        assert owned(merged.means, wide_plan.axes, block.core).any()
