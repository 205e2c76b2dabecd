"""How close the decoded splat looks to the original: PSNR of renders from fixed orbit views.

Both splats are rendered with the training stage's rasteriser (``backend="cpu"`` here) from
the same cameras on a ring around the object, and compared image by image:
``render_psnr(original, decoded, views=8, size=160)["psnr"]`` is the mean PSNR in dB.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from spaceport.splats import Splats

FIELD_OF_VIEW_DEG = 50.0
ELEVATIONS_DEG = (20.0, -20.0)  # the ring alternates above and below the object's equator


def framing_distance(means: np.ndarray) -> tuple[np.ndarray, float]:
    """``(centre [3], distance)``: the ring's centre and the distance that frames the object.

    The object is the splats' median centre; the distance frames the 90th percentile of the
    splats' distances from it, so stray far-away splats do not shrink the object to a dot.
    """
    centre = np.median(means, axis=0)
    extent = float(np.quantile(np.linalg.norm(means - centre, axis=1), 0.9)) or 1.0
    return centre, 1.1 * extent / math.sin(math.radians(FIELD_OF_VIEW_DEG) / 2)


def orbit_cameras(means: np.ndarray, views: int, size: int, distance_scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """``viewmats`` ``[V, 4, 4]`` (OpenCV world-to-camera) and ``Ks`` ``[V, 3, 3]`` looking at the object,
    from :func:`framing_distance` times ``distance_scale``."""
    centre, distance = framing_distance(means)
    distance *= distance_scale
    half_fov = math.radians(FIELD_OF_VIEW_DEG) / 2
    focal = size / (2 * math.tan(half_fov))
    up = np.array([0.0, 1.0, 0.0])
    viewmats = []
    for i in range(views):
        azimuth = 2 * math.pi * i / views
        elevation = math.radians(ELEVATIONS_DEG[i % len(ELEVATIONS_DEG)])
        offset = np.array(
            [math.cos(elevation) * math.sin(azimuth), math.sin(elevation), math.cos(elevation) * math.cos(azimuth)]
        )
        eye = centre + distance * offset
        forward = (centre - eye) / np.linalg.norm(centre - eye)
        right = np.cross(forward, up)
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        rotation = np.stack([right, down, forward])  # rows: camera x, y, z in world axes
        viewmat = np.eye(4)
        viewmat[:3, :3] = rotation
        viewmat[:3, 3] = -rotation @ eye
        viewmats.append(viewmat)
    K = np.array([[focal, 0, size / 2], [0, focal, size / 2], [0, 0, 1]])
    return (
        torch.tensor(np.stack(viewmats), dtype=torch.float32),
        torch.tensor(np.repeat(K[None], views, 0), dtype=torch.float32),
    )


def render(splats: Splats, viewmats: Tensor, Ks: Tensor, size: int, backend: str = "cpu") -> Tensor:
    """Images ``[V, size, size, 3]`` of ``splats`` on black, with all their SH bands."""
    from spaceport_train.rasterize import rasterize

    def f(array: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    coeffs = torch.cat([f(splats.sh0)[:, None, :], f(splats.shN)], dim=1)  # [N, K, 3]
    with torch.no_grad():
        colors, _, _ = rasterize(
            f(splats.means),
            f(splats.quats),
            f(splats.scales),
            f(splats.opacities),
            coeffs,
            viewmats,
            Ks,
            size,
            size,
            sh_degree=splats.sh_degree,
            backgrounds=torch.zeros(len(viewmats), 3),
            backend=backend,
        )
    return colors.clamp(0, 1)


def render_psnr(
    original: Splats,
    decoded: Splats,
    views: int = 8,
    size: int = 160,
    backend: str = "cpu",
    distance_scale: float = 1.0,
) -> dict[str, Any]:
    """Mean and per-view PSNR (dB) of ``decoded``'s renders against ``original``'s, from
    cameras ``distance_scale`` times the framing distance away."""
    from spaceport_train.metrics import psnr

    viewmats, Ks = orbit_cameras(original.means, views, size, distance_scale)
    reference = render(original, viewmats, Ks, size, backend)
    candidate = render(decoded, viewmats, Ks, size, backend)
    per_view = [psnr(candidate[i], reference[i]) for i in range(views)]
    return {
        "psnr": float(np.mean(per_view)),
        "psnr_per_view": [round(p, 3) for p in per_view],
        "views": views,
        "image_size": size,
    }
