"""Geodesy for drone captures: WGS84 latitude/longitude/altitude <-> a local ENU frame, and gimbal angles.

ENU is east-north-up in metres around an origin (its own lat/lon/alt). pycolmap's
``GPSTransform`` does the ellipsoid maths; this module fixes the ellipsoid (WGS84, what GPS
reports) and the array shapes.

>>> origin = GeoOrigin(47.3769, 8.5417, 408.0)
>>> enu = origin.to_enu(np.array([[47.3770, 8.5418, 420.0]]))  # [1, 3] metres
>>> np.round(enu, 2).tolist(), np.round(origin.to_lat_lon_alt(enu), 6).tolist()
([[7.55, 11.12, 12.0]], [[47.377, 8.5418, 420.0]])
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


def _gps_transform() -> Any:
    import pycolmap

    return pycolmap.GPSTransform(pycolmap.GPSTransformEllipsoid.WGS84)


@dataclass(frozen=True)
class GeoOrigin:
    """The origin of a local ENU frame (degrees, degrees, metres above the ellipsoid)."""

    lat: float
    lon: float
    alt: float

    def to_enu(self, lat_lon_alt: np.ndarray) -> np.ndarray:
        """[N, 3] lat/lon/alt -> [N, 3] east/north/up metres."""
        points = np.asarray(lat_lon_alt, dtype=np.float64).reshape(-1, 3)
        return np.asarray(_gps_transform().ellipsoid_to_enu(points, self.lat, self.lon, self.alt))

    def to_lat_lon_alt(self, enu: np.ndarray) -> np.ndarray:
        """[N, 3] east/north/up metres -> [N, 3] lat/lon/alt."""
        points = np.asarray(enu, dtype=np.float64).reshape(-1, 3)
        return np.asarray(_gps_transform().enu_to_ellipsoid(points, self.lat, self.lon, self.alt))

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def camera_rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """World-to-camera rotation [3, 3] (OpenCV axes) of a gimbal at DJI's angles, degrees.

    Pitch 0 looks at the horizon and -90 straight down; yaw is the heading clockwise from north
    (the image's top points that way when looking down); roll is positive with the right side down.

    >>> np.round(camera_rotation(-90.0, 0.0, 0.0), 6) + 0.0  # down, image top to the north
    array([[ 1.,  0.,  0.],
           [ 0., -1.,  0.],
           [ 0.,  0., -1.]])
    >>> [round(a, 6) + 0.0 for a in gimbal_angles(camera_rotation(-30.0, 120.0, 5.0))]
    [-30.0, 120.0, 5.0]
    """
    p, y, r = np.radians([pitch, yaw, roll])
    forward = np.array([np.sin(y) * np.cos(p), np.cos(y) * np.cos(p), np.sin(p)])
    up = np.array([-np.sin(y) * np.sin(p), -np.cos(y) * np.sin(p), np.cos(p)])
    right = np.cross(forward, up)
    right, up = right * np.cos(r) - up * np.sin(r), up * np.cos(r) + right * np.sin(r)
    return np.stack([right, -up, forward])


def gimbal_angles(R: np.ndarray) -> tuple[float, float, float]:
    """(pitch, yaw, roll) in degrees of a world-to-camera rotation: the inverse of :func:`camera_rotation`."""
    right, up, forward = R[0], -R[1], R[2]
    pitch = math.asin(float(np.clip(forward[2], -1.0, 1.0)))
    roll = math.atan2(-float(right[2]), float(up[2])) if abs(pitch) < math.pi / 2 - 1e-9 else 0.0
    level_right = right * math.cos(roll) + up * math.sin(roll)
    yaw = math.atan2(-float(level_right[1]), float(level_right[0]))
    return (math.degrees(pitch), math.degrees(yaw) % 360.0, math.degrees(roll))
