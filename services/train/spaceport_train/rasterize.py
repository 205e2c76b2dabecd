"""Differentiable 3D Gaussian rasterisation with ``gsplat.rasterization``'s semantics.

Two backends share one signature: ``"cuda"`` calls ``gsplat.rasterization``; ``"cpu"`` is
our own tile-based rasteriser in plain torch. The CPU path projects the 3D covariances
with the EWA Jacobian (gsplat's pure-torch projection helpers), dilates the 2D
covariances by 0.3 px like gsplat's ``eps2d``, bins each Gaussian into the 4x4 pixel
tiles its opacity-aware extent touches, and composites every tile front to back with
gsplat's rules: alpha = min(0.99, o * exp(-sigma)), alphas below 1/255 skipped, a pixel
stops once its transmittance would fall to 1e-4. Tiles are processed in chunks of at most
:data:`PAIRS_PER_CHUNK` (Gaussian, pixel) pairs, forward and backward, so memory stays
bounded; the compositing gradient is written out by hand (no per-pair autograd graph).
``rasterize_mode="antialiased"`` is gsplat's: each opacity is scaled by
sqrt(det(cov2d) / det(cov2d + 0.3 I)), so a Gaussian smaller than a pixel fades instead of
flickering (the same compensation gsplat's projection computes).

>>> means, quats = torch.tensor([[0.0, 0.0, 2.0]]), torch.tensor([[1.0, 0.0, 0.0, 0.0]])
>>> scales, opacities, rgb = torch.full((1, 3), 0.05), torch.tensor([0.9]), torch.tensor([[1.0, 0.5, 0.0]])
>>> K = torch.tensor([[[32.0, 0, 16], [0, 32.0, 12], [0, 0, 1]]])
>>> colors, alphas, meta = rasterize(means, quats, scales, opacities, rgb, torch.eye(4)[None], K, 32, 24)
>>> colors.shape, meta["means2d"].shape, round(float(alphas.max()), 2)
(torch.Size([1, 24, 32, 3]), torch.Size([1, 1, 2]), 0.69)
>>> _, faded, _ = rasterize(means, quats, scales, opacities, rgb, torch.eye(4)[None], K, 32, 24, rasterize_mode="antialiased")
>>> round(float(faded.max()), 2)  # a Gaussian under a pixel wide fades
0.47
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from spaceport.contracts.training import RASTERIZE_MODES
from spaceport_train.errors import BackendUnavailableError

TILE_SIZE = 4
PAIRS_PER_CHUNK = 1 << 21  # (Gaussian, pixel) pairs evaluated at once: ~8 MB per float tensor
CACHED_PAIRS = 1 << 25  # pairs kept from the forward pass for the backward pass (~0.7 GB)
EPS2D = 0.3
NEAR_PLANE = 0.01
ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99
TRANSMITTANCE_MIN = 1e-4
EXTENT_SIGMAS = 3.33


def resolve_backend(backend: str, device: torch.device | str | None = None) -> str:
    """``"auto"`` -> ``"cuda"`` when tensors live on a CUDA device, else ``"cpu"``."""
    if backend not in ("auto", "cuda", "cpu"):
        raise BackendUnavailableError(f"Unknown rasterisation backend {backend!r}: use auto, cuda or cpu.")
    device = torch.device(device) if device is not None else None
    if backend == "auto":
        return "cuda" if device is not None and device.type == "cuda" else "cpu"
    if backend == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError("The CUDA backend needs an NVIDIA GPU and none is available: use --device cpu.")
    return backend


def rasterize(
    means: Tensor,  # [N, 3]
    quats: Tensor,  # [N, 4] (w, x, y, z), not necessarily normalised
    scales: Tensor,  # [N, 3] linear standard deviations
    opacities: Tensor,  # [N] in [0, 1]
    colors: Tensor,  # [N, K, 3] SH coefficients when sh_degree is given, else [N, 3] RGB
    viewmats: Tensor,  # [C, 4, 4] world-to-camera, OpenCV axes
    Ks: Tensor,  # [C, 3, 3]
    width: int,
    height: int,
    sh_degree: int | None = None,
    backgrounds: Tensor | None = None,  # [C, 3]
    backend: str = "auto",
    rasterize_mode: str = "classic",  # classic | antialiased
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Render ``C`` images: colours ``[C, H, W, 3]``, alphas ``[C, H, W, 1]`` and ``meta``.

    ``meta`` holds what gsplat's densification strategies read: ``means2d`` ``[C, N, 2]``
    (call ``retain_grad`` on it before ``backward``), ``radii`` ``[C, N, 2]`` (0 = not
    drawn), ``width``, ``height``, ``n_cameras`` and ``gaussian_ids`` (``None``: not packed).
    """
    backend = resolve_backend(backend, means.device)
    if backend == "cuda":
        from gsplat import rasterization

        rendered: tuple[Tensor, Tensor, dict[str, Any]] = rasterization(
            means,
            quats,
            scales,
            opacities,
            colors,
            viewmats,
            Ks,
            width,
            height,
            sh_degree=sh_degree,
            backgrounds=backgrounds,
            rasterize_mode=rasterize_mode,
        )
        return rendered
    return _rasterize_cpu(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height, sh_degree, backgrounds, rasterize_mode
    )


