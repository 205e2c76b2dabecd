"""The CPU rasteriser against an independent dense reference, its gradients, and edge cases."""

from __future__ import annotations

import math

import pytest
import torch

from spaceport_train import rasterize as rasterize_module
from spaceport_train.errors import BackendUnavailableError
from spaceport_train.rasterize import rasterize


def _camera(width: int, height: int, dtype=torch.float64):
    """A camera at the origin looking down +z (OpenCV axes), focal length = width."""
    viewmat = torch.eye(4, dtype=dtype)[None]
    K = torch.tensor([[float(width), 0.0, width / 2], [0.0, float(width), height / 2], [0.0, 0.0, 1.0]], dtype=dtype)[
        None
    ]
    return viewmat, K


def _scene(n: int, seed: int, dtype=torch.float64, opacity: float | None = None):
    gen = torch.Generator().manual_seed(seed)
    means = torch.stack(
        [
            (torch.rand(n, generator=gen, dtype=dtype) - 0.5) * 0.8,
            (torch.rand(n, generator=gen, dtype=dtype) - 0.5) * 0.6,
            2.0 + 2.0 * torch.rand(n, generator=gen, dtype=dtype),
        ],
        dim=1,
    )
    quats = torch.randn(n, 4, generator=gen, dtype=dtype)
    scales = 0.03 + 0.12 * torch.rand(n, 3, generator=gen, dtype=dtype)
    if opacity is None:
        opacities = 0.2 + 0.7 * torch.rand(n, generator=gen, dtype=dtype)
    else:
        opacities = torch.full((n,), opacity, dtype=dtype)
    colors = torch.rand(n, 3, generator=gen, dtype=dtype)
    return means, quats, scales, opacities, colors


def _dense_reference(means, quats, scales, opacities, colors, viewmat, K, width, height, antialiased=False):
    """Every Gaussian evaluated at every pixel centre, composited near to far (gsplat's rules).

    ``antialiased``: each opacity scaled by sqrt(det(cov2d) / det(cov2d + 0.3 I)), gsplat's compensation.
    """
    q = quats / quats.norm(dim=1, keepdim=True)
    w, x, y, z = q.unbind(1)
    R = torch.stack(
        [
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ],
        dim=1,
    ).reshape(-1, 3, 3)
    cov3 = R @ torch.diag_embed(scales**2) @ R.transpose(1, 2)
    rot, trans = viewmat[:3, :3], viewmat[:3, 3]
    cam = means @ rot.T + trans
    cov_cam = rot @ cov3 @ rot.T
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    image = torch.zeros(height, width, 3, dtype=means.dtype)
    alpha_image = torch.zeros(height, width, 1, dtype=means.dtype)
    order = torch.argsort(cam[:, 2])
    projected = []
    for i in order.tolist():
        tx, ty, tz = cam[i]
        J = torch.tensor([[fx / tz, 0, -fx * tx / tz**2], [0, fy / tz, -fy * ty / tz**2]], dtype=means.dtype)
        sharp = J @ cov_cam[i] @ J.T
        cov2 = sharp + 0.3 * torch.eye(2, dtype=means.dtype)
        centre = torch.stack([fx * tx / tz + cx, fy * ty / tz + cy])
        opacity = opacities[i] * torch.sqrt(torch.det(sharp) / torch.det(cov2)) if antialiased else opacities[i]
        projected.append((centre, torch.linalg.inv(cov2), opacity, colors[i]))
    for py in range(height):
        for px in range(width):
            pixel = torch.tensor([px + 0.5, py + 0.5], dtype=means.dtype)
            T, colour = 1.0, torch.zeros(3, dtype=means.dtype)
            for centre, precision, opacity, rgb in projected:
                d = pixel - centre
                sigma = 0.5 * d @ precision @ d
                alpha = min(0.99, float(opacity * torch.exp(-sigma)))
                if sigma < 0 or alpha < 1 / 255:
                    continue
                if T * (1 - alpha) <= 1e-4:
                    break
                colour = colour + alpha * T * rgb
                T = T * (1 - alpha)
            image[py, px] = colour
            alpha_image[py, px, 0] = 1 - T
    return image, alpha_image


