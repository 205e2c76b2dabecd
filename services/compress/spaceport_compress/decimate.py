"""Coarser levels of detail: neighbouring Gaussians merged into one that covers what they covered.

The splats are binned into cubic cells, the cell size found by bisection so that about
``ratio * N`` cells are occupied, and the splats of each cell become one Gaussian by moment
matching: the merged mean and covariance are those of the members' mixture, each member
weighted by its opacity times its area (``det(cov) ** (1/3)``, the mean projected area of an
ellipsoid up to a constant). The merged opacity is that of the members seen one behind the
other, ``1 - prod(1 - opacity)``: the merged splat is seen from afar, where the members overlap
on screen (it rendered closer to the full splat than the weighted mean opacity, the largest
one, or the weight spread over the merged area; docs/BENCHMARKS.md). Colour and higher SH
bands are the weighted means. A cell of one splat keeps
that splat as it was, so nothing is dropped and a sparse region stays as sharp as it was.

>>> pair = Splats.empty(2)
>>> pair.means[:] = [[0.0, 0, 0], [0.2, 0, 0]]
>>> pair.log_scales[:] = np.log(0.1)
>>> merged = merge_cells(pair, np.array([0, 0]))
>>> len(merged), np.round(merged.means.astype(float), 6).tolist()
(1, [[0.1, 0.0, 0.0]])
>>> np.round(np.sort(np.exp(merged.log_scales[0].astype(float))), 4).tolist()  # sqrt(0.1^2 + 0.1^2) along x
[0.1, 0.1, 0.1414]
"""

from __future__ import annotations

import numpy as np

from spaceport.splats import Splats
from spaceport_compress.canonical import canonical_orientation, quaternions_from_matrices, rotation_matrices

# Bisection steps for the cell size: each halves the bracket in log space, from a bracket of
# (scene extent / N^(1/3) / 64, scene extent); 30 steps resolve it far below a percent.
CELL_SEARCH_STEPS = 30
# Merged opacity is kept inside the open interval so that its logit stays finite.
OPACITY_LIMIT = 1 - 1e-6
# Eigenvalues are floored relative to the largest so that flat merges keep a finite log scale.
MIN_EIGENVALUE_RATIO = 1e-12


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x.astype(np.float64))))


def covariances(splats: Splats) -> np.ndarray:
    """``[N, 3, 3]`` world-space covariances ``R diag(s^2) R^T`` (float64)."""
    quats = splats.quats.astype(np.float64)
    norms = np.linalg.norm(quats, axis=1, keepdims=True)
    quats = np.where(norms > 0, quats / np.where(norms > 0, norms, 1.0), np.array([1.0, 0, 0, 0]))
    rotations = rotation_matrices(quats)
    variances = np.exp(2 * splats.log_scales.astype(np.float64))
    return np.asarray(np.einsum("nij,nj,nkj->nik", rotations, variances, rotations))


def cell_labels(means: np.ndarray, cell: float) -> tuple[np.ndarray, int]:
    """``(label [N], cells)``: the index of each point's occupied cube of side ``cell``."""
    lo = means.min(0)
    coords = np.floor((means.astype(np.float64) - lo) / cell).astype(np.int64)
    spans = coords.max(0) + 1
    keys = coords[:, 0] + spans[0] * (coords[:, 1] + spans[1] * coords[:, 2])
    _, labels = np.unique(keys, return_inverse=True)
    return labels.reshape(-1), int(labels.max()) + 1 if len(labels) else 0


def cells_for_count(means: np.ndarray, target: int) -> np.ndarray:
    """Cell labels ``[N]`` for the cube size whose occupied cells come nearest to ``target``."""
    n = len(means)
    extent = float((means.max(0) - means.min(0)).max()) or 1.0
    lo, hi = np.log(extent / max(n, 1) ** (1 / 3) / 64), np.log(extent * 2)
    best_labels, best_miss = np.arange(n), abs(n - target)
    for _ in range(CELL_SEARCH_STEPS):
        middle = (lo + hi) / 2
        labels, cells = cell_labels(means, float(np.exp(middle)))
        if abs(cells - target) < best_miss:
            best_labels, best_miss = labels, abs(cells - target)
        if cells == target:
            break
        lo, hi = (middle, hi) if cells > target else (lo, middle)
    return best_labels


def merge_cells(splats: Splats, labels: np.ndarray) -> Splats:
    """One Gaussian per distinct label of ``labels`` ``[N]`` (0..M-1, every one used), by moment matching."""
    cells = int(labels.max()) + 1
    counts = np.bincount(labels, minlength=cells)
    opacity = _sigmoid(splats.opacity_logits)
    cov = covariances(splats)
    area = np.cbrt(np.linalg.det(cov))
    weight = np.maximum(opacity * area, 1e-30)

    def weighted_sum(values: np.ndarray) -> np.ndarray:
        flat = values.reshape(len(values), -1)
        sums = np.zeros((cells, flat.shape[1]))
        for column in range(flat.shape[1]):
            sums[:, column] = np.bincount(labels, weights=weight * flat[:, column], minlength=cells)
        return sums.reshape((cells, *values.shape[1:]))

    total = np.bincount(labels, weights=weight, minlength=cells)
    mean = weighted_sum(splats.means.astype(np.float64)) / total[:, None]
    offsets = splats.means.astype(np.float64) - mean[labels]
    merged_cov = weighted_sum(cov + offsets[:, :, None] * offsets[:, None, :]) / total[:, None, None]
    eigenvalues, eigenvectors = np.linalg.eigh(merged_cov)
    eigenvalues = np.maximum(eigenvalues, eigenvalues[:, -1:] * MIN_EIGENVALUE_RATIO + 1e-30)
    eigenvectors[np.linalg.det(eigenvectors) < 0, :, 0] *= -1  # a rotation, not a reflection
    transparency = np.exp(np.bincount(labels, weights=np.log1p(-np.minimum(opacity, OPACITY_LIMIT)), minlength=cells))
    merged_opacity = np.clip(1 - transparency, 1e-6, OPACITY_LIMIT)
    quats, log_scales = canonical_orientation(quaternions_from_matrices(eigenvectors), 0.5 * np.log(eigenvalues))
    merged = Splats(
        means=mean.astype(np.float32),
        quats=quats,
        log_scales=log_scales.astype(np.float32),
        opacity_logits=np.log(merged_opacity / (1 - merged_opacity)).astype(np.float32),
        sh0=(weighted_sum(splats.sh0.astype(np.float64)) / total[:, None]).astype(np.float32),
        shN=(weighted_sum(splats.shN.astype(np.float64)) / total[:, None, None]).astype(np.float32),
    )
    # A cell of one keeps its splat bit for bit.
    single = counts == 1
    if single.any():
        first = np.full(cells, -1)
        first[labels[::-1]] = np.arange(len(labels))[::-1]
        source = first[single]
        for name in ("means", "quats", "log_scales", "opacity_logits", "sh0", "shN"):
            getattr(merged, name)[single] = getattr(splats, name)[source]
    return merged


def decimate(splats: Splats, ratio: float) -> Splats:
    """About ``ratio * len(splats)`` Gaussians (0 < ratio < 1), each merging the splats of one cell."""
    if not 0 < ratio < 1:
        raise ValueError(f"ratio must be between 0 and 1, got {ratio}")
    target = max(1, int(round(len(splats) * ratio)))
    return merge_cells(splats, cells_for_count(splats.means, target))
