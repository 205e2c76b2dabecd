"""Gaussian splats in memory and in the standard 3DGS PLY layout (numpy only, no torch).

>>> import tempfile
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "empty.ply"
>>> _ = write_ply(Splats.empty(0), path)
>>> len(read_ply(path))
0
"""

from spaceport.splats.model import SH_C0, Splats, sh_degree_for_rest
from spaceport.splats.ply import SplatFileError, read_ply, read_vertex_table, splats_from_vertex_table, write_ply

__all__ = [
    "SH_C0",
    "Splats",
    "SplatFileError",
    "read_ply",
    "read_vertex_table",
    "sh_degree_for_rest",
    "splats_from_vertex_table",
    "write_ply",
]