@pytest.mark.parametrize("seed,opacity,pairs_per_chunk", [(0, None, None), (1, None, 128), (2, 0.98, None)])
def test_cpu_render_matches_dense_reference(seed, opacity, pairs_per_chunk, monkeypatch):
    if pairs_per_chunk is not None:  # tiny chunks: tiles are composited in many separate passes
        monkeypatch.setattr(rasterize_module, "PAIRS_PER_CHUNK", pairs_per_chunk)
    width, height = 23, 17  # not a multiple of the tile size, so edge tiles are partial
    means, quats, scales, opacities, colors = _scene(6, seed, opacity=opacity)
    viewmats, Ks = _camera(width, height)
    image, alpha, meta = rasterize(means, quats, scales, opacities, colors, viewmats, Ks, width, height, backend="cpu")
    expected_image, expected_alpha = _dense_reference(
        means, quats, scales, opacities, colors, viewmats[0], Ks[0], width, height
    )
    assert image.shape == (1, height, width, 3) and alpha.shape == (1, height, width, 1)
    assert float(expected_alpha.max()) > 0.5  # the scene really covers the image
    torch.testing.assert_close(image[0], expected_image, atol=1e-6, rtol=0)
    torch.testing.assert_close(alpha[0], expected_alpha, atol=1e-6, rtol=0)
    assert meta["means2d"].shape == (1, 6, 2) and meta["radii"].shape == (1, 6, 2)
    assert meta["width"] == width and meta["height"] == height and meta["n_cameras"] == 1


def test_antialiased_cpu_render_matches_dense_reference():
    width, height = 23, 17
    means, quats, scales, opacities, colors = _scene(6, 7)
    scales = scales * 0.2  # many under a pixel wide, where the filter matters
    viewmats, Ks = _camera(width, height)
    image, alpha, _ = rasterize(
        means,
        quats,
        scales,
        opacities,
        colors,
        viewmats,
        Ks,
        width,
        height,
        backend="cpu",
        rasterize_mode="antialiased",
    )
    expected_image, expected_alpha = _dense_reference(
        means, quats, scales, opacities, colors, viewmats[0], Ks[0], width, height, antialiased=True
    )
    torch.testing.assert_close(image[0], expected_image, atol=1e-6, rtol=0)
    torch.testing.assert_close(alpha[0], expected_alpha, atol=1e-6, rtol=0)
    classic, _, _ = rasterize(means, quats, scales, opacities, colors, viewmats, Ks, width, height, backend="cpu")
    assert float((classic - image).abs().max()) > 0.05  # the filter changed the render


