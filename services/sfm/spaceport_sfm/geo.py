"""Geodesy for drone captures: WGS84 latitude/longitude/altitude <-> a local ENU frame.

ENU is east-north-up in metres around an origin (its own lat/lon/alt). pycolmap's
``GPSTransform`` does the ellipsoid maths; this module fixes the ellipsoid (WGS84, what GPS
reports) and the array shapes.

Example::

    origin = GeoOrigin(47.3769, 8.5417, 408.0)
    enu = origin.to_enu(np.array([[47.3770, 8.5418, 420.0]]))  # [1, 3] metres
    lla = origin.to_lat_lon_alt(enu)                            # back again
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


def _gps_transform():
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