def _rasterize_cpu(
    means: Tensor,
    quats: Tensor,
    scales: Tensor,
    opacities: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    sh_degree: int | None,
    backgrounds: Tensor | None,
    rasterize_mode: str,
) -> tuple[Tensor, Tensor, dict[str, Any]]:
    from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci, _spherical_harmonics

    if rasterize_mode not in RASTERIZE_MODES:
        raise ValueError(f"rasterize_mode must be one of {', '.join(RASTERIZE_MODES)}, not {rasterize_mode!r}")
    n_cameras = viewmats.shape[0]
    covars, _ = _quat_scale_to_covar_preci(quats, scales, compute_preci=False)  # [N, 3, 3]
    _, means2d, depths, conics, compensations = _fully_fused_projection(
        means,
        covars,
        viewmats,
        Ks,
        width,
        height,
        eps2d=EPS2D,
        near_plane=NEAR_PLANE,
        calc_compensations=rasterize_mode == "antialiased",
    )
    # means2d [C, N, 2], depths [C, N], conics [C, N, 3], compensations [C, N] or None
    per_camera_opacities = opacities[None] * compensations if compensations is not None else opacities[None]

    if sh_degree is not None:
        camera_centres = torch.linalg.inv(viewmats)[:, :3, 3]  # [C, 3]
        dirs = means[None, :, :] - camera_centres[:, None, :]  # [C, N, 3]
        coeffs = colors[None].expand(n_cameras, *colors.shape)
        rgb = torch.clamp_min(_spherical_harmonics(sh_degree, dirs, coeffs) + 0.5, 0.0)  # [C, N, 3]
    else:
        rgb = colors.expand(n_cameras, *colors.shape[-2:]) if colors.dim() == 2 else colors

    image_list: list[Tensor] = []
    alpha_list: list[Tensor] = []
    radii: list[Tensor] = []
    for c in range(n_cameras):
        opacity = per_camera_opacities[c if len(per_camera_opacities) > 1 else 0]
        tiles = _bin_into_tiles(
            means2d[c].detach(), conics[c].detach(), opacity.detach(), depths[c].detach(), width, height
        )
        # autograd.Function.apply carries no types in torch's annotations.
        image, alpha = _CompositeTiles.apply(means2d[c], conics[c], opacity, rgb[c], tiles)  # type: ignore[no-untyped-call]
        image_list.append(image)
        alpha_list.append(alpha)
        radii.append(tiles.radii)
    images, alphas = torch.stack(image_list), torch.stack(alpha_list)
    if backgrounds is not None:
        images = images + (1.0 - alphas) * backgrounds[:, None, None, :]
    meta = {
        "means2d": means2d,
        "radii": torch.stack(radii),
        "depths": depths,
        "conics": conics,
        "width": width,
        "height": height,
        "n_cameras": n_cameras,
        "n_batches": 1,
        "gaussian_ids": None,
        "camera_ids": None,
        "tile_size": TILE_SIZE,
    }
    return images, alphas, meta


