"""k-means in torch (CPU or CUDA): the shN palette and the 256-entry codebooks of SOG.

Example::

    centroids, labels = kmeans(torch.randn(1000, 45), k=64, seed=0)      # [64, 45], [1000]
    codebook, labels = kmeans_1d(torch.randn(30000), k=256)                # [256] ascending, [30000]
"""

from __future__ import annotations

import torch
from torch import Tensor

# Rows of the distance matrix computed at once; bounds memory at about 64 MB of float32.
_CHUNK_ELEMENTS = 16 * 1024 * 1024


def nearest(points: Tensor, centroids: Tensor) -> Tensor:
    """Index ``[N]`` of the nearest of ``centroids`` ``[K, D]`` for every row of ``points`` ``[N, D]``."""
    rows = max(1, _CHUNK_ELEMENTS // max(1, centroids.shape[0]))
    centroid_norms = (centroids * centroids).sum(1)
    labels = torch.empty(points.shape[0], dtype=torch.long, device=points.device)
    for start in range(0, points.shape[0], rows):
        chunk = points[start : start + rows]
        # ||p - c||^2 = ||p||^2 - 2 p.c + ||c||^2; the first term does not change the argmin.
        labels[start : start + rows] = (centroid_norms - 2.0 * chunk @ centroids.T).argmin(1)
    return labels


def kmeans(points: Tensor, k: int, iterations: int = 10, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means of ``points`` ``[N, D]`` into ``k`` clusters: ``(centroids [k', D], labels [N])``.

    Starts from ``k`` distinct points drawn at random (``k' = min(k, N)``); a cluster that loses
    all its points keeps its centroid, so labels always index a real centroid.
    """
    points = points.to(torch.float32)
    n = points.shape[0]
    k = max(1, min(k, n))
    generator = torch.Generator().manual_seed(seed)
    centroids = points[torch.randperm(n, generator=generator)[:k].to(points.device)].clone()
    labels = nearest(points, centroids)
    for _ in range(iterations):
        sums = torch.zeros_like(centroids).index_add_(0, labels, points)
        counts = torch.bincount(labels, minlength=k).to(points.dtype)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
        new_labels = nearest(points, centroids)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
    return centroids, labels


def kmeans_1d(values: Tensor, k: int = 256, iterations: int = 20) -> tuple[Tensor, Tensor]:
    """Optimal-ish scalar codebook: ``(codebook [k] ascending, labels [N])`` minimising squared error.

    In one dimension the clusters are intervals of the sorted values, so each Lloyd step is a
    ``searchsorted`` on the midpoints plus interval means from a cumulative sum: O(N log k).
    Starts from quantiles. Fewer distinct values than ``k`` give an exact codebook (padded by
    repeating the largest entry, so the codebook always has ``k`` entries).
    """
    flat = values.reshape(-1).to(torch.float64)
    ordered, _ = flat.sort()
    distinct = torch.unique_consecutive(ordered)
    if distinct.numel() <= k:
        codebook = torch.cat([distinct, distinct[-1:].expand(k - distinct.numel())])
        return codebook.to(torch.float32), torch.searchsorted(distinct, flat)
    prefix = torch.cat([ordered.new_zeros(1), ordered.cumsum(0)])
    quantiles = torch.linspace(0, 1, k, dtype=torch.float64, device=flat.device)
    codebook = torch.quantile(ordered, quantiles) if ordered.numel() <= 16_000_000 else ordered[
        (quantiles * (ordered.numel() - 1)).long()]
    for _ in range(iterations):
        bounds = torch.searchsorted(ordered, (codebook[1:] + codebook[:-1]) / 2)
        starts = torch.cat([bounds.new_zeros(1), bounds])
        ends = torch.cat([bounds, bounds.new_full((1,), ordered.numel())])
        sizes = ends - starts
        means = (prefix[ends] - prefix[starts]) / sizes.clamp_min(1)
        updated = torch.where(sizes > 0, means, codebook).sort().values
        if torch.equal(updated, codebook):
            break
        codebook = updated
    codebook = codebook.to(torch.float32)
    return codebook, nearest_1d(flat, codebook)


def nearest_1d(values: Tensor, codebook: Tensor) -> Tensor:
    """Index ``[N]`` of the nearest entry of an ascending ``codebook`` ``[K]`` for each value."""
    codebook = codebook.to(torch.float64)
    values = values.reshape(-1).to(torch.float64)
    upper = torch.searchsorted(codebook, values).clamp(1, codebook.numel() - 1)
    lower = upper - 1
    take_lower = (values - codebook[lower]).abs() <= (codebook[upper] - values).abs()
    return torch.where(take_lower, lower, upper)
