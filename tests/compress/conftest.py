"""Fixtures of the compression tests: generated splats with known attributes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spaceport.splats import Splats


def generated_splats(n: int = 1500, sh_degree: int = 3, seed: int = 0, sh_vectors: int = 24) -> Splats:
    """A blob of ``n`` splats whose shN rows are drawn from ``sh_vectors`` distinct vectors."""
    rng = np.random.default_rng(seed)
    k = (sh_degree + 1) ** 2 - 1
    palette = rng.normal(0, 0.3, (sh_vectors, k, 3)).astype(np.float32)
    return Splats(
        means=rng.normal(0, 1.5, (n, 3)).astype(np.float32),
        quats=rng.normal(0, 1, (n, 4)).astype(np.float32),
        log_scales=rng.normal(-3, 0.8, (n, 3)).astype(np.float32),
        opacity_logits=rng.normal(0, 2, n).astype(np.float32),
        sh0=rng.normal(0, 1, (n, 3)).astype(np.float32),
        shN=palette[rng.integers(0, sh_vectors, n)],
    )


@pytest.fixture
def make_splats():
    return generated_splats


SPLAT_TRANSFORM = Path(__file__).resolve().parents[2] / "services/compress/interop/node_modules/.bin/splat-transform"


@pytest.fixture
def splat_transform() -> Path:
    """PlayCanvas' splat-transform (pinned in services/compress/interop), or a skip that says why."""
    if not SPLAT_TRANSFORM.exists():
        pytest.skip("@playcanvas/splat-transform is not installed (make setup installs it when npm exists)")
    return SPLAT_TRANSFORM
