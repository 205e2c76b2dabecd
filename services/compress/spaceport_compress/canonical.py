"""One representation per splat shape: the rotation nearest to identity among its 24 equivalents.

A Gaussian's covariance ``R diag(s^2) R^T`` does not change when its local axes are permuted
or two of them flipped, i.e. when ``R`` becomes ``R G`` for any of the 24 rotations ``G`` of a
cube, with the scales permuted to follow their axes. A trained splat carries an arbitrary one
of these 24 choices, about 4.6 bits of noise per splat that the textures would have to store.
Picking the equivalent whose quaternion has the largest ``|w|`` puts every rotation within
about 63 degrees of identity, so ``w`` is always the largest component (a constant quats
alpha) and the three stored components stay within +-0.38 instead of +-0.71.

A quarter turn about z with scales (1, 2, 3) is the identity with x and y's scales swapped:

>>> quats, log_scales = canonical_orientation(
...     np.array([[np.sqrt(0.5), 0, 0, np.sqrt(0.5)]]), np.log(np.array([[1.0, 2, 3]]))
... )
>>> np.round(quats, 6).tolist(), np.round(np.exp(log_scales), 6).tolist()
([[1.0, 0.0, 0.0, 0.0]], [[2.0, 1.0, 3.0]])
"""

from __future__ import annotations

import itertools

import numpy as np


def _cube_rotations() -> np.ndarray:
    """The 24 unit quaternions ``[24, 4]`` (w, x, y, z) of the cube's rotations, one of each +-pair."""
    h, r = 0.5, np.sqrt(0.5)
    candidates = [np.eye(4)[i] for i in range(4)]  # identity and the three axis half turns
    for i, j in itertools.combinations(range(4), 2):  # quarter turns and edge half turns
        for sign in (1.0, -1.0):
            q = np.zeros(4)
            q[i], q[j] = r, sign * r
            candidates.append(q)
    for signs in itertools.product((1.0, -1.0), repeat=3):  # third turns about the diagonals
        candidates.append(h * np.array([1.0, *signs]))
    return np.array(candidates)


CUBE_ROTATIONS = _cube_rotations()


def quaternion_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of ``a`` ``[..., 4]`` and ``b`` ``[..., 4]`` (w, x, y, z): ``R(ab) = R(a) R(b)``."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def rotation_matrices(quats: np.ndarray) -> np.ndarray:
    """``[..., 3, 3]`` rotation matrices of unit quaternions ``[..., 4]`` (w, x, y, z)."""
    w, x, y, z = np.moveaxis(quats, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=-2,
    )


def quaternions_from_matrices(matrices: np.ndarray) -> np.ndarray:
    """Unit quaternions ``[N, 4]`` (w, x, y, z), ``w >= 0``, of rotation matrices ``[N, 3, 3]``.

    Shepperd's method: the quaternion is read off the largest of ``1 + trace`` and the three
    ``1 + 2 m_ii - trace``, so that no division is by a small number.

    >>> q = np.array([[0.5, 0.5, 0.5, 0.5], [0.0, 0.0, 1.0, 0.0]])
    >>> np.round(quaternions_from_matrices(rotation_matrices(q)), 6).tolist()
    [[0.5, 0.5, 0.5, 0.5], [0.0, 0.0, 1.0, 0.0]]
    """
    m = matrices.astype(np.float64)
    trace = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    candidates = np.stack(
        [1 + trace, 1 + 2 * m[:, 0, 0] - trace, 1 + 2 * m[:, 1, 1] - trace, 1 + 2 * m[:, 2, 2] - trace], 1
    )
    pick = candidates.argmax(1)
    root = np.sqrt(np.maximum(candidates[np.arange(len(m)), pick], 1e-300))
    # For each pick, 4 q_pick^2 = candidate and the other components follow from the off-diagonals.
    diff = np.stack([m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]], 1)  # 4 w (x, y, z)
    summed = np.stack([m[:, 1, 0] + m[:, 0, 1], m[:, 0, 2] + m[:, 2, 0], m[:, 2, 1] + m[:, 1, 2]], 1)  # 4 (xy, xz, yz)
    q = np.empty((len(m), 4))
    rows = [
        np.stack([root, diff[:, 0] / root, diff[:, 1] / root, diff[:, 2] / root], 1),
        np.stack([diff[:, 0] / root, root, summed[:, 0] / root, summed[:, 1] / root], 1),
        np.stack([diff[:, 1] / root, summed[:, 0] / root, root, summed[:, 2] / root], 1),
        np.stack([diff[:, 2] / root, summed[:, 1] / root, summed[:, 2] / root, root], 1),
    ]
    for k, row in enumerate(rows):
        q[pick == k] = row[pick == k] / 2
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return np.asarray(q * np.where(q[:, :1] < 0, -1.0, 1.0))


# Local axis j of R G is +-axis AXIS_SOURCE[g, j] of R, so its scale comes from there.
AXIS_SOURCE = np.abs(rotation_matrices(CUBE_ROTATIONS)).argmax(axis=1)  # [24, 3]


def canonical_orientation(quats: np.ndarray, log_scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same Gaussians as ``quats`` ``[N, 4]`` (w, x, y, z) and ``log_scales`` ``[N, 3]``, with
    each rotation replaced by its equivalent nearest to identity, ``w >= 0``, unit length.

    Zero quaternions (no rotation given) become identity.
    """
    q = quats.astype(np.float64)
    norms = np.linalg.norm(q, axis=1, keepdims=True)
    q = np.where(norms > 0, q / np.where(norms > 0, norms, 1.0), np.array([1.0, 0, 0, 0]))
    # w of q * g is the dot product of q with the conjugate of g.
    w = q @ (CUBE_ROTATIONS * np.array([1.0, -1, -1, -1])).T  # [N, 24]
    best = np.abs(w).argmax(1)
    rotated = quaternion_product(q, CUBE_ROTATIONS[best])
    rotated *= np.where(rotated[:, :1] < 0, -1.0, 1.0)
    scales = np.take_along_axis(log_scales, AXIS_SOURCE[best], axis=1)
    return rotated.astype(np.float32), scales.astype(log_scales.dtype)