@dataclass(frozen=True)
class _TileLists:
    """Which Gaussians touch which tile, front to back, for one camera."""

    width: int
    height: int
    tiles_x: int
    tiles_y: int
    gaussian_ids: Tensor  # [M] one row per (tile, Gaussian) intersection, grouped by tile, near first
    tile_ids: Tensor  # [M]
    tile_starts: Tensor  # [T + 1] first row of each tile
    radii: Tensor  # [N, 2] int32 pixel extents, 0 where not drawn

    def chunks(self) -> list[tuple[int, int]]:
        """Consecutive tile ranges holding at most PAIRS_PER_CHUNK pairs (a crowded tile alone may exceed it)."""
        rows_per_chunk = max(1, PAIRS_PER_CHUNK // (TILE_SIZE * TILE_SIZE))
        starts = self.tile_starts.tolist()
        ranges, first = [], 0
        n_tiles = self.tiles_x * self.tiles_y
        while first < n_tiles:
            last = first + 1
            while last < n_tiles and starts[last + 1] - starts[first] <= rows_per_chunk:
                last += 1
            if starts[last] > starts[first]:
                ranges.append((first, last))
            first = last
        return ranges


def _bin_into_tiles(
    means2d: Tensor, conics: Tensor, opacities: Tensor, depths: Tensor, width: int, height: int
) -> _TileLists:
    """Intersect each Gaussian's opacity-aware bounding box with the tile grid."""
    tiles_x, tiles_y = math.ceil(width / TILE_SIZE), math.ceil(height / TILE_SIZE)
    a, b, c = conics.unbind(-1)
    det = (a * c - b * b).clamp_min(1e-12)
    # Beyond `extent` standard deviations, o * exp(-sigma) < 1/255, so the pixel is skipped anyway.
    extent = torch.sqrt(2.0 * torch.log((opacities / ALPHA_MIN).clamp_min(1.0))).clamp(max=EXTENT_SIGMAS)
    rx = extent * torch.sqrt((c / det).clamp_min(0.0))
    ry = extent * torch.sqrt((a / det).clamp_min(0.0))
    mx, my = means2d.unbind(-1)
    drawn = (
        (depths > NEAR_PLANE)
        & (opacities >= ALPHA_MIN)
        & torch.isfinite(rx)
        & torch.isfinite(ry)
        & (mx + rx > 0)
        & (mx - rx < width)
        & (my + ry > 0)
        & (my - ry < height)
        & (rx > 0)
        & (ry > 0)
    )
    radii = torch.stack([torch.ceil(rx), torch.ceil(ry)], dim=-1)
    radii = torch.where(drawn[:, None], radii, torch.zeros_like(radii)).to(torch.int32)

    ids = torch.nonzero(drawn).squeeze(1)
    ids = ids[torch.argsort(depths[ids], stable=True)]
    x0 = ((mx[ids] - rx[ids]) / TILE_SIZE).floor().clamp(0, tiles_x - 1).long()
    x1 = ((mx[ids] + rx[ids]) / TILE_SIZE).floor().clamp(0, tiles_x - 1).long()
    y0 = ((my[ids] - ry[ids]) / TILE_SIZE).floor().clamp(0, tiles_y - 1).long()
    y1 = ((my[ids] + ry[ids]) / TILE_SIZE).floor().clamp(0, tiles_y - 1).long()
    span_x = x1 - x0 + 1
    counts = span_x * (y1 - y0 + 1)
    rows = torch.repeat_interleave(torch.arange(len(ids)), counts)
    local = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    tile_ids = (y0[rows] + local // span_x[rows]) * tiles_x + x0[rows] + local % span_x[rows]
    tile_ids, order = torch.sort(tile_ids, stable=True)  # stable: keeps near-to-far order within a tile
    per_tile = torch.bincount(tile_ids, minlength=tiles_x * tiles_y)
    tile_starts = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(per_tile, 0)])
    return _TileLists(width, height, tiles_x, tiles_y, ids[rows[order]], tile_ids, tile_starts, radii)


def _tiles_to_image(tiled: Tensor, lists: _TileLists) -> Tensor:
    """[T, P, D] per-tile pixels -> [H, W, D] image."""
    d = tiled.shape[-1]
    grid = tiled.reshape(lists.tiles_y, lists.tiles_x, TILE_SIZE, TILE_SIZE, d).permute(0, 2, 1, 3, 4)
    return grid.reshape(lists.tiles_y * TILE_SIZE, lists.tiles_x * TILE_SIZE, d)[: lists.height, : lists.width]


def _image_to_tiles(image: Tensor, lists: _TileLists) -> Tensor:
    """[H, W, D] image -> [T, P, D] per-tile pixels (zero padded at the right and bottom edges)."""
    d = image.shape[-1]
    padded = image.new_zeros(lists.tiles_y * TILE_SIZE, lists.tiles_x * TILE_SIZE, d)
    padded[: lists.height, : lists.width] = image
    grid = padded.reshape(lists.tiles_y, TILE_SIZE, lists.tiles_x, TILE_SIZE, d).permute(0, 2, 1, 3, 4)
    return grid.reshape(lists.tiles_y * lists.tiles_x, TILE_SIZE * TILE_SIZE, d)


