"""Parallel Linear Assignment Sorting (PLAS), the project's own implementation.

Written from the description in Morgenstern et al., "Compact 3D Scene Representation via
Self-Organizing Gaussian Grids" (ECCV 2024): a grid of vectors is made smooth by repeatedly
blurring it into a target and then, inside blocks, trying every permutation of random groups of
four positions and keeping the one that brings the group closest (squared L2) to the target.
The blur radius and the block size shrink from coarse to fine.

Everything is vectorised over all blocks and groups at once, so one swap step is a handful of
tensor operations on CPU or CUDA.

>>> grid = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
>>> sorted_grid, indices = sort_with_plas(grid, seed=0)
>>> torch.equal(sorted_grid, grid.flatten(1)[:, indices.flatten()].view(3, 64, 64))
True
>>> neighbour_variance(sorted_grid) < neighbour_variance(grid)
True
"""

from __future__ import annotations

import itertools
import logging
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from spaceport_compress.threads import one_cpu_thread

logger = logging.getLogger("spaceport.compress")

BORDER_TYPES = {"circular": "circular", "reflect": "reflect", "replicate": "replicate"}

# All 24 orderings of a group of four: row k says to which slot each of the four elements goes.
# Row 0 is the identity, so ties keep the grid as it is.
_PERMUTATIONS_4 = torch.tensor(list(itertools.permutations(range(4))), dtype=torch.long)  # [24, 4]

# The schedule below was tuned on random 256^2 and 512^2 grids and the guitar's attributes
# (bench/plas_grids.py; what each alternative measured is in docs/BENCHMARKS.md). The block side
# is the blur radius rounded up to a power of two (at least ``min_block_size``).

# How much the blur radius shrinks from one level to the next.
RADIUS_DECAY = 0.9
# Levels below this radius take proportionally more steps (radius 1: this many times more):
# the finest levels decide the final smoothness.
FINE_LEVEL_BOOST = 16.0
# A level stops after this many swap steps even if it is still improving.
MAX_STEPS_PER_LEVEL = 24
# Swap steps (each with new random groups) against one blurred target before it is blurred
# again: renewing the target every step costs a blur per step, holding it a whole level lets the
# grid overfit one target.
SWAPS_PER_TARGET = 8


def blur(grid: Tensor, radius: float, border_type_x: str = "circular", border_type_y: str = "reflect") -> Tensor:
    """Box-blur ``grid`` ``[C, H, W]`` with a (2r+1)-wide window, borders as given; same shape out.

    A box, not a Gaussian: the box target sorted smoother in the same steps (docs/BENCHMARKS.md).
    Each axis is one pass: shifted sums for small radii, cumulative sums (the same cost at every
    radius) for large ones.
    """
    _, height, width = grid.shape
    ry = max(0, min(int(round(radius)), height - 1))
    rx = max(0, min(int(round(radius)), width - 1))
    out = grid.unsqueeze(0)
    if rx:
        out = _box_sum(out, rx, dim=3, mode=BORDER_TYPES[border_type_x])
    if ry:
        out = _box_sum(out, ry, dim=2, mode=BORDER_TYPES[border_type_y])
    return out.squeeze(0).mul_(1.0 / ((2 * rx + 1) * (2 * ry + 1)))


# Up to this radius a box sum is cheaper as shifted additions than as cumulative sums.
_SHIFTED_SUM_RADIUS = 3


def _box_sum(grid: Tensor, radius: int, dim: int, mode: str) -> Tensor:
    """Sums of ``2 radius + 1`` neighbours along ``dim`` (3: x, 2: y) of ``grid`` ``[1, C, H, W]``."""
    size = grid.shape[dim]
    window = 2 * radius + 1
    if radius <= _SHIFTED_SUM_RADIUS:
        padded = F.pad(grid, (radius, radius, 0, 0) if dim == 3 else (0, 0, radius, radius), mode=mode)
        sums = padded.narrow(dim, 0, size).clone()
        for shift in range(1, window):
            sums += padded.narrow(dim, shift, size)
        return sums
    # One more cell on the low side, so that every window is a difference of two cumulative sums.
    left = min(radius + 1, size - 1) if mode == "reflect" else radius + 1
    padded = F.pad(grid, (left, radius, 0, 0) if dim == 3 else (0, 0, left, radius), mode=mode)
    sums = padded.cumsum(dim)
    start = left - radius - 1
    if start < 0:  # reflect of a grid too short for the extra cell: the first window starts the sums
        first = sums.narrow(dim, window - 1, 1)
        return torch.cat([first, sums.narrow(dim, window, size - 1) - sums.narrow(dim, 0, size - 1)], dim=dim)
    return sums.narrow(dim, start + window, size) - sums.narrow(dim, start, size)


