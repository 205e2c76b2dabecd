"""What the block planner needs of a reconstruction: its cameras and its points on a ground grid.

The train service plans blocks in its Lambda (:mod:`spaceport.handlers.block_plan`), which reads no
COLMAP model; the SfM job leaves it :class:`~spaceport.contracts.blocks.SceneSummary` instead
(:attr:`~spaceport.contracts.layout.SfmOutputs.SCENE_SUMMARY`): every placed photo's pinhole
camera and the sparse points counted on a grid of :data:`GRID_CELLS` cells along the longer
side of the ground.

The ground is the ENU east-north plane when the model is georeferenced. Otherwise "up" is
estimated: the normal of the plane the cameras fly in when they do (a mapping flight, an orbit),
turned the way the photos' upright edges (or, for nadir photos, their backs) point; else the
mean upright edge of the photos. The first ground axis then runs along the flight.

>>> import pycolmap
>>> model = pycolmap.Reconstruction()
>>> summary = scene_summary(model, georeferenced=True)
Traceback (most recent call last):
...
ValueError: the model has no placed photos to summarise
"""

from __future__ import annotations

from typing import Any

import numpy as np

from spaceport.contracts.blocks import GridCell, SceneSummary, ViewSummary

GRID_CELLS = 128
# The grid covers the points between these percentiles (far outliers would make its cells coarse).
EXTENT_PERCENTILES = (1.0, 99.0)
HEIGHT_PERCENTILES = (2.0, 98.0)
_ENU = np.eye(3)


def scene_summary(model: Any, georeferenced: bool) -> SceneSummary:
    """The summary of a ``pycolmap.Reconstruction`` with PINHOLE cameras (the undistorted model)."""
    images = sorted((image for image in model.images.values() if image.has_pose), key=lambda image: image.name)
    if not images:
        raise ValueError("the model has no placed photos to summarise")
    rotations = np.stack([image.cam_from_world().rotation.matrix() for image in images])
    centres = np.stack([image.projection_center() for image in images])
    points = np.array([point.xyz for point in model.points3D.values()], dtype=np.float64).reshape(-1, 3)
    axes = _ENU if georeferenced else ground_axes(rotations, centres)
    views = [
        _view(model, image, rotation, centre)
        for image, rotation, centre in zip(images, rotations, centres, strict=True)
    ]
    ground = points @ axes.T if len(points) else np.zeros((0, 3))
    cells, cell_size, origin = _grid(ground)
    heights = tuple(float(h) for h in np.percentile(ground[:, 2], HEIGHT_PERCENTILES)) if len(ground) else (0.0, 0.0)
    return SceneSummary(
        frame="enu" if georeferenced else "sfm",
        axes=(_vector(axes[0]), _vector(axes[1]), _vector(axes[2])),
        views=views,
        cell_size=cell_size,
        origin=origin,
        cells=cells,
        points=len(points),
        heights=(heights[0], heights[1]),
    )


def ground_axes(rotations: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """[3, 3] rows east-like, north-like, up for a model without georeference.

    ``rotations`` [N, 3, 3] world-to-camera (OpenCV axes), ``centres`` [N, 3].
    """
    upright = -rotations[:, 1, :]  # the world direction of each photo's upward image edge
    backwards = -rotations[:, 2, :]  # against the viewing direction
    mean_upright, mean_back = upright.mean(axis=0), backwards.mean(axis=0)
    cue = mean_upright if np.linalg.norm(mean_upright) > 0.3 else mean_back
    spread = centres - centres.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(spread.T @ spread) if len(centres) >= 3 else (np.zeros(3), np.eye(3))
    planar = eigenvalues[1] > 0 and eigenvalues[0] < 0.1 * eigenvalues[1]
    if planar:
        up = eigenvectors[:, 0] * (1.0 if eigenvectors[:, 0] @ cue >= 0 else -1.0)
    else:
        up = cue
    up = up / max(float(np.linalg.norm(up)), 1e-12)
    along = eigenvectors[:, 2] - (eigenvectors[:, 2] @ up) * up
    if np.linalg.norm(along) < 1e-6:  # the flight runs straight up: any horizontal axis will do
        along = np.cross(up, [1.0, 0.0, 0.0] if abs(up[0]) < 0.9 else [0.0, 1.0, 0.0])
    east = along / np.linalg.norm(along)
    return np.stack([east, np.cross(up, east), up])


def _vector(row: np.ndarray) -> tuple[float, float, float]:
    return (float(row[0]), float(row[1]), float(row[2]))


def _view(model: Any, image: Any, rotation: np.ndarray, centre: np.ndarray) -> ViewSummary:
    camera = model.cameras[image.camera_id]
    if camera.model.name not in ("PINHOLE", "SIMPLE_PINHOLE"):
        raise ValueError(f"{image.name} has a {camera.model.name} camera: summarise the undistorted model")
    fx, fy, cx, cy = (
        (camera.params[0], camera.params[0], camera.params[1], camera.params[2])
        if camera.model.name == "SIMPLE_PINHOLE"
        else tuple(camera.params[:4])
    )
    return ViewSummary(
        name=image.name,
        centre=(float(centre[0]), float(centre[1]), float(centre[2])),
        rotation=(*_vector(rotation[0]), *_vector(rotation[1]), *_vector(rotation[2])),
        fx=float(fx),
        fy=float(fy),
        cx=float(cx),
        cy=float(cy),
        width=int(camera.width),
        height=int(camera.height),
    )


def _grid(ground: np.ndarray) -> tuple[list[GridCell], float, tuple[float, float]]:
    """Non-empty cells of a square grid over the points' ground extent: (i, j, count, lowest, highest)."""
    if len(ground) == 0:
        return [], 1.0, (0.0, 0.0)
    low = np.percentile(ground[:, :2], EXTENT_PERCENTILES[0], axis=0)
    high = np.percentile(ground[:, :2], EXTENT_PERCENTILES[1], axis=0)
    pad = 0.05 * (high - low) + 1e-6
    low, high = low - pad, high + pad
    cell = float(max(high - low) / GRID_CELLS)
    shape = np.maximum(np.ceil((high - low) / cell).astype(int), 1)
    index = np.floor((ground[:, :2] - low) / cell).astype(int)
    inside = np.all((index >= 0) & (index < shape), axis=1)
    index, heights = index[inside], ground[inside, 2]
    flat = index[:, 0] * shape[1] + index[:, 1]
    counts = np.bincount(flat, minlength=int(shape[0] * shape[1]))
    lowest = np.full(counts.shape, np.inf)
    highest = np.full(counts.shape, -np.inf)
    np.minimum.at(lowest, flat, heights)
    np.maximum.at(highest, flat, heights)
    cells: list[GridCell] = [
        (int(k // shape[1]), int(k % shape[1]), int(counts[k]), round(float(lowest[k]), 3), round(float(highest[k]), 3))
        for k in np.flatnonzero(counts)
    ]
    return cells, cell, (float(low[0]), float(low[1]))
