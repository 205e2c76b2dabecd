"""Image quality measures shared by the loss and the held-out evaluation.

Images are ``[H, W, 3]`` float tensors in [0, 1].

Example::

    psnr(render, photo)       # dB
    1 - ssim(render, photo)   # the D-SSIM term of the loss (differentiable)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5


def psnr(image: Tensor, target: Tensor) -> float:
    mse = float(((image.clamp(0, 1) - target) ** 2).mean())
    return 10.0 * math.log10(1.0 / max(mse, 1e-12))


def _window(dtype: torch.dtype) -> Tensor:
    x = torch.arange(SSIM_WINDOW, dtype=dtype) - SSIM_WINDOW // 2
    g = torch.exp(-x * x / (2 * SSIM_SIGMA**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, SSIM_WINDOW, SSIM_WINDOW).contiguous()


def ssim(image: Tensor, target: Tensor) -> Tensor:
    """Mean structural similarity with an 11x11 Gaussian window (sigma 1.5), as in 3DGS."""
    x, y = image.permute(2, 0, 1)[None], target.permute(2, 0, 1)[None]  # [1, 3, H, W]
    window = _window(image.dtype)

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(t, window, padding=SSIM_WINDOW // 2, groups=3)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean()


class LpipsMeter:
    """LPIPS (AlexNet) when the ``lpips`` package and its weights are available, else ``None`` values."""

    def __init__(self) -> None:
        self.reason = ""
        try:
            import lpips  # optional: not a Spaceport dependency

            self._model = lpips.LPIPS(net="alex", verbose=False).eval()
        except Exception as error:  # missing package, or weights that cannot be fetched offline
            self._model = None
            self.reason = f"LPIPS unavailable: {type(error).__name__}: {error}"[:200]

    def __call__(self, image: Tensor, target: Tensor) -> float | None:
        if self._model is None:
            return None

        def to_input(t: Tensor) -> Tensor:
            return t.permute(2, 0, 1)[None].cpu() * 2 - 1

        with torch.no_grad():
            return float(self._model(to_input(image.clamp(0, 1)), to_input(target)).mean())
