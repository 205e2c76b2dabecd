"""gsplat's own PLAS sorting (``gsplat.compression.sort.sort_splats``) runs on the project's ``plas``."""

from __future__ import annotations

import torch
from gsplat.compression.sort import sort_splats


def _neighbour_distance(grid: torch.Tensor) -> float:
    """Mean distance between horizontally and vertically adjacent cells of a [H, W, C] grid."""
    return float((grid[1:] - grid[:-1]).norm(dim=-1).mean() + (grid[:, 1:] - grid[:, :-1]).norm(dim=-1).mean())


def test_gsplat_sorts_splats_with_our_plas():
    torch.manual_seed(0)
    side = 24
    # Splats whose attributes vary smoothly with position, in a random order.
    means = torch.rand(side * side, 3)
    splats = {
        "means": means,
        "sh0": means[:, None, :] * 2 - 1,
        "opacities": means.sum(1) / 3,
        "shN": torch.rand(side * side, 3, 3),
    }
    before = {name: value.clone() for name, value in splats.items()}

    sorted_splats = sort_splats(dict(splats), verbose=False)

    # A permutation: every splat is kept whole (all attributes moved together), none lost or duplicated.
    order = torch.cdist(sorted_splats["means"], before["means"]).argmin(1)
    assert sorted(order.tolist()) == list(range(side * side))
    for name in before:
        torch.testing.assert_close(sorted_splats[name], before[name][order])
    sorted_distance = _neighbour_distance(sorted_splats["means"].reshape(side, side, 3))
    assert sorted_distance < 0.5 * _neighbour_distance(before["means"].reshape(side, side, 3))
