"""The Gaussian splat: the artifact the training stage hands to the compression stage.

Arrays are numpy, in the parameterisation the standard ("INRIA") 3DGS PLY stores:

=================  ==============  ==============================================
field              shape           meaning
=================  ==============  ==============================================
``means``          ``[N, 3]``      centres, world units
``quats``          ``[N, 4]``      rotations as (w, x, y, z), not necessarily unit
``log_scales``     ``[N, 3]``      natural log of the per-axis standard deviation
``opacity_logits`` ``[N]``         logit of the opacity
``sh0``            ``[N, 3]``      degree-0 SH coefficient per colour channel
``shN``            ``[N, K, 3]``   higher SH bands, K = (degree + 1)^2 - 1 (0..15)
=================  ==============  ==============================================

>>> splats = Splats.empty(0)
>>> splats.sh_degree, len(splats)
(0, 0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

SH_C0 = 0.28209479177387814  # the constant of the degree-0 real spherical harmonic


def sh_degree_for_rest(rest_coeffs: int) -> int:
    """The SH degree whose higher bands hold ``rest_coeffs`` coefficients per channel."""
    degree = int(round(math.sqrt(rest_coeffs + 1))) - 1
    if (degree + 1) ** 2 - 1 != rest_coeffs or not 0 <= degree <= 3:
        raise ValueError(f"{rest_coeffs} higher-band SH coefficients per channel match no degree 0-3")
    return degree


@dataclass
class Splats:
    means: np.ndarray
    quats: np.ndarray
    log_scales: np.ndarray
    opacity_logits: np.ndarray
    sh0: np.ndarray
    shN: np.ndarray

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        expected = {"means": (n, 3), "quats": (n, 4), "log_scales": (n, 3), "opacity_logits": (n,), "sh0": (n, 3)}
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected {shape}")
        if self.shN.ndim != 3 or self.shN.shape[0] != n or self.shN.shape[2] != 3:
            raise ValueError(f"shN has shape {self.shN.shape}, expected ({n}, K, 3)")
        sh_degree_for_rest(self.shN.shape[1])

    @classmethod
    def empty(cls, n: int, sh_degree: int = 0) -> Splats:
        k = (sh_degree + 1) ** 2 - 1

        def zeros(*shape: int) -> np.ndarray:
            return np.zeros(shape, dtype=np.float32)

        quats = zeros(n, 4)
        quats[:, 0] = 1.0
        return cls(zeros(n, 3), quats, zeros(n, 3), zeros(n), zeros(n, 3), zeros(n, k, 3))

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        return sh_degree_for_rest(self.shN.shape[1])

    @property
    def opacities(self) -> np.ndarray:
        opacities: np.ndarray = 1.0 / (1.0 + np.exp(-self.opacity_logits))
        return opacities

    @property
    def scales(self) -> np.ndarray:
        scales: np.ndarray = np.exp(self.log_scales)
        return scales

    @property
    def colors(self) -> np.ndarray:
        """Base (view-independent) RGB in [0, 1] before clamping, from the degree-0 band."""
        return 0.5 + SH_C0 * self.sh0

    def subset(self, index: np.ndarray) -> Splats:
        """The splats selected by a boolean mask or an index array, in that order."""
        return Splats(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def finite_mask(self) -> np.ndarray:
        """True for splats whose every attribute is finite."""
        mask = np.ones(len(self), dtype=bool)
        for f in fields(self):
            values = getattr(self, f.name).reshape(len(self), -1)
            mask &= np.isfinite(values).all(axis=1)
        return mask
