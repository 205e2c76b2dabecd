"""Read PlayCanvas' compressed PLY: chunks of 256 splats, each splat packed into four uint32.

Layout (as the PlayCanvas engine writes it): element ``chunk`` holds per-chunk float32 bounds
(``min_x..max_z``, ``min_scale_x..max_scale_z``, optionally ``min_r..max_b``); element
``vertex`` holds ``packed_position`` (11/10/11 bits, lerp in the chunk's box),
``packed_rotation`` (2-bit index of the largest component + 3 x 10-bit smallest-three),
``packed_scale`` (11/10/11 bits, lerp of log scales) and ``packed_color`` (8 bits each of
r, g, b colour and opacity); an optional element ``sh`` holds uint8 ``f_rest_*``.
:func:`read_compressed_ply` returns them as :class:`~spaceport.splats.Splats`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from spaceport.splats import SH_C0, SplatFileError, Splats, sh_degree_for_rest

CHUNK_SIZE = 256
PACKED = ("packed_position", "packed_rotation", "packed_scale", "packed_color")


def is_compressed_ply(names: tuple[str, ...] | list[str]) -> bool:
    """True when a ``vertex`` element's property names are the packed layout."""
    return all(name in names for name in PACKED)


def _unorm(values: np.ndarray, shift: int, bits: int) -> np.ndarray:
    return ((values >> np.uint32(shift)) & np.uint32((1 << bits) - 1)).astype(np.float64) / ((1 << bits) - 1)


def _lerp(lo: np.ndarray, hi: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.asarray(lo * (1 - t) + hi * t)


def read_compressed_ply(path: str | Path) -> Splats:
    """Decode a PlayCanvas compressed PLY into :class:`Splats` (standard parameterisation)."""
    from plyfile import PlyData

    path = Path(path)
    try:
        ply = PlyData.read(str(path))
        chunk, vertex = ply["chunk"].data, ply["vertex"].data
    except KeyError:
        raise SplatFileError(f"{path.name} lacks the chunk or vertex element of a compressed PLY.") from None
    except Exception as error:  # plyfile raises several unrelated types for damaged files
        raise SplatFileError(f"{path.name} is truncated or is not a valid PLY file ({error}).") from None
    n = len(vertex)
    if len(chunk) != math.ceil(n / CHUNK_SIZE):
        raise SplatFileError(
            f"{path.name} has {len(chunk)} chunks for {n} splats; expected {math.ceil(n / CHUNK_SIZE)}."
        )
    try:
        packed = {name: np.asarray(vertex[name], dtype=np.uint32) for name in PACKED}
        bounds = {name: np.asarray(chunk[name], dtype=np.float64).repeat(CHUNK_SIZE)[:n] for name in chunk.dtype.names}

        def lerp3(prefix: str, value: np.ndarray) -> np.ndarray:
            return np.stack(
                [
                    _lerp(bounds[f"min_{prefix}{axis}"], bounds[f"max_{prefix}{axis}"], value[:, i])
                    for i, axis in enumerate("xyz")
                ],
                axis=1,
            )
    except (KeyError, ValueError) as error:
        raise SplatFileError(f"{path.name} is not a PlayCanvas compressed PLY (missing {error}).") from None

    def unpack_111011(values: np.ndarray) -> np.ndarray:
        return np.stack([_unorm(values, 21, 11), _unorm(values, 11, 10), _unorm(values, 0, 11)], axis=1)

    means = lerp3("", unpack_111011(packed["packed_position"]))
    log_scales = lerp3("scale_", unpack_111011(packed["packed_scale"]))

    rotation = packed["packed_rotation"]
    kept = np.stack([_unorm(rotation, 20, 10), _unorm(rotation, 10, 10), _unorm(rotation, 0, 10)], axis=1)
    kept = (kept - 0.5) * math.sqrt(2)  # each in [-1/sqrt2, 1/sqrt2]
    largest = (rotation >> np.uint32(30)).astype(np.int64)
    quats = np.empty((n, 4), np.float64)
    np.put_along_axis(quats, np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest], kept, axis=1)
    quats[np.arange(n), largest] = np.sqrt(np.maximum(0.0, 1 - (kept**2).sum(1)))

    color = packed["packed_color"]
    rgb = np.stack([_unorm(color, 24, 8), _unorm(color, 16, 8), _unorm(color, 8, 8)], axis=1)
    if "min_r" in bounds:
        rgb = np.stack([_lerp(bounds[f"min_{c}"], bounds[f"max_{c}"], rgb[:, i]) for i, c in enumerate("rgb")], axis=1)
    opacity = np.clip(_unorm(color, 0, 8), 1e-6, 1 - 1e-6)

    shN = np.zeros((n, 0, 3), np.float32)
    if "sh" in [element.name for element in ply.elements]:
        sh = ply["sh"].data
        rest = sorted((name for name in sh.dtype.names if name.startswith("f_rest_")), key=lambda s: int(s[7:]))
        try:
            k = (sh_degree_for_rest(len(rest) // 3) + 1) ** 2 - 1
        except ValueError:
            raise SplatFileError(f"{path.name} has {len(rest)} SH coefficients, which matches no degree 1-3.") from None
        raw = np.stack([np.asarray(sh[name], np.float64) for name in rest], axis=1)
        unit = np.where(raw == 0, 0.0, np.where(raw == 255, 1.0, (raw + 0.5) / 256))
        shN = ((unit - 0.5) * 8).reshape(n, 3, k).transpose(0, 2, 1).astype(np.float32)

    return Splats(
        means=means.astype(np.float32),
        quats=quats.astype(np.float32),
        log_scales=log_scales.astype(np.float32),
        opacity_logits=np.log(opacity / (1 - opacity)).astype(np.float32),
        sh0=((rgb - 0.5) / SH_C0).astype(np.float32),
        shN=np.ascontiguousarray(shN, dtype=np.float32),
    )
