"""Georeferencing: move a reconstruction into a local ENU frame (metres, z up) from GPS.

SfM alone knows neither scale nor which way is up. With GPS on at least three placed
photos that do not lie on one line, the similarity (scale, rotation, translation) that best
maps the camera centres onto their GPS positions, converted to ENU around an origin,
is applied to the whole model.

Example::

    origin = origin_for([(47.37, 8.54, 450.0), (47.38, 8.55, 452.0)])
    result = georeference(model, {"a.jpg": (47.37, 8.54, 450.0), ...}, origin)
    result["scale"], result["rmse_m"]      # or {"used": False, "reason": ...}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pycolmap

from spaceport_sfm.geo import GeoOrigin

MIN_GPS_IMAGES = 3
# The second principal spread of the GPS positions, relative to the first: below this they
# lie on a line and the roll about that line is not determined.
MIN_SPREAD_RATIO = 0.02


def origin_for(lat_lon_alts: Sequence[tuple[float, float, float]]) -> GeoOrigin:
    """The ENU origin of a capture: the mean GPS position of its photos."""
    mean = np.asarray(lat_lon_alts, dtype=np.float64).mean(axis=0)
    return GeoOrigin(lat=float(mean[0]), lon=float(mean[1]), alt=float(mean[2]))


def georeference(
    model: pycolmap.Reconstruction, gps_by_name: Mapping[str, tuple[float, float, float]], origin: GeoOrigin
) -> dict[str, Any]:
    """Align ``model`` in place to ENU around ``origin``; describe what was done."""
    names, centres = [], []
    for image in model.images.values():
        if image.has_pose and image.name in gps_by_name:
            names.append(image.name)
            centres.append(image.projection_center())
    if len(names) < MIN_GPS_IMAGES:
        return {
            "used": False,
            "reason": f"only {len(names)} placed photos have GPS; {MIN_GPS_IMAGES} are needed",
            "images_with_gps": len(names),
        }
    targets = origin.to_enu(np.array([gps_by_name[name] for name in names]))
    spread = np.linalg.svd(targets - targets.mean(axis=0), compute_uv=False)
    if spread[1] < MIN_SPREAD_RATIO * spread[0] or spread[0] < 1e-3:
        return {
            "used": False,
            "reason": "the GPS positions lie on one line, so the orientation is ambiguous",
            "images_with_gps": len(names),
        }
    source = np.asarray(centres)
    enu_from_model = pycolmap.estimate_sim3d(source, targets)
    if enu_from_model is None:
        return {
            "used": False,
            "reason": "no similarity transform fits the GPS positions",
            "images_with_gps": len(names),
        }
    model.transform(enu_from_model)
    moved = np.array([model.find_image_with_name(name).projection_center() for name in names])
    residuals = np.linalg.norm(moved - targets, axis=1)
    return {
        "used": True,
        "frame": "ENU: x east, y north, z up, metres",
        "origin": origin.to_dict(),
        "images_with_gps": len(names),
        "scale": float(enu_from_model.scale),
        "rmse_m": float(np.sqrt(np.mean(residuals**2))),
        "max_error_m": float(residuals.max()),
    }
