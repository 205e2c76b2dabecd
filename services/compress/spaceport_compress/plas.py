"""Parallel Linear Assignment Sorting (PLAS), the project's own implementation.

Written from the description in Morgenstern et al., "Compact 3D Scene Representation via
Self-Organizing Gaussian Grids" (ECCV 2024): a grid of vectors is made smooth by repeatedly
blurring it into a target and then, inside blocks, trying every permutation of random groups of
four positions and keeping the one that brings the group closest (squared L2) to the target.
The blur radius and the block size shrink from coarse to fine.

Everything is vectorised over all blocks and groups at once, so one swap step is a handful of
tensor operations on CPU or CUDA.

Example::

    grid = torch.rand(3, 64, 64)
    sorted_grid, indices = sort_with_plas(grid, seed=0)
    assert torch.equal(sorted_grid, grid.flatten(1)[:, indices.flatten()].view(3, 64, 64))
"""

from __future__ import annotations

import itertools
import logging
import math

import torch
import torch.nn.functional as F
from torch import Tensor

logger = logging.getLogger("spaceport.compress")

BORDER_TYPES = {"circular": "circular", "reflect": "reflect", "replicate": "replicate"}

# All 24 orderings of a group of four: row k says where each of the four elements goes.
# Row 0 is the identity, so ties keep the grid as it is.
_PERMUTATIONS_4 = torch.tensor(list(itertools.permutations(range(4))), dtype=torch.long)

# How much the blur radius shrinks from one level to the next.
RADIUS_DECAY = 0.7
# The finest levels decide the final smoothness, so they may take more steps.
FINE_LEVEL_BOOST = 4.0
# The block side, in blur radii (then rounded up to a power of two).
BLOCK_PER_RADIUS = 1.0
# A level stops after this many swap steps even if it is still improving.
MAX_STEPS_PER_LEVEL = 30


def blur(grid: Tensor, radius: float, border_type_x: str = "circular", border_type_y: str = "reflect") -> Tensor:
    """Box-blur ``grid`` ``[C, H, W]`` with a (2r+1)-wide window, borders as given; same shape out.

    A box filter through cumulative sums costs the same at every radius, which keeps the coarse
    levels (radius in the hundreds) as cheap as the fine ones.
    """
    _, height, width = grid.shape
    ry = max(0, min(int(round(radius)), height - 1))
    rx = max(0, min(int(round(radius)), width - 1))
    out = grid.unsqueeze(0)
    if rx:
        out = _box_1d(F.pad(out, (rx, rx, 0, 0), mode=BORDER_TYPES[border_type_x]), rx, dim=3)
    if ry:
        out = _box_1d(F.pad(out, (0, 0, ry, ry), mode=BORDER_TYPES[border_type_y]), ry, dim=2)
    return out.squeeze(0)


def _box_1d(padded: Tensor, radius: int, dim: int) -> Tensor:
    sums = padded.cumsum(dim)
    window = 2 * radius + 1
    head = sums.narrow(dim, window - 1, 1)
    tail = sums.narrow(dim, window, sums.shape[dim] - window) - sums.narrow(dim, 0, sums.shape[dim] - window)
    return torch.cat([head, tail], dim=dim) / window


def random_groups(height: int, width: int, block_size: int, generator: torch.Generator, device) -> Tensor:
    """Flat grid positions ``[G, 4]``: random groups of four, each inside one square block.

    The block tiling is shifted by a random (wrapping) offset every call, so that blocks do not
    always split the grid along the same lines; leftover rows/columns sit out one step.
    """
    bh, bw = min(block_size, height), min(block_size, width)
    offset_y = int(torch.randint(height, (1,), generator=generator))
    offset_x = int(torch.randint(width, (1,), generator=generator))
    positions = torch.arange(height * width).view(height, width).roll((offset_y, offset_x), dims=(0, 1))
    blocks_y, blocks_x = height // bh, width // bw
    positions = positions[: blocks_y * bh, : blocks_x * bw]
    positions = positions.reshape(blocks_y, bh, blocks_x, bw).permute(0, 2, 1, 3).reshape(blocks_y * blocks_x, bh * bw)
    # One shuffle shared by all blocks: the random block offset already varies the groups.
    shuffle = torch.randperm(positions.shape[1], generator=generator)
    positions = positions[:, shuffle].to(device)
    usable = positions.shape[1] - positions.shape[1] % 4
    return positions[:, :usable].reshape(-1, 4)


