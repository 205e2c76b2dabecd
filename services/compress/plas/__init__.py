"""``plas``: the import name under which gsplat's ``compression/sort.py`` looks for PLAS.

The project's own Parallel Linear Assignment Sorting lives in :mod:`spaceport_compress.plas`;
this package only gives it the name the client's tools import, so that
``gsplat.compression.PngCompression(use_sort=True)`` sorts with it.

>>> import torch
>>> grid = torch.rand(3, 8, 8)
>>> sorted_grid, indices = sort_with_plas(grid, seed=0)
>>> torch.equal(sorted_grid, grid.flatten(1)[:, indices.flatten()].view(3, 8, 8))
True
"""

from spaceport_compress.plas import sort_with_plas

__all__ = ["sort_with_plas"]