def test_cpu_render_with_sh_and_background_and_two_cameras():
    width, height = 16, 12
    means, quats, scales, opacities, colors = _scene(5, 3)
    viewmat, K = _camera(width, height)
    moved = viewmat.clone()
    moved[0, 0, 3] = 0.1
    viewmats, Ks = torch.cat([viewmat, moved]), torch.cat([K, K])
    sh = torch.zeros(5, 4, 3, dtype=torch.float64)
    sh[:, 0] = (colors - 0.5) / 0.28209479177387814  # degree 0 only: SH colour == RGB colour
    backgrounds = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    image, alpha, _ = rasterize(
        means,
        quats,
        scales,
        opacities,
        sh,
        viewmats,
        Ks,
        width,
        height,
        sh_degree=1,
        backgrounds=backgrounds,
        backend="cpu",
    )
    for c in range(2):
        expected_image, expected_alpha = _dense_reference(
            means, quats, scales, opacities, colors, viewmats[c], Ks[c], width, height
        )
        expected_image = expected_image + (1 - expected_alpha) * backgrounds[c]
        torch.testing.assert_close(image[c], expected_image, atol=1e-6, rtol=0)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_cpu_gradients_pass_gradcheck(mode):
    width, height = 12, 10
    means, quats, scales, opacities, colors = _scene(3, 4)
    viewmats, Ks = _camera(width, height)
    backgrounds = torch.tensor([[0.2, 0.3, 0.4]], dtype=torch.float64)
    inputs = [t.clone().requires_grad_(True) for t in (means, quats, scales, opacities, colors, backgrounds)]

    def render(means, quats, scales, opacities, colors, backgrounds):
        image, alpha, _ = rasterize(
            means,
            quats,
            scales,
            opacities,
            colors,
            viewmats,
            Ks,
            width,
            height,
            backgrounds=backgrounds,
            backend="cpu",
            rasterize_mode=mode,
        )
        return image, alpha

    assert torch.autograd.gradcheck(render, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_means2d_gradient_reaches_strategy_tensor():
    width, height = 16, 12
    means, quats, scales, opacities, colors = _scene(4, 5, dtype=torch.float32)
    viewmats, Ks = _camera(width, height, dtype=torch.float32)
    means.requires_grad_(True)
    image, _, meta = rasterize(means, quats, scales, opacities, colors, viewmats, Ks, width, height, backend="cpu")
    meta["means2d"].retain_grad()
    image.sum().backward()
    grad = meta["means2d"].grad
    assert grad is not None and grad.shape == (1, 4, 2) and float(grad.abs().sum()) > 0


def test_empty_and_offscreen_gaussians():
    width, height = 16, 12
    viewmats, Ks = _camera(width, height, dtype=torch.float32)
    background = torch.tensor([[0.1, 0.2, 0.3]])
    empty = torch.zeros(0, 3)
    image, alpha, meta = rasterize(
        empty,
        torch.zeros(0, 4),
        empty,
        torch.zeros(0),
        empty,
        viewmats,
        Ks,
        width,
        height,
        backgrounds=background,
        backend="cpu",
    )
    assert float(alpha.abs().max()) == 0.0
    torch.testing.assert_close(image[0], background[0].expand(height, width, 3))
    assert meta["radii"].shape == (1, 0, 2)

    # Behind the camera, far off to the side, and fully transparent: nothing is drawn, gradients stay finite.
    means = torch.tensor([[0.0, 0.0, -2.0], [50.0, 0.0, 2.0], [0.0, 0.0, 2.0]], requires_grad=True)
    quats = torch.tensor([[1.0, 0.0, 0.0, 0.0]] * 3)
    scales = torch.full((3, 3), 0.1)
    opacities = torch.tensor([0.9, 0.9, 0.0])
    image, alpha, meta = rasterize(
        means, quats, scales, opacities, torch.ones(3, 3), viewmats, Ks, width, height, backend="cpu"
    )
    assert float(alpha.detach().abs().max()) == 0.0
    assert (meta["radii"] == 0).all()
    image.sum().backward()
    assert torch.isfinite(means.grad).all()


def test_cuda_backend_needs_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present; test_cuda_matches_cpu covers the CUDA path")
    with pytest.raises(BackendUnavailableError):
        rasterize(
            torch.zeros(1, 3),
            torch.tensor([[1.0, 0, 0, 0]]),
            torch.ones(1, 3),
            torch.ones(1),
            torch.ones(1, 3),
            *_camera(8, 8, torch.float32),
            8,
            8,
            backend="cuda",
        )


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device for gsplat's rasterizer")
@pytest.mark.parametrize("mode", ["classic", "antialiased"])
def test_cuda_matches_cpu(mode):
    width, height = 64, 48
    means, quats, scales, opacities, colors = _scene(40, 6, dtype=torch.float32)
    viewmats, Ks = _camera(width, height, dtype=torch.float32)
    cpu_image, _, _ = rasterize(
        means, quats, scales, opacities, colors, viewmats, Ks, width, height, backend="cpu", rasterize_mode=mode
    )
    cuda_args = [t.cuda() for t in (means, quats, scales, opacities, colors, viewmats, Ks)]
    cuda_image, _, _ = rasterize(*cuda_args, width, height, backend="cuda", rasterize_mode=mode)
    mse = float(((cuda_image.cpu() - cpu_image) ** 2).mean())
    assert -10 * math.log10(max(mse, 1e-12)) > 40