def _pixel_basis(dtype: torch.dtype) -> Tensor:
    """[P, 6] monomials (1, u, v, u^2, uv, v^2) of each pixel's offset (u, v) inside a tile."""
    pixel = torch.arange(TILE_SIZE * TILE_SIZE)
    u, v = (pixel % TILE_SIZE).to(dtype), (pixel // TILE_SIZE).to(dtype)
    return torch.stack([torch.ones_like(u), u, v, u * u, u * v, v * v], dim=1)


class _ChunkPairs:
    """Every (Gaussian, pixel) pair of one chunk of tiles, with its weight and what its gradient needs.

    Pair tensors are ``[P, R]``: pixel-major, so the running sums down each pixel's list of
    Gaussians run along contiguous memory (torch's cumsum is an order of magnitude slower
    along a strided axis). For a row (one Gaussian in one tile) the exponent at pixel offset
    (u, v) is a quadratic in (u, v), so all of a row's pixels come from one small matrix
    product with :func:`_pixel_basis`.
    """

    def __init__(
        self,
        lists: _TileLists,
        first_tile: int,
        end_tile: int,
        means2d: Tensor,
        conics: Tensor,
        opacities: Tensor,
        basis: Tensor,
    ):
        r0, r1 = int(lists.tile_starts[first_tile]), int(lists.tile_starts[end_tile])
        self.first_tile, self.end_tile = first_tile, end_tile
        self.gaussians = g = lists.gaussian_ids[r0:r1]  # [R]
        self.local_tiles = t = lists.tile_ids[r0:r1] - first_tile  # [R]
        self.tile_starts = lists.tile_starts[first_tile : end_tile + 1] - r0  # [Tc + 1]
        tiles = t + first_tile
        dtype = means2d.dtype
        # (ex, ey): from the Gaussian's centre to the first pixel centre of the tile.
        self.ex = ex = ((tiles % lists.tiles_x) * TILE_SIZE).to(dtype) + 0.5 - means2d[g, 0]
        self.ey = ey = ((tiles // lists.tiles_x) * TILE_SIZE).to(dtype) + 0.5 - means2d[g, 1]
        self.conic = conics[g]  # [R, 3]
        a, b, c = self.conic.unbind(-1)
        self.opacity = opacities[g]
        # log(o) - sigma as a quadratic in (u, v); the constant term also carries log(o).
        coeffs = torch.stack(
            [
                torch.log(self.opacity) - (0.5 * a * ex * ex + b * ex * ey + 0.5 * c * ey * ey),
                -(a * ex + b * ey),
                -(b * ex + c * ey),
                -0.5 * a,
                -b,
                -0.5 * c,
            ]
        )  # [6, R]
        raw_alpha = torch.exp(basis @ coeffs)  # o * exp(-sigma), [P, R]
        valid = raw_alpha >= ALPHA_MIN
        self.alpha = alpha = raw_alpha.clamp(max=ALPHA_MAX) * valid
        # log T behind each Gaussian: a running sum of log(1 - alpha), restarted at each tile
        # (float64, so the subtraction across many tiles loses nothing).
        log_keep = torch.log1p(-alpha)
        log_after = self.within_tile_cumsum(log_keep).to(dtype)
        drawn = log_after > math.log(TRANSMITTANCE_MIN)  # gsplat stops before T drops to 1e-4
        self.transmittance = torch.exp(log_after - log_keep)  # in front of this Gaussian
        self.weight = alpha * self.transmittance * drawn
        # d(loss)/d(log o - sigma) = d(loss)/d(alpha) * gate: raw alpha where it was drawn unclamped.
        self.gate = raw_alpha * (drawn & valid & (raw_alpha <= ALPHA_MAX))

    def running_sums(self, values: Tensor) -> tuple[Tensor, Tensor]:
        """Inclusive float64 running sum of ``values`` [P, R] over the chunk, and its value before each tile [P, Tc + 1]."""
        running = torch.cumsum(values.double(), dim=1)
        before = running.index_select(1, (self.tile_starts - 1).clamp_min(0))
        return running, before * (self.tile_starts > 0)

    def within_tile_cumsum(self, values: Tensor) -> Tensor:
        """Inclusive running sum down each pixel's list, restarted at every tile (float64)."""
        running, at_tile_starts = self.running_sums(values)
        return running - at_tile_starts[:, :-1].index_select(1, self.local_tiles)

    def tile_sums(self, values: Tensor) -> Tensor:
        """Sum of ``values`` [P, R] over each tile's rows -> [P, Tc]."""
        _, at_tile_starts = self.running_sums(values)
        return (at_tile_starts[:, 1:] - at_tile_starts[:, :-1]).to(values.dtype)


class _CompositeTiles(torch.autograd.Function):
    """Front-to-back alpha compositing of projected Gaussians, with a hand-written backward.

    When the chunks fit in :data:`CACHED_PAIRS`, the forward pass keeps them for the backward
    pass; otherwise the backward pass recomputes each chunk (memory stays bounded either way).
    """

    @staticmethod
    def forward(
        ctx: Any, means2d: Tensor, conics: Tensor, opacities: Tensor, colors: Tensor, lists: _TileLists
    ) -> tuple[Tensor, Tensor]:
        # means2d [N, 2], conics [N, 3], opacities [N], colors [N, D] -> image [H, W, D], alpha [H, W, 1]
        n_tiles, pixels, d = lists.tiles_x * lists.tiles_y, TILE_SIZE * TILE_SIZE, colors.shape[-1]
        basis = _pixel_basis(means2d.dtype)
        tiled = colors.new_zeros(n_tiles, pixels, d + 1)  # alpha last
        keep = any(ctx.needs_input_grad[:4]) and len(lists.gaussian_ids) * pixels <= CACHED_PAIRS
        cached = []
        for first, end in lists.chunks():
            pairs = _ChunkPairs(lists, first, end, means2d, conics, opacities, basis)
            row_colors = colors[pairs.gaussians]  # [R, D]
            for channel in range(d):
                tiled[first:end, :, channel] = pairs.tile_sums(pairs.weight * row_colors[:, channel]).T
            tiled[first:end, :, d] = pairs.tile_sums(pairs.weight).T
            if keep:
                cached.append(pairs)
        ctx.save_for_backward(means2d, conics, opacities, colors)
        ctx.lists, ctx.cached = lists, cached
        image = _tiles_to_image(tiled, lists)
        return image[..., :d].contiguous(), image[..., d:].contiguous()

    @staticmethod
    def backward(ctx: Any, grad_image: Tensor, grad_alpha: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, None]:
        means2d, conics, opacities, colors = ctx.saved_tensors
        lists: _TileLists = ctx.lists
        basis = _pixel_basis(means2d.dtype)
        d = colors.shape[-1]
        grad_tiles = _image_to_tiles(torch.cat([grad_image, grad_alpha], -1), lists).permute(2, 1, 0).contiguous()
        # grad_tiles: [D + 1, P, T]
        g_means2d, g_conics = torch.zeros_like(means2d), torch.zeros_like(conics)
        g_opacities, g_colors = torch.zeros_like(opacities), torch.zeros_like(colors)
        chunks = ctx.cached or (
            _ChunkPairs(lists, first, end, means2d, conics, opacities, basis) for first, end in lists.chunks()
        )
        for p in chunks:
            first, end = p.first_tile, p.end_tile
            g, t = p.gaussians, p.local_tiles
            row_colors = colors[g]  # [R, D]
            # Each pair's "value": how much the loss changes per unit of its weight.
            value = grad_tiles[d, :, first:end].index_select(1, t)  # [P, R]
            g_row_colors = []
            for channel in range(d):
                grad_pixels = grad_tiles[channel, :, first:end].index_select(1, t)
                value = value + grad_pixels * row_colors[:, channel]
                g_row_colors.append((p.weight * grad_pixels).sum(0))
            g_colors.index_add_(0, g, torch.stack(g_row_colors, dim=1))
            # d(out)/d(alpha_k) = T_k value_k - sum_{i behind k} w_i value_i / (1 - alpha_k)
            weighted = p.weight * value
            running, at_tile_starts = p.running_sums(weighted)
            behind = (at_tile_starts[:, 1:].index_select(1, t) - running).to(weighted.dtype)
            g_exponent = (p.transmittance * value - behind / (1.0 - p.alpha)) * p.gate
            g0, gu, gv, guu, guv, gvv = basis.T @ g_exponent  # [6, R]
            a, b, c = p.conic.unbind(-1)
            ex, ey = p.ex, p.ey
            g_opacities.index_add_(0, g, g0 / p.opacity)
            g_ex = -(g0 * (a * ex + b * ey) + gu * a + gv * b)
            g_ey = -(g0 * (b * ex + c * ey) + gu * b + gv * c)
            g_a = -(0.5 * g0 * ex * ex + gu * ex + 0.5 * guu)
            g_b = -(g0 * ex * ey + gu * ey + gv * ex + guv)
            g_c = -(0.5 * g0 * ey * ey + gv * ey + 0.5 * gvv)
            g_conics.index_add_(0, g, torch.stack([g_a, g_b, g_c], dim=1))
            g_means2d.index_add_(0, g, -torch.stack([g_ex, g_ey], dim=1))  # ex = pixel - mean
        ctx.cached = None
        return g_means2d, g_conics, g_opacities, g_colors, None
