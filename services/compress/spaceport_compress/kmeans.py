"""k-means in torch (CPU or CUDA): the shN palette and the 256-entry codebooks of SOG.

>>> generator = torch.Generator().manual_seed(0)
>>> centroids, labels = kmeans(torch.randn(1000, 45, generator=generator), k=64, seed=0)
>>> tuple(centroids.shape), tuple(labels.shape)
((64, 45), (1000,))
>>> codebook, labels = kmeans_1d(torch.randn(30000, generator=generator), k=256)
>>> tuple(codebook.shape), bool((codebook.diff() >= 0).all()), tuple(labels.shape)
((256,), True, (30000,))
"""

from __future__ import annotations

import torch
from torch import Tensor

from spaceport_compress.threads import one_cpu_thread

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


def kmeans_1d(
    values: Tensor,
    k: int = 256,
    iterations: int = 1000,
    density_power: float = 0.3,
    bins: int = 16384,
    importance: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Scalar codebook ``(codebook [k] ascending, labels [N])`` for ``values`` (any shape).

    A weighted Lloyd's k-means on a histogram: each bin counts ``count ** density_power``, so
    with a power below 1 the sparse tails (large scales, saturated colours) get entries of
    their own instead of being rounded into the dense middle. Bin edges blend uniform and
    quantile spacing, so neither outliers nor a dense core starve the histogram. In one
    dimension clusters are intervals, so each step is a ``searchsorted`` plus segment sums.
    Fewer distinct values than ``k`` give an exact codebook (padded with its largest entry).
    ``importance`` (the shape of ``values``) weighs each value in place of a count of 1.
    """
    flat = values.reshape(-1).to(torch.float64)
    ordered, sorting = flat.sort()
    distinct = torch.unique_consecutive(ordered)
    if distinct.numel() <= k:
        codebook = torch.cat([distinct, distinct[-1:].expand(k - distinct.numel())])
        return codebook.to(torch.float32), torch.searchsorted(distinct, flat)
    fractions = torch.linspace(0, 1, bins + 1, dtype=torch.float64, device=flat.device)
    quantile_edges = ordered[(fractions * (ordered.numel() - 1)).long()]
    uniform_edges = ordered[0] + fractions * (ordered[-1] - ordered[0])
    edges = ((quantile_edges + uniform_edges) / 2).sort().values
    bin_of = torch.searchsorted(edges[1:-1], ordered, right=True)
    counts = torch.bincount(bin_of, minlength=bins).to(torch.float64)
    sums = torch.zeros(bins, dtype=torch.float64, device=flat.device).index_add_(0, bin_of, ordered)
    filled = counts > 0
    mass = counts
    if importance is not None:
        mass = torch.bincount(bin_of, weights=importance.reshape(-1).to(torch.float64)[sorting], minlength=bins)
    centres, weights = sums[filled] / counts[filled], mass[filled] ** density_power
    weighted_prefix = torch.cat([centres.new_zeros(1), (centres * weights).cumsum(0)])
    weight_prefix = torch.cat([centres.new_zeros(1), weights.cumsum(0)])
    # Start from the quantiles of the weighted histogram.
    targets = (torch.arange(k, dtype=torch.float64, device=flat.device) + 0.5) / k * weight_prefix[-1]
    codebook = centres[torch.searchsorted(weight_prefix[1:], targets).clamp(max=centres.numel() - 1)]
    # Up to `iterations` rounds of a dozen operations on at most `bins` values: tiny steps that a
    # second thread only slows down.
    with one_cpu_thread(flat.device):
        codebook = _lloyd_1d(codebook, centres, weighted_prefix, weight_prefix, iterations)
    codebook = codebook.to(torch.float32)
    return codebook, nearest_1d(flat, codebook)


def _lloyd_1d(
    codebook: Tensor, centres: Tensor, weighted_prefix: Tensor, weight_prefix: Tensor, iterations: int
) -> Tensor:
    """Lloyd steps of an ascending 1-D ``codebook`` over weighted ``centres`` (prefix sums given)."""
    for _ in range(iterations):
        bounds = torch.searchsorted(centres, (codebook[1:] + codebook[:-1]) / 2)
        starts = torch.cat([bounds.new_zeros(1), bounds])
        ends = torch.cat([bounds, bounds.new_full((1,), centres.numel())])
        mass = weight_prefix[ends] - weight_prefix[starts]
        means = (weighted_prefix[ends] - weighted_prefix[starts]) / mass.clamp_min(1e-300)
        updated = torch.where(mass > 0, means, codebook).sort().values
        if torch.equal(updated, codebook):
            break
        codebook = updated
    return codebook


def nearest_1d(values: Tensor, codebook: Tensor) -> Tensor:
    """Index ``[N]`` of the nearest entry of an ascending ``codebook`` ``[K]`` for each value."""
    codebook = codebook.to(torch.float64)
    values = values.reshape(-1).to(torch.float64)
    upper = torch.searchsorted(codebook, values).clamp(1, codebook.numel() - 1)
    lower = upper - 1
    take_lower = (values - codebook[lower]).abs() <= (codebook[upper] - values).abs()
    return torch.where(take_lower, lower, upper)