def random_groups(
    height: int, width: int, block_size: int, generator: torch.Generator, device: torch.device | str
) -> Tensor:
    """Flat grid positions ``[4, G]``: random groups of four (column g), each inside one square block.

    The block tiling is shifted by a random (wrapping) offset every call, so that blocks do not
    always split the grid along the same lines; leftover rows/columns sit out one step. One
    shuffle of a block's cells is shared by all blocks: the random offset already varies them.
    """
    bh, bw = min(block_size, height), min(block_size, width)
    offset_y = int(torch.randint(height, (1,), generator=generator))
    offset_x = int(torch.randint(width, (1,), generator=generator))
    per_block = bh * bw - (bh * bw) % 4
    cells = torch.randperm(bh * bw, generator=generator)[:per_block].view(-1, 4).t().to(device)  # [4, M]
    block_rows = torch.arange(0, height - bh + 1, bh, device=device) + offset_y  # [By]
    block_cols = torch.arange(0, width - bw + 1, bw, device=device) + offset_x  # [Bx]
    rows = (block_rows[None, :, None, None] + (cells // bw)[:, None, None, :]) % height  # [4, By, 1, M]
    cols = (block_cols[None, None, :, None] + (cells % bw)[:, None, None, :]) % width  # [4, 1, Bx, M]
    return (rows * width + cols).reshape(4, -1)


# A permutation's gain is kept in the upper bits of its float value and its index in the low
# five, so that one integer max over the 24 rows finds the best (argmax over a dimension this
# short is slow on CPU). Truncating five mantissa bits may prefer a permutation
# within 2^-18 (float32) of the best one, but never one worse than keeping the group as it is.
_INDEX_BITS = 31
_SAME_WIDTH_INT = {torch.float32: torch.int32, torch.float64: torch.int64}


def _score_matrix(dtype: torch.dtype, device: torch.device | str) -> Tensor:
    """``[24, 16]``: row k, applied to a flat 4x4 of element-to-slot gains, is permutation k's gain
    over the identity (row 0 is all zero)."""
    picker = torch.zeros(24, 16, dtype=dtype, device=device)
    picker[torch.arange(24)[:, None], torch.arange(4) * 4 + _PERMUTATIONS_4] = 1
    return picker - picker[:1]


def _best_of(gains: Tensor) -> Tensor:
    """Row ``[G]`` of the highest of ``gains`` ``[24, G]`` (float32/64, row 0 all zero) per column.

    Row 0 wins unless another row is truly positive; among near-equal rows the lowest index wins.
    A positive float's bits, read as an integer, order like the float; a negative one's are
    negative integers, below row 0's key.
    """
    int_type = _SAME_WIDTH_INT[gains.dtype]
    keys = gains.view(int_type).bitwise_and(~_INDEX_BITS)
    keys.bitwise_or_(_INDEX_BITS - torch.arange(gains.shape[0], dtype=int_type, device=gains.device)[:, None])
    return (_INDEX_BITS - (keys.amax(0) & _INDEX_BITS)).long()


def swap_step(
    values: Tensor,
    order: Tensor,
    target: Tensor,
    groups: Tensor,
    pinned: Tensor | None = None,
    regions: Tensor | None = None,
) -> Tensor:
    """One PLAS step, in place: move ``values`` ``[C, N]`` (and ``order`` ``[N]``) towards ``target``.

    For every group of four positions (``groups`` ``[4, G]``) all 24 permutations are scored by
    the squared L2 distance of the moved values to the target, and the best one is applied:
    element ``i`` of group ``g`` moves to position ``groups[perm[i], g]``. Groups that hold a
    position marked in ``pinned`` ``[N]``, or positions of more than one of ``regions`` ``[N]``
    (integer labels), stay as they are.

    Returns the decrease of the total squared distance to the target (a 0-d tensor, never negative).
    """
    channels = values.shape[0]
    flat = groups.reshape(-1)
    moved = values.index_select(1, flat)  # [C, 4G]
    # Half-precision gains would round away the differences between permutations.
    score_type = torch.promote_types(values.dtype, torch.float32)
    x = moved.view(channels, 4, -1).to(score_type)  # [C, 4, G]
    t = target.index_select(1, flat).view(channels, 4, -1).to(score_type)  # [C, 4, G]
    # ||x_i - t_j||^2 summed over a permutation differs from -2 x_i.t_j only by a constant.
    gain = x[0].unsqueeze(1) * t[0].unsqueeze(0)  # [4, 4, G]: element i placed at slot j
    for channel in range(1, channels):
        gain.addcmul_(x[channel].unsqueeze(1), t[channel].unsqueeze(0))
    gains = _score_matrix(gain.dtype, gain.device) @ gain.view(16, -1)  # [24, G]: over the identity
    best = _best_of(gains)
    if pinned is not None:
        best.masked_fill_(pinned.index_select(0, flat).view(4, -1).any(0), 0)
    if regions is not None:
        labels = regions.index_select(0, flat).view(4, -1)
        best.masked_fill_((labels != labels[:1]).any(0), 0)
    improvement = 2.0 * gains.gather(0, best[None]).sum()
    slots = _PERMUTATIONS_4.t().to(groups.device).index_select(1, best)  # [4, G]
    destinations = groups.gather(0, slots).reshape(-1)  # [4G]
    values.index_copy_(1, destinations, moved)
    order.index_copy_(0, destinations, order.index_select(0, flat))
    return improvement


def sort_with_plas(
    params: Tensor,
    min_block_size: int = 4,
    min_blur_radius: float = 1,
    improvement_break: float = 1e-5,
    border_type_x: str = "circular",
    border_type_y: str = "reflect",
    seed: int | None = None,
    verbose: bool = False,
    *,
    fixed: Tensor | None = None,
    regions: Tensor | None = None,
    start_radius: float | None = None,
    steps_per_level: int = MAX_STEPS_PER_LEVEL,
) -> tuple[Tensor, Tensor]:
    """Sort ``params`` ``[C, H, W]`` so that neighbouring cells hold similar vectors.

    Returns ``(sorted_params [C, H, W], indices [1, H, W])`` with
    ``sorted_params.flatten(1) == params.flatten(1)[:, indices.flatten()]``, the call that
    gsplat's ``compression/sort.py`` makes. ``fixed`` ``[H, W]`` (bool, optional) pins cells
    in place, e.g. the padding at the end of a texture; ``regions`` ``[H, W]`` (integer labels,
    optional) keeps every cell in its region: cells of different labels never trade places
    (the chunks of a streamed level, each a range of one texture). ``start_radius`` (default half the
    longer side) and ``steps_per_level`` (swap steps a level at most; levels below radius
    :data:`FINE_LEVEL_BOOST` take proportionally more) trade quality for time: a grid that is
    already roughly ordered needs only the fine levels. The smallest block side,
    ``min_block_size``, is 4 (also for gsplat's call, which leaves it at its default): blocks of
    16 at the finest levels sorted worse, and no faster (docs/BENCHMARKS.md). A level ends early
    once a step improves the distance to its target by less than ``improvement_break`` of it.
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
    # int32 while sorting: half the bytes that every swap step moves.
    order = torch.arange(height * width, device=device, dtype=torch.int32 if height * width < 2**31 else torch.long)
    pinned = fixed.reshape(-1).to(device=device, dtype=torch.bool) if fixed is not None else None
    region_of = regions.reshape(-1).to(device=device) if regions is not None else None
    if height * width < 4:
        return values.view_as(params), order.long().view(1, height, width)

    # One thread: a step is a few dozen memory-bound tensor operations, which a second thread
    # speeds up little on an idle CPU and slows down a lot on a busy one (docs/BENCHMARKS.md).
    with one_cpu_thread(params.device):
        steps = _sort_levels(
            values,
            order,
            (channels, height, width),
            min_block_size,
            min_blur_radius,
            improvement_break,
            border_type_x,
            border_type_y,
            generator,
            pinned,
            region_of,
            start_radius,
            steps_per_level,
            verbose,
        )
    if verbose:
        logger.info("plas done: %d swap steps", steps)
    return values.view(channels, height, width), order.long().view(1, height, width)


def _sort_levels(
    values: Tensor,
    order: Tensor,
    shape: tuple[int, int, int],
    min_block_size: int,
    min_blur_radius: float,
    improvement_break: float,
    border_type_x: str,
    border_type_y: str,
    generator: torch.Generator,
    pinned: Tensor | None,
    regions: Tensor | None,
    start_radius: float | None,
    steps_per_level: int,
    verbose: bool,
) -> int:
    """The coarse-to-fine loop of :func:`sort_with_plas`, in place; returns the number of swap steps."""
    channels, height, width = shape
    device = values.device
    steps = 0
    for radius in blur_radii(start_radius or max(height, width) / 2.0, min_blur_radius):
        block_size = max(min_block_size, 2 ** math.ceil(math.log2(radius)))
        level_budget = int(steps_per_level * max(1.0, FINE_LEVEL_BOOST / radius))
        level_steps = 0
        while level_steps < level_budget:
            target = blur(values.view(channels, height, width), radius, border_type_x, border_type_y)
            target = target.reshape(channels, -1)
            distance = float((values - target).square_().sum())
            swaps = min(SWAPS_PER_TARGET, level_budget - level_steps)
            improvement = 0.0
            for _ in range(swaps):
                groups = random_groups(height, width, block_size, generator, device)
                improvement += float(swap_step(values, order, target, groups, pinned, regions))
            level_steps += swaps
            if distance <= 0 or improvement / (distance * swaps) < improvement_break:
                break
        steps += level_steps
        if verbose:
            logger.info("plas radius %d block %d: %d steps, distance %.4g", radius, block_size, level_steps, distance)
    return steps


def blur_radii(start: float, smallest: float) -> list[int]:
    """The coarse-to-fine blur radii: ``start`` shrinking by :data:`RADIUS_DECAY`, whole and distinct."""
    radii: list[int] = []
    radius = start
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
