"""PLAS: the swap step never moves away from the target, sorting restores smoothness."""

from __future__ import annotations

import logging
import re

import pytest
import torch
import torch.nn.functional as F

from spaceport_compress.plas import (
    SWAPS_PER_TARGET,
    blur,
    blur_radii,
    neighbour_variance,
    random_groups,
    sort_with_plas,
    swap_step,
)


def _distance(values: torch.Tensor, target: torch.Tensor) -> float:
    return float(((values - target) ** 2).sum())


@pytest.mark.parametrize("seed", range(5))
def test_swap_step_never_increases_the_distance_to_the_target(seed):
    generator = torch.Generator().manual_seed(seed)
    channels, height, width = 3, 24, 32
    original = torch.rand(channels, height * width, generator=generator, dtype=torch.float64)
    values, order = original.clone(), torch.arange(height * width)
    target = blur(values.view(channels, height, width), 3).reshape(channels, -1)
    for _ in range(10):
        before = _distance(values, target)
        improvement = swap_step(values, order, target, random_groups(height, width, 8, generator, "cpu"))
        after = _distance(values, target)
        assert after <= before + 1e-9
        # The reported improvement is the real one: the scored permutation was applied, not its inverse.
        assert before - after == pytest.approx(float(improvement), rel=1e-6, abs=1e-9)
        assert torch.equal(values, original[:, order])
    assert torch.equal(order.sort().values, torch.arange(height * width))
    assert _distance(values, target) < _distance(original, target)


def test_swap_step_applies_a_three_cycle_in_the_scored_direction():
    # One group whose best arrangement is a 3-cycle, which is not its own inverse.
    values = torch.tensor([[1.0, 2.0, 3.0, 10.0]], dtype=torch.float64)
    target = torch.tensor([[2.0, 3.0, 1.0, 10.0]], dtype=torch.float64)
    before = _distance(values, target)
    order = torch.arange(4)
    improvement = swap_step(values, order, target, torch.tensor([[0], [1], [2], [3]]))
    assert values.tolist() == target.tolist() and order.tolist() == [1, 2, 0, 3]
    assert float(improvement) == pytest.approx(before)


def test_groups_are_disjoint_and_each_inside_one_block():
    generator = torch.Generator().manual_seed(5)
    groups = random_groups(20, 24, 8, generator, "cpu")
    assert groups.shape == (4, 2 * 3 * 64 // 4)
    assert len(groups.unique()) == groups.numel()
    rows, cols = groups // 24, groups % 24
    # Inside one 8x8 block of a (wrapping) shifted tiling: spans stay under 8 modulo the grid.
    for coords, size in ((rows, 20), (cols, 24)):
        span = (coords - coords[:1]) % size
        assert bool(((span < 8) | (span > size - 8)).all())


def test_pinned_cells_keep_their_element():
    generator = torch.Generator().manual_seed(1)
    values = torch.rand(2, 64, generator=generator, dtype=torch.float64)
    original = values.clone()
    target = torch.rand(2, 64, generator=generator, dtype=torch.float64)
    fixed = torch.zeros(64, dtype=torch.bool)
    fixed[::3] = True
    order = torch.arange(64)
    swap_step(values, order, target, random_groups(8, 8, 8, generator, "cpu"), fixed)
    assert torch.equal(order[fixed], torch.arange(64)[fixed])
    assert not torch.equal(order, torch.arange(64))
    assert torch.equal(values, original[:, order])


@pytest.mark.parametrize("radius", [1, 3, 4, 9, 40])
@pytest.mark.parametrize("borders", [("circular", "reflect"), ("reflect", "circular"), ("replicate", "replicate")])
def test_blur_is_the_box_mean_with_the_given_borders(radius, borders):
    grid = torch.rand(2, 11, 14, generator=torch.Generator().manual_seed(radius), dtype=torch.float64)
    rx, ry = min(radius, 13), min(radius, 10)
    padded = F.pad(F.pad(grid[None], (rx, rx, 0, 0), mode=borders[0]), (0, 0, ry, ry), mode=borders[1])
    expected = F.avg_pool2d(padded, (2 * ry + 1, 2 * rx + 1), stride=1)[0]
    assert torch.allclose(blur(grid, radius, *borders), expected)


def test_improvement_break_stops_levels_early(caplog):
    grid = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(6))
    steps = {}
    for improvement_break in (0.0, 0.5):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="spaceport.compress"):
            sort_with_plas(grid, seed=0, min_block_size=4, improvement_break=improvement_break, verbose=True)
        steps[improvement_break] = int(re.search(r"plas done: (\d+) swap steps", caplog.text).group(1))
    # A relative improvement of half the distance per step is never reached: one target per level.
    levels = len(blur_radii(16, 1))
    assert steps[0.5] == levels * SWAPS_PER_TARGET < steps[0.0]


def _smooth_image(size: int) -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    return torch.stack([x, y, (x + y) / 2]) * 255


def test_sorting_a_shuffled_smooth_image_restores_low_neighbour_distance():
    image = _smooth_image(48)
    shuffle = torch.randperm(48 * 48, generator=torch.Generator().manual_seed(0))
    shuffled = image.reshape(3, -1)[:, shuffle].view(3, 48, 48)
    sorted_image, indices = sort_with_plas(shuffled, seed=0, improvement_break=1e-4, min_block_size=4)
    assert neighbour_variance(shuffled) > 1000
    assert neighbour_variance(sorted_image) < 0.05 * neighbour_variance(shuffled)
    assert torch.equal(sorted_image.reshape(3, -1), shuffled.reshape(3, -1)[:, indices.reshape(-1)])


def test_indices_are_a_permutation_and_shapes_match_the_reference_api():
    grid = torch.rand(5, 20, 30, generator=torch.Generator().manual_seed(2))
    sorted_grid, indices = sort_with_plas(grid, seed=3)
    assert sorted_grid.shape == grid.shape and indices.shape == (1, 20, 30)
    assert torch.equal(indices.reshape(-1).sort().values, torch.arange(600))


def test_same_seed_same_result_and_other_seed_differs():
    grid = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(4))
    first = sort_with_plas(grid, seed=7)[1]
    assert torch.equal(first, sort_with_plas(grid, seed=7)[1])
    assert not torch.equal(first, sort_with_plas(grid, seed=8)[1])


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="C, H, W"):
        sort_with_plas(torch.rand(16, 16))
    with pytest.raises(ValueError, match="border_type_x"):
        sort_with_plas(torch.rand(3, 16, 16), border_type_x="mirror")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_plas_on_cuda_sorts_and_returns_a_permutation():
    grid = _smooth_image(32).reshape(3, -1)[:, torch.randperm(1024, generator=torch.Generator().manual_seed(0))]
    sorted_grid, indices = sort_with_plas(grid.view(3, 32, 32).cuda(), seed=0, min_block_size=4)
    assert sorted_grid.is_cuda and torch.equal(indices.reshape(-1).sort().values.cpu(), torch.arange(1024))
    assert neighbour_variance(sorted_grid.cpu()) < 0.1 * neighbour_variance(grid.view(3, 32, 32))
