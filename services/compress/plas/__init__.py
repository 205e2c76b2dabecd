"""``plas``: the import name under which gsplat's ``compression/sort.py`` looks for PLAS.

The project's own Parallel Linear Assignment Sorting lives in :mod:`spaceport_compress.plas`;
this package only gives it the name the client's tools import, so that
``gsplat.compression.PngCompression(use_sort=True)`` sorts with it.

Example::

    from plas import sort_with_plas

    sorted_grid, indices = sort_with_plas(grid)  # grid: [C, H, W]
"""

from spaceport_compress.plas import sort_with_plas

__all__ = ["sort_with_plas"]