def _permutation_matrix(dtype: torch.dtype, device) -> Tensor:
    """``[16, 24]`` 0/1: column k picks the (element, slot) pairs of permutation k from a flat 4x4."""
    matrix = torch.zeros(16, 24, dtype=dtype, device=device)
    rows = (torch.arange(4) * 4 + _PERMUTATIONS_4).to(device)  # [24, 4]
    matrix[rows, torch.arange(24, device=device)[:, None].expand(24, 4)] = 1
    return matrix


def swap_step(values: Tensor, target: Tensor, groups: Tensor, fixed: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One PLAS step on flat ``values`` ``[C, N]`` towards ``target`` ``[C, N]``.

    For every group of four positions (``groups`` ``[G, 4]``) all 24 permutations are scored by
    the squared L2 distance of the moved values to the target, and the best one is applied:
    element ``i`` of a group moves to position ``groups[g, perm[i]]``. Positions marked in
    ``fixed`` ``[N]`` keep their element.

    Returns ``source`` ``[N]`` (the new grid is ``values[:, source]``) and the decrease of the
    total squared distance to the target (never negative).
    """
    x = values[:, groups]  # [C, G, 4]
    t = target[:, groups]  # [C, G, 4]
    # ||x_i - t_j||^2 summed over a permutation differs from -2 x_i.t_j only by a constant.
    gain = (x.unsqueeze(3) * t.unsqueeze(2)).sum(0)  # [G, 4, 4]: element i placed at slot j
    if fixed is not None:
        pinned = fixed[groups].to(gain.dtype)  # [G, 4]
        off_diagonal = 1.0 - torch.eye(4, dtype=gain.dtype, device=gain.device)
        gain = gain - pinned[:, :, None] * off_diagonal * torch.finfo(gain.dtype).max / 8
    perms = _PERMUTATIONS_4.to(groups.device)
    scores = gain.reshape(-1, 16) @ _permutation_matrix(gain.dtype, gain.device)  # [G, 24]
    best = scores.argmax(dim=1)
    improvement = 2.0 * (scores.gather(1, best[:, None]).squeeze(1) - scores[:, 0]).sum()
    chosen = perms[best]  # [G, 4]
    destinations = groups.gather(1, chosen)
    source = torch.arange(values.shape[1], device=values.device)
    source[destinations.reshape(-1)] = groups.reshape(-1)
    return source, improvement


def sort_with_plas(
    params: Tensor,
    min_block_size: int = 16,
    min_blur_radius: float = 1,
    improvement_break: float = 1e-5,
    border_type_x: str = "circular",
    border_type_y: str = "reflect",
    seed: int | None = None,
    verbose: bool = False,
    *,
    fixed: Tensor | None = None,
    start_radius: float | None = None,
    steps_per_level: int = MAX_STEPS_PER_LEVEL,
) -> tuple[Tensor, Tensor]:
    """Sort ``params`` ``[C, H, W]`` so that neighbouring cells hold similar vectors.

    Returns ``(sorted_params [C, H, W], indices [1, H, W])`` with
    ``sorted_params.flatten(1) == params.flatten(1)[:, indices.flatten()]``, the call that
    gsplat's ``compression/sort.py`` makes. ``fixed`` ``[H, W]`` (bool, optional) pins cells
    in place, e.g. the padding at the end of a texture. ``start_radius`` (default half the
    longer side) and ``steps_per_level`` trade quality for time: a grid that is already roughly
    ordered needs only the fine levels.
    """
    if params.ndim != 3:
        raise ValueError(f"params must be [C, H, W], got shape {tuple(params.shape)}")
    for name, value in (("border_type_x", border_type_x), ("border_type_y", border_type_y)):
        if value not in BORDER_TYPES:
            raise ValueError(f"{name} must be one of {sorted(BORDER_TYPES)}, got {value!r}")
    channels, height, width = params.shape
    device = params.device
    generator = torch.Generator()
    if seed is None:
        generator.seed()  # a fresh random seed, leaving torch's global generator alone
    else:
        generator.manual_seed(seed)
    values = params.reshape(channels, -1).clone()
    order = torch.arange(height * width, device=device)
    pinned = fixed.reshape(-1).to(device=device, dtype=torch.bool) if fixed is not None else None
    if height * width < 4:
        return values.view_as(params), order.view(1, height, width)

    # One thread: a step is a few dozen small tensor operations, and on a shared 2-core CPU the
    # thread hand-offs cost more than they save (measured 5x slower with two threads).
    threads = torch.get_num_threads()
    if params.device.type == "cpu":
        torch.set_num_threads(1)
    try:
        values, order, steps = _sort_levels(values, order, (channels, height, width), min_block_size, min_blur_radius,
                                            improvement_break, border_type_x, border_type_y, generator, pinned,
                                            start_radius, steps_per_level, verbose)
    finally:
        torch.set_num_threads(threads)
    if verbose:
        logger.info("plas done: %d swap steps", steps)
    return values.view(channels, height, width), order.view(1, height, width)


def _sort_levels(values, order, shape, min_block_size, min_blur_radius, improvement_break, border_type_x,
                 border_type_y, generator, pinned, start_radius, steps_per_level, verbose):
    """The coarse-to-fine loop of :func:`sort_with_plas`; returns ``(values, order, swap steps)``."""
    channels, height, width = shape
    device = values.device
    steps = 0
    for radius in blur_radii(start_radius or max(height, width) / 2.0, min_blur_radius):
        block_size = max(min_block_size, 2 ** math.ceil(math.log2(max(1.0, BLOCK_PER_RADIUS * radius))))
        level_steps = 0
        while level_steps < steps_per_level * max(1.0, FINE_LEVEL_BOOST / radius):
            grid = values.view(channels, height, width)
            target = blur(grid, radius, border_type_x, border_type_y).reshape(channels, -1)
            distance = float(((values - target) ** 2).sum())
            groups = random_groups(height, width, block_size, generator, device)
            source, improvement = swap_step(values, target, groups, pinned)
            values, order = values[:, source], order[source]
            level_steps += 1
            if distance <= 0 or float(improvement) / distance < improvement_break:
                break
        steps += level_steps
        if verbose:
            logger.info("plas radius %d block %d: %d steps, distance %.4g", radius, block_size, level_steps, distance)
    return values, order, steps


def blur_radii(start: float, smallest: float) -> list[int]:
    """The coarse-to-fine blur radii: ``start`` shrinking by :data:`RADIUS_DECAY`, whole and distinct."""
    radii, radius = [], start
    while True:
        whole = max(1, int(round(max(radius, smallest))))
        if not radii or whole < radii[-1]:
            radii.append(whole)
        if radius <= smallest:
            return radii
        radius *= RADIUS_DECAY


def neighbour_variance(grid: Tensor) -> float:
    """VAD of ``grid`` ``[C, H, W]``: the variance of absolute neighbour differences, mean of x and y."""
    grid = grid.to(torch.float64)
    dx = (grid[:, :, 1:] - grid[:, :, :-1]).abs()
    dy = (grid[:, 1:, :] - grid[:, :-1, :]).abs()
    return float((dx.var() + dy.var()) / 2)
