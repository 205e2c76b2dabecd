"""Gaussian splats in memory and in the standard 3DGS PLY layout (numpy only, no torch).

Example::

    from spaceport.splats import read_ply, write_ply
    splats = read_ply("splat.ply")
    write_ply(splats.subset(splats.finite_mask()), "clean.ply")
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
