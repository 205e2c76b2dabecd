"""The block plan: a ground partition whose cores tile the plane, bounds that overlap, cameras by what they see."""

from __future__ import annotations

import itertools
import math

import pytest

from spaceport.contracts.blocks import GPU_PRESET_TRAINING, BlockBudget, BlockPlan, ViewSummary
from spaceport.handlers.block_plan import demo_summary, make_plan


def budget(**changes) -> BlockBudget:
    values = dict(max_gaussians=10**9, max_megapixels=1e9, image_size_px=0, steps=1_000)
    return BlockBudget(**{**values, **changes})


def owners(plan: BlockPlan, u: float, v: float) -> list[int]:
    return [block.index for block in plan.blocks if block.core.contains(u, v)]


def test_a_capture_within_the_budget_is_one_block_owning_the_whole_plane():
    plan = make_plan(demo_summary(), budget())
    [block] = plan.blocks
    assert block.core.model_dump() == {"u_min": None, "v_min": None, "u_max": None, "v_max": None}
    assert len(block.cameras) == 12 and block.predicted == plan.whole
    assert plan.reason.startswith("fits one job")


def test_over_the_budget_the_cores_tile_the_plane_and_each_block_fits(strip_summary):
    summary = strip_summary()
    whole = make_plan(summary, budget()).whole
    plan = make_plan(summary, budget(max_gaussians=whole.gaussians // 3))
    assert len(plan.blocks) >= 3 and not any(block.over_budget for block in plan.blocks)
    assert all(block.predicted.gaussians <= whole.gaussians // 3 for block in plan.blocks)
    # Every place on the ground, in the scene or far outside it, has exactly one owner.
    for u, v in itertools.product((-1e6, -150.0, -99.0, -30.0, 0.0, 0.5, 47.3, 99.9, 1e6), (-1e6, -5.0, 0.0, 1e6)):
        assert len(owners(plan, u, v)) == 1, (u, v)
    # The long side is the one cut: each block spans the strip's whole width.
    assert all(block.core.v_min is None and block.core.v_max is None for block in plan.blocks)


def test_neighbours_overlap_by_the_margin_and_share_the_cameras_over_the_seam(strip_summary):
    summary = strip_summary()
    whole = make_plan(summary, budget()).whole
    plan = make_plan(summary, budget(max_gaussians=int(whole.gaussians * 0.6), margin=0.2))
    left, right = sorted(plan.blocks, key=lambda block: block.bounds.u_min)
    seam = left.core.u_max
    assert seam == right.core.u_min
    assert left.bounds.u_max > seam > right.bounds.u_min
    assert left.bounds.u_max - seam == pytest.approx(0.2 * (seam - left.bounds.u_min) / 1.2, rel=0.05)
    shared = set(left.cameras) & set(right.cameras)
    over_seam = {view.name for view in summary.views if abs(view.centre[0] - seam) < 10.0}
    assert over_seam <= shared
    assert left.predicted.points + right.predicted.points > whole.points  # the overlap is trained twice


def test_cameras_are_chosen_by_what_their_frustum_sees_not_where_they_stand(strip_summary):
    # An oblique camera far west of the strip looking east along it, and one above its west end looking at the sky.
    east = ViewSummary(
        name="oblique.jpg",
        centre=(-160.0, 0.0, 30.0),
        # Looking east and 20 degrees down: camera z = (cos20, 0, -sin20), x = south, y = down-ish.
        rotation=_look(direction=(math.cos(0.35), 0.0, -math.sin(0.35))),
        fx=150.0,
        fy=150.0,
        cx=100.0,
        cy=75.0,
        width=200,
        height=150,
    )
    skyward = ViewSummary(
        name="sky.jpg",
        centre=(-95.0, 0.0, 30.0),
        rotation=_look(direction=(0.0, 0.3, 0.95)),
        fx=150.0,
        fy=150.0,
        cx=100.0,
        cy=75.0,
        width=200,
        height=150,
    )
    summary = strip_summary(extra=(east, skyward))
    whole = make_plan(summary, budget()).whole
    plan = make_plan(summary, budget(max_gaussians=whole.gaussians // 4))
    westmost = min(plan.blocks, key=lambda block: block.bounds.u_min)
    assert "oblique.jpg" in westmost.cameras  # it stands outside every block but sees the west end
    assert not any("sky.jpg" in block.cameras for block in plan.blocks)


def test_pixels_over_the_budget_split_too_unless_splitting_does_not_help(strip_summary):
    summary = strip_summary()
    whole = make_plan(summary, budget()).whole
    plan = make_plan(summary, budget(max_megapixels=whole.megapixels / 2.5))
    assert len(plan.blocks) >= 3 and all(b.predicted.megapixels <= whole.megapixels / 2.5 for b in plan.blocks)
    # A single wide-angle camera that sees everything: no cut lowers its pixels, so the plan stops.
    wide = ViewSummary(
        name="wide.jpg",
        centre=(0.0, 0.0, 400.0),
        rotation=(1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0),
        fx=2000.0,
        fy=2000.0,
        cx=500.0,
        cy=500.0,
        width=1000,
        height=1000,
    )
    lone = strip_summary(cameras=1).model_copy(update={"views": [wide]})
    stuck = make_plan(lone, budget(max_megapixels=0.5))
    assert [block.over_budget for block in stuck.blocks] == [True]
    assert "splitting further does not help" in stuck.reason


def test_the_plan_is_the_same_every_time_and_round_trips_as_json(strip_summary):
    summary = strip_summary()
    chosen = budget(max_gaussians=make_plan(summary, budget()).whole.gaussians // 3)
    plan = make_plan(summary, chosen)
    assert make_plan(summary, chosen) == plan
    assert BlockPlan.model_validate_json(plan.model_dump_json()) == plan


def test_the_gpu_presets_the_predictions_use_are_the_training_jobs():
    from spaceport_train.config import TrainConfig

    for preset, (steps, image_size) in GPU_PRESET_TRAINING.items():
        config = TrainConfig.from_preset(preset, {"device": "cuda"})
        assert (config.steps, config.max_image_size) == (steps, image_size), preset


def _look(direction: tuple[float, float, float]) -> tuple[float, ...]:
    """World-to-camera rotation (OpenCV axes) of a camera looking along ``direction`` with world up above."""
    z = _unit(direction)
    x = _unit(_cross(z, (0.0, 0.0, 1.0)))
    y = _cross(z, x)
    return (*x, *y, *z)


def _cross(a, b):
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _unit(a):
    norm = math.sqrt(sum(x * x for x in a))
    return tuple(x / norm for x in a)
