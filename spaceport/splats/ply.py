"""Read and write the standard 3DGS PLY layout.

Layout: binary little-endian float32 vertex properties
``x y z [nx ny nz] f_dc_0..2 [f_rest_0..] opacity scale_0..2 rot_0..3``, with ``f_rest``
channel-major (all of red's higher bands, then green's, then blue's), opacity as a logit,
scales as logs and rotations as (w, x, y, z). Writers include zero normals because some
viewers expect them; readers accept them absent.

``write_ply(splats, path)`` writes atomically and returns ``path``; ``read_ply(path)`` reads it
back (named errors for anything that is not a 3DGS PLY).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode
from spaceport.files import atomic_path
from spaceport.splats.model import Splats, sh_degree_for_rest


class SplatFileError(SpaceportError):
    """A splat file that cannot be read: empty, truncated, or not a 3DGS PLY."""

    code = "bad_splat_file"
    exit_code = ExitCode.BAD_SPLAT_FILE


POSITION = ["x", "y", "z"]
NORMALS = ["nx", "ny", "nz"]
BASE_COLOUR = ["f_dc_0", "f_dc_1", "f_dc_2"]
SCALES = ["scale_0", "scale_1", "scale_2"]
ROTATION = ["rot_0", "rot_1", "rot_2", "rot_3"]
REQUIRED = [*POSITION, *BASE_COLOUR, "opacity", *SCALES, *ROTATION]


def _rest_names(names: list[str]) -> list[str]:
    rest = [n for n in names if n.startswith("f_rest_")]
    return sorted(rest, key=lambda n: int(n.removeprefix("f_rest_")))


def splats_from_vertex_table(vertex: np.ndarray, source: str) -> Splats:
    """Build :class:`Splats` from a structured array holding the standard properties."""
    names = list(vertex.dtype.names or ())
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise SplatFileError(f"{source} is not a 3D Gaussian splat PLY: it lacks {', '.join(missing)}.")
    rest = _rest_names(names)
    try:
        degree = sh_degree_for_rest(len(rest) // 3) if len(rest) % 3 == 0 else -1
    except ValueError:
        degree = -1
    if degree < 0:
        raise SplatFileError(f"{source} has {len(rest)} f_rest properties, which matches no SH degree 0-3.")

    def col(*names: str) -> np.ndarray:
        return np.stack([np.asarray(vertex[name], dtype=np.float32) for name in names], axis=1)

    n = len(vertex)
    k = (degree + 1) ** 2 - 1
    shN = col(*rest).reshape(n, 3, k).transpose(0, 2, 1) if k else np.zeros((n, 0, 3), np.float32)
    return Splats(
        means=col("x", "y", "z"),
        quats=col("rot_0", "rot_1", "rot_2", "rot_3"),
        log_scales=col("scale_0", "scale_1", "scale_2"),
        opacity_logits=np.asarray(vertex["opacity"], dtype=np.float32),
        sh0=col("f_dc_0", "f_dc_1", "f_dc_2"),
        shN=np.ascontiguousarray(shN, dtype=np.float32),
    )


def read_vertex_table(path: str | Path) -> np.ndarray:
    """The ``vertex`` element of any PLY as a structured array, with named errors."""
    from plyfile import PlyData

    path = Path(path)
    if not path.is_file():
        raise SplatFileError(f"{path.name} does not exist.")
    if path.stat().st_size == 0:
        raise SplatFileError(f"{path.name} is empty.")
    try:
        ply = PlyData.read(str(path))
        vertex: np.ndarray = ply["vertex"].data
    except KeyError:
        raise SplatFileError(f"{path.name} has no vertex element, so it holds no splats.") from None
    except Exception as error:  # plyfile raises several unrelated types for damaged files
        raise SplatFileError(f"{path.name} is truncated or is not a valid PLY file ({error}).") from None
    return vertex


def read_ply(path: str | Path) -> Splats:
    """Read a standard 3DGS PLY (SH degree 0-3, normals optional)."""
    path = Path(path)
    return splats_from_vertex_table(read_vertex_table(path), path.name)


def write_ply(splats: Splats, path: str | Path) -> Path:
    """Write ``splats`` in the standard layout, atomically (a partial file never appears)."""
    from plyfile import PlyData, PlyElement

    path = Path(path)
    n, k = len(splats), splats.shN.shape[1]
    rest = [f"f_rest_{i}" for i in range(3 * k)]
    names = [*POSITION, *NORMALS, *BASE_COLOUR, *rest, "opacity", *SCALES, *ROTATION]
    columns = np.concatenate(
        [
            splats.means,
            np.zeros((n, 3), np.float32),
            splats.sh0,
            splats.shN.transpose(0, 2, 1).reshape(n, 3 * k),
            splats.opacity_logits[:, None],
            splats.log_scales,
            splats.quats,
        ],
        axis=1,
    ).astype(np.float32)
    table = np.empty(n, dtype=[(name, "<f4") for name in names])
    for i, name in enumerate(names):
        table[name] = columns[:, i]
    with atomic_path(path) as partial:
        PlyData([PlyElement.describe(table, "vertex")], byte_order="<").write(str(partial))
    return path
