"""Which splat goes to which texture pixel: Morton order, or PLAS on the splats' attributes.

SOG leaves the order free; neighbouring pixels that hold similar splats make smoother textures,
which lossless WebP stores in fewer bytes. Both give the splat index of each pixel:

>>> means = np.array([[1.0, 1, 1], [0, 0, 0], [1, 0, 0], [0, 1, 0]])
>>> morton_order(means).tolist()
[1, 2, 3, 0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from spaceport.splats import Splats
from spaceport_compress.plas import sort_with_plas
from spaceport_compress.sog import grid_shape

ORDERS = ("plas", "morton")
MORTON_BITS = 10  # per axis: 30-bit codes


def morton_order(means: np.ndarray) -> np.ndarray:
    """Indices ``[N]`` that sort ``means`` ``[N, 3]`` along a Z-order curve over their bounding box."""
    lo, hi = means.min(0), means.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    cells = np.clip(((means - lo) / span * (2**MORTON_BITS - 1)).round(), 0, 2**MORTON_BITS - 1).astype(np.uint64)
    codes = np.zeros(len(means), np.uint64)
    for bit in range(MORTON_BITS):
        for axis in range(3):
            codes |= ((cells[:, axis] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(3 * bit + axis)
    return np.argsort(codes, kind="stable")


def morton_order_in_parts(means: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Indices ``[N]``: each of the consecutive parts of ``sizes`` points in its own Morton order.

    >>> morton_order_in_parts(np.array([[1.0, 0, 0], [0, 0, 0], [5, 5, 5], [4, 4, 4]]), [2, 2]).tolist()
    [1, 0, 3, 2]
    """
    bounds = np.cumsum([0, *sizes])
    parts = [bounds[p] + morton_order(means[bounds[p] : bounds[p + 1]]) for p in range(len(sizes))]
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def sort_features(splats: Splats, position_weight: float = 8.0) -> np.ndarray:
    """The attributes PLAS compares, ``[N, 14]``, each standardised, positions times ``position_weight``.

    Positions weigh most because the high position bytes compress well only where neighbouring
    pixels hold nearby splats (what each weight costs is in docs/BENCHMARKS.md); quaternions are
    put in the sign convention SOG stores (largest component positive).
    """
    quats = splats.quats / np.maximum(np.linalg.norm(splats.quats, axis=1, keepdims=True), 1e-12)
    largest = np.abs(quats).argmax(1)
    quats = quats * np.where(quats[np.arange(len(quats)), largest] < 0, -1.0, 1.0)[:, None]
    columns = np.concatenate(
        [
            splats.means,
            splats.log_scales,
            quats,
            splats.opacity_logits[:, None],
            splats.sh0,
        ],
        axis=1,
    ).astype(np.float64)
    std = columns.std(0)
    features = (columns - columns.mean(0)) / np.where(std > 0, std, 1.0)
    features[:, :3] *= position_weight
    return np.asarray(features, np.float32)


@dataclass(frozen=True)
class PlasSettings:
    """How the splats are sorted by PLAS (see :func:`~spaceport_compress.plas.sort_with_plas`)."""

    seed: int = 0
    improvement_break: float = 1e-4
    min_block_size: int = 4
    start_radius: float | None = None
    steps_per_level: int = 10
    position_weight: float = 8.0
    device: str = "cpu"


def plas_order(splats: Splats, settings: PlasSettings = PlasSettings()) -> np.ndarray:
    """Indices ``[N]``: splats laid out on the SOG texture grid by PLAS, real pixels first.

    The grid starts in Morton order (a good first guess); the padding cells at the end of the
    last row are pinned, so after sorting the real splats still fill the first N pixels.
    """
    return plas_order_in_parts(splats, [len(splats)], settings)


def plas_order_in_parts(splats: Splats, sizes: list[int], settings: PlasSettings = PlasSettings()) -> np.ndarray:
    """Indices ``[N]`` for a texture whose pixels hold consecutive parts of ``sizes`` splats
    (the leaves of a streamed chunk): PLAS over the whole texture, each part kept in its range.

    Each part starts in its own Morton order; cells of different parts never trade places, so
    part ``p`` still fills pixels ``sum(sizes[:p])`` to ``sum(sizes[:p + 1])``.
    """
    n = len(splats)
    start = morton_order_in_parts(splats.means, sizes)
    width, height = grid_shape(n)
    if n < 8 or width * height < 16:
        return start
    features = sort_features(splats, settings.position_weight)[start]
    cells = np.concatenate([features, np.repeat(features[-1:], width * height - n, axis=0)])
    grid = torch.from_numpy(cells.T.copy()).view(-1, height, width).to(settings.device)
    pinned = torch.zeros(height * width, dtype=torch.bool)
    pinned[n:] = True
    regions = torch.zeros(height * width, dtype=torch.int32)
    regions[:n] = torch.from_numpy(np.repeat(np.arange(len(sizes), dtype=np.int32), sizes))
    _, indices = sort_with_plas(
        grid,
        min_block_size=settings.min_block_size,
        improvement_break=settings.improvement_break,
        seed=settings.seed,
        fixed=pinned.view(height, width),
        regions=regions.view(height, width),
        start_radius=settings.start_radius,
        steps_per_level=settings.steps_per_level,
    )
    cell_order = indices.reshape(-1).cpu().numpy()[:n]
    return np.asarray(start[cell_order])
