"""A synthetic drone capture with exact ground truth: ``spaceport sample OUT.zip``.

A small outdoor-like scene (a textured ground plane with a few textured buildings, a tower
and crates) is ray-cast with numpy from known cameras. Each JPEG carries GPS EXIF (the camera
centre converted from the local ENU frame to lat/lon/alt around a fixed origin, plus GPS
noise of a chosen size), its 35 mm focal length and the time it was taken. The truth
(intrinsics, world-to-camera poses in OpenCV axes, centres, the GPS as written, the ENU
origin, the scene extent, ground markers) is written beside the zip as ``OUT.truth.json``.
The world frame IS the ENU frame: x east, y north, z up, metres.

:class:`SampleOptions` draws what the SfM and training issues need; the defaults are the
original sample (a drone orbit around the lot, looking down at it):

- ``flight="grid"``: a nadir mapping flight in parallel lines (the case that domes without GPS
  in bundle adjustment); ``flight="wide"``: the same over an area three times as long as wide,
  with more buildings (for captures too large for one block);
- ``gps_noise_m``: GPS error of a known size (normal, per axis);
- ``sky``: a low oblique orbit whose views see the horizon and a sky;
- ``exposure_stops``: exposure that changes from shot to shot;
- ``markers``: checkerboard ground markers at known ENU positions and of known size;
- ``xmp``: DJI-style XMP (relative altitude, gimbal angles); ``gps_in_exif=False`` with
  ``flight_log=True``: the GPS only in a flight-log CSV beside the zip (``OUT.flight.csv``);
- ``distortion_k1``, ``distortion_k2``: a lens with radial distortion (COLMAP's RADIAL model).

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> capture = make_sample(folder / "grid.zip", n=6, width=96, height=72, options=SampleOptions(flight="grid"))
>>> first = capture.truth.cameras[0]
>>> len(capture.truth.cameras), round(float(first.centre[2])), round(first.gimbal[0])  # photos, metres up, pitch
(6, 30, -89)

or ``spaceport sample demo/sample.zip --n 24 --flight grid --gps-noise-m 2``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from spaceport.entrypoint import configure_logging
from spaceport.files import atomic_path, write_json_atomic
from spaceport.progress import ProgressReporter
from spaceport_sfm.exif import FILM_35MM_WIDTH_MM, make_exif
from spaceport_sfm.geo import GeoOrigin, camera_rotation, gimbal_angles
from spaceport_sfm.xmp import DjiXmp, make_dji_xmp

# Zurich, Lindenhof: any fixed place will do; it only has to be a real lat/lon.
DEFAULT_ORIGIN = GeoOrigin(lat=47.372769, lon=8.540585, alt=428.0)
DEFAULT_FOCAL_35MM = 28  # a typical drone camera (DJI Mini/Mavic: 24-28 mm equivalent)
TEXTURE_TABLE = 256
FLIGHTS = ("orbit", "grid", "wide")
FLIGHT_ALTITUDE_M = {"orbit": 26.0, "grid": 30.0, "wide": 40.0}
# Mapping-flight overlaps, as flight planners set them: along the line and between lines.
FORWARD_OVERLAP = 0.8
SIDE_OVERLAP = 0.7
WIDE_ASPECT = 3.0  # a wide flight's lines are this many times longer than the lines are apart in all
FIRST_SHOT = datetime(2026, 6, 1, 10, 0, 0)
SECONDS_BETWEEN_SHOTS = 2.0
MARKER_SIZE_M = 1.5
SKY_HORIZON = np.array([0.86, 0.89, 0.93])
SKY_ZENITH = np.array([0.36, 0.56, 0.86])


@dataclass(frozen=True)
class SampleOptions:
    """What the generated capture shows; the defaults are the original sample."""

    flight: str = "orbit"  # orbit | grid | wide
    altitude_m: float | None = None  # above the ground; None: the flight's own (FLIGHT_ALTITUDE_M)
    gps_noise_m: float = 0.0  # standard deviation of the GPS error, per horizontal axis
    gps_vertical_noise_m: float | None = None  # the same vertically; None: gps_noise_m
    sky: bool = False  # a low oblique orbit: the views see the horizon and a sky
    exposure_stops: float = 0.0  # each shot's exposure is off by up to this many stops
    markers: bool = False  # checkerboard markers on the ground at known ENU positions
    xmp: bool = False  # DJI-style XMP: GPS, relative altitude, gimbal angles
    gps_in_exif: bool = True  # False: no GPS in the EXIF (it then lives in the flight log only)
    flight_log: bool = False  # write the GPS as a flight-log CSV beside the zip
    distortion_k1: float = 0.0  # radial distortion of the lens (COLMAP's RADIAL k1 and k2)
    distortion_k2: float = 0.0

    def __post_init__(self) -> None:
        if self.flight not in FLIGHTS:
            raise ValueError(f"flight must be one of {', '.join(FLIGHTS)}")
        if self.sky and self.flight != "orbit":
            raise ValueError("a sky needs the orbit flight: nadir photos do not see the horizon")
        if self.gps_noise_m < 0 or (self.gps_vertical_noise_m or 0.0) < 0 or self.exposure_stops < 0:
            raise ValueError("noise and exposure changes must not be negative")
        if not self.gps_in_exif and not self.flight_log and not self.xmp:
            raise ValueError("without GPS in the EXIF, write it to the flight log or the XMP")

    @property
    def vertical_noise_m(self) -> float:
        return self.gps_noise_m if self.gps_vertical_noise_m is None else self.gps_vertical_noise_m


@dataclass(frozen=True)
class TruthCamera:
    name: str
    width: int
    height: int
    K: np.ndarray  # [3, 3] pinhole intrinsics, pixel centres at +0.5 (COLMAP's convention)
    R: np.ndarray  # [3, 3] world-to-camera rotation, OpenCV axes (x right, y down, z forward)
    t: np.ndarray  # [3] world-to-camera translation
    centre: np.ndarray  # [3] camera centre in ENU metres (= -R.T @ t)
    lat_lon_alt: tuple[float, float, float]  # the true position
    gps: tuple[float, float, float] | None = None  # what the photo's GPS says (truth + noise)
    taken_at: str = ""  # ISO 8601, local time as the camera's clock has it
    exposure_gain: float = 1.0  # the shot's exposure relative to the scene's
    gimbal: tuple[float, float, float] = (0.0, 0.0, 0.0)  # pitch, yaw, roll in degrees (DJI's convention)


@dataclass(frozen=True)
class Marker:
    """A square checkerboard ground marker (2 x 2 squares), e.g. for measuring tests."""

    name: str
    centre: np.ndarray  # [3] ENU metres, on the ground
    size_m: float  # side of the whole marker


@dataclass(frozen=True)
class SampleTruth:
    origin: GeoOrigin
    scene_extent_m: float  # diagonal of the bounding box of the camera centres
    cameras: list[TruthCamera]
    markers: list[Marker] = field(default_factory=list)
    options: SampleOptions = field(default_factory=SampleOptions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "frame": "ENU (x east, y north, z up), metres; poses are world-to-camera in OpenCV axes",
            "origin": self.origin.to_dict(),
            "scene_extent_m": self.scene_extent_m,
            "options": asdict(self.options),
            "cameras": [
                {
                    "name": c.name,
                    "width": c.width,
                    "height": c.height,
                    "K": c.K.tolist(),
                    "R": c.R.tolist(),
                    "t": c.t.tolist(),
                    "centre": c.centre.tolist(),
                    "lat_lon_alt": list(c.lat_lon_alt),
                    "gps": list(c.gps) if c.gps else None,
                    "taken_at": c.taken_at,
                    "exposure_gain": c.exposure_gain,
                    "gimbal": list(c.gimbal),
                }
                for c in self.cameras
            ],
            "markers": [{"name": m.name, "centre": m.centre.tolist(), "size_m": m.size_m} for m in self.markers],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SampleTruth:
        cameras = [
            TruthCamera(
                name=c["name"],
                width=c["width"],
                height=c["height"],
                K=np.array(c["K"]),
                R=np.array(c["R"]),
                t=np.array(c["t"]),
                centre=np.array(c["centre"]),
                lat_lon_alt=_triple(c["lat_lon_alt"]),
                gps=_triple(c["gps"]) if c.get("gps") else None,
                taken_at=c.get("taken_at", ""),
                exposure_gain=float(c.get("exposure_gain", 1.0)),
                gimbal=_triple(c.get("gimbal", (0.0, 0.0, 0.0))),
            )
            for c in data["cameras"]
        ]
        markers = [Marker(m["name"], np.array(m["centre"]), float(m["size_m"])) for m in data.get("markers", [])]
        options = SampleOptions(**data.get("options", {}))
        return cls(GeoOrigin(**data["origin"]), float(data["scene_extent_m"]), cameras, markers, options)

    @classmethod
    def load(cls, path: Path) -> SampleTruth:
        return cls.from_dict(json.loads(Path(path).read_text()))


def _triple(values: Any) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return (a, b, c)


@dataclass(frozen=True)
class SampleCapture:
    zip_path: Path
    truth_path: Path
    truth: SampleTruth
    flight_log_path: Path | None = None


@dataclass(frozen=True)
class _Box:
    lo: np.ndarray  # [3]
    hi: np.ndarray  # [3]
    colour: np.ndarray  # [3] base RGB in [0, 1]


def _scene(half_extent: tuple[float, float] = (20.0, 20.0)) -> list[_Box]:
    """Buildings, a tower, a wall and crates on a 40 m x 40 m lot around the origin.

    A larger area (a wide flight) gets more buildings, about one per 25 m x 25 m, placed the
    same way every time.
    """
    spec = [
        ((-9.0, -6.0, 0.0), (-1.0, 2.0, 5.0), (0.85, 0.55, 0.45)),  # building
        ((3.0, 3.0, 0.0), (6.0, 6.0, 9.0), (0.55, 0.60, 0.85)),  # tower
        ((2.0, -9.0, 0.0), (12.0, -8.0, 2.5), (0.80, 0.80, 0.70)),  # wall
        ((-4.0, 6.0, 0.0), (-2.0, 8.0, 1.5), (0.90, 0.75, 0.35)),  # crates
        ((7.0, -3.0, 0.0), (9.5, -0.5, 2.0), (0.45, 0.80, 0.55)),
        ((-12.0, 8.0, 0.0), (-8.0, 12.0, 3.5), (0.75, 0.45, 0.70)),
    ]
    boxes = [_Box(np.array(lo), np.array(hi), np.array(colour)) for lo, hi, colour in spec]
    hx, hy = half_extent
    if hx > 30 or hy > 30:
        rng = np.random.default_rng(1234)
        for cx in np.arange(-hx + 12.5, hx, 25.0):
            for cy in np.arange(-hy + 12.5, hy, 25.0):
                if abs(cx) < 25 and abs(cy) < 25:
                    continue  # the original lot
                size = rng.uniform(3.0, 9.0, 2)
                centre = np.array([cx, cy]) + rng.uniform(-6.0, 6.0, 2)
                height = rng.uniform(2.0, 8.0)
                lo = np.array([*(centre - size / 2), 0.0])
                hi = np.array([*(centre + size / 2), height])
                boxes.append(_Box(lo, hi, rng.uniform(0.35, 0.9, 3)))
    return boxes


def _skyline() -> list[_Box]:
    """A ring of buildings 40-50 m out: what a low oblique view sees against the sky beyond the lot."""
    rng = np.random.default_rng(4321)
    boxes = []
    for angle in np.linspace(0, 2 * np.pi, 16, endpoint=False):
        distance = rng.uniform(40.0, 50.0)
        centre = distance * np.array([np.cos(angle), np.sin(angle)])
        size = rng.uniform(6.0, 12.0, 2)
        lo = np.array([*(centre - size / 2), 0.0])
        hi = np.array([*(centre + size / 2), rng.uniform(8.0, 16.0)])
        boxes.append(_Box(lo, hi, rng.uniform(0.4, 0.9, 3)))
    return boxes


def _markers(half_extent: tuple[float, float]) -> list[Marker]:
    """Markers at the corners of the flown area (inset) and near its centre, clear of the buildings."""
    hx, hy = half_extent
    corners = [(-0.7 * hx, -0.7 * hy), (0.7 * hx, -0.7 * hy), (0.7 * hx, 0.7 * hy), (-0.75 * hx, 0.1 * hy)]
    positions = [*corners, (0.0, -4.0)]
    return [Marker(f"M{i + 1}", np.array([x, y, 0.0]), MARKER_SIZE_M) for i, (x, y) in enumerate(positions)]


def _value_noise(table: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smooth value noise: [M] coordinates (cells) -> [M, 3] values in [0, 1]."""
    u0, v0 = np.floor(u), np.floor(v)
    fu, fv = u - u0, v - v0
    fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)
    i0 = u0.astype(np.int64) % TEXTURE_TABLE
    j0 = v0.astype(np.int64) % TEXTURE_TABLE
    i1, j1 = (i0 + 1) % TEXTURE_TABLE, (j0 + 1) % TEXTURE_TABLE
    fu, fv = fu[:, None], fv[:, None]
    top = table[i0, j0] * (1 - fu) + table[i1, j0] * fu
    bottom = table[i0, j1] * (1 - fu) + table[i1, j1] * fu
    blended: np.ndarray = top * (1 - fv) + bottom * fv
    return blended


def _texture(
    table: np.ndarray, u: np.ndarray, v: np.ndarray, footprint: np.ndarray, far_value: float = 0.0
) -> np.ndarray:
    """Multi-octave colour noise at surface coordinates (metres) -> [M, 3].

    Octaves finer than about three pixels fade out (``footprint`` is the pixel size on the
    surface, metres), so far-away ground does not alias into features that move with the view;
    where all of them have faded (ground near the horizon) the value is ``far_value``.
    """
    total = np.zeros((u.size, 3), np.float32)
    weight_sum = np.zeros((u.size, 1), np.float32)
    for octave, cell in enumerate((4.0, 1.3, 0.45, 0.18)):
        weight = np.clip(cell / np.maximum(footprint, 1e-6) / 2.0 - 1.0, 0.0, 1.0)[:, None]
        offset = 53.7 * octave
        total += weight * _value_noise(table, u / cell + offset, v / cell - offset)
        weight_sum += weight
    return np.where(weight_sum > 0, total / np.maximum(weight_sum, 1e-6), far_value)


def _look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World-to-camera rotation [3, 3] for a camera at ``centre`` looking at ``target``, z up."""
    forward = target - centre
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def _sky(rays: np.ndarray) -> np.ndarray:
    """Sky colour of each upward ray [M, 3]: a clear sky, from horizon haze to zenith blue.

    Smooth on purpose: SfM finds nothing to match in it (as in a real clear sky), and texture at
    infinity would give matches without parallax.
    """
    blend = np.sqrt(np.clip(rays[:, 2], 0.0, 1.0))[:, None]
    colour: np.ndarray = SKY_HORIZON * (1 - blend) + SKY_ZENITH * blend
    return colour


def _undistorted(points: np.ndarray, k1: float, k2: float = 0.0) -> np.ndarray:
    """[M, 2] distorted normalised image points -> the rays' undistorted ones (COLMAP's RADIAL model)."""
    if k1 == 0.0 and k2 == 0.0:
        return points
    undistorted = points.copy()
    for _ in range(30):  # fixed point: x_u = x_d / (1 + k1 r^2 + k2 r^4), r = |x_u|
        r2 = (undistorted**2).sum(axis=1, keepdims=True)
        undistorted = points / (1.0 + k1 * r2 + k2 * r2 * r2)
    return undistorted


@dataclass(frozen=True)
class _Hits:
    """Where each pixel's ray meets the scene ([M] per pixel, row by row)."""

    rays: np.ndarray  # [M, 3] unit world directions
    ray_norm: np.ndarray  # [M] length of the ray through the pixel at unit depth (for the footprint)
    depth: np.ndarray  # [M] distance to the hit (1 for the sky)
    surface: np.ndarray  # [M] -1 ground, else box index
    axis: np.ndarray  # [M] axis of the surface normal
    sky: np.ndarray  # [M] True where the ray meets nothing

    def points(self, centre: np.ndarray) -> np.ndarray:
        points: np.ndarray = centre.astype(np.float32) + self.rays * self.depth[:, None]
        return points


def _cast(
    K: np.ndarray,
    R: np.ndarray,
    centre: np.ndarray,
    width: int,
    height: int,
    boxes: list[_Box],
    distortion_k1: float = 0.0,
    distortion_k2: float = 0.0,
) -> _Hits:
    us, vs = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    pixels = np.stack([us.ravel(), vs.ravel(), np.ones(us.size)], axis=1)
    normalised = pixels @ np.linalg.inv(K).T
    normalised[:, :2] = _undistorted(normalised[:, :2], distortion_k1, distortion_k2)
    rays = normalised @ R  # [M, 3] world directions (R.T @ d per ray)
    # float32 halves the work; a 1e-7 relative error is far below a pixel.
    rays, centre = rays.astype(np.float32), centre.astype(np.float32)
    ray_norm = np.linalg.norm(rays, axis=1)
    rays /= ray_norm[:, None]
    m = rays.shape[0]

    # Ground plane z = 0 (every downward ray meets it; the others see the sky).
    dz = np.where(np.abs(rays[:, 2]) < 1e-9, -1e-9, rays[:, 2])
    depth = np.where(dz < 0, -centre[2] / dz, np.inf)
    surface = np.full(m, -1)  # -1 ground, else box index
    axis = np.full(m, 2)  # axis of the surface normal
    for index, box in enumerate(boxes):
        with np.errstate(divide="ignore", invalid="ignore"):
            t0 = (box.lo - centre) / rays
            t1 = (box.hi - centre) / rays
        near = np.minimum(t0, t1)
        t_near = near.max(axis=1)
        t_far = np.maximum(t0, t1).min(axis=1)
        hit = (t_near <= t_far) & (t_near > 0) & (t_near < depth)
        depth[hit] = t_near[hit]
        surface[hit] = index
        axis[hit] = near[hit].argmax(axis=1)
    sky = ~np.isfinite(depth)
    depth[sky] = 1.0  # any finite depth: these rays are coloured by the sky
    return _Hits(rays, ray_norm, depth, surface, axis, sky)


def render(
    K: np.ndarray,
    R: np.ndarray,
    centre: np.ndarray,
    width: int,
    height: int,
    seed: int = 0,
    *,
    boxes: list[_Box] | None = None,
    markers: list[Marker] | None = None,
    distortion_k1: float = 0.0,
    distortion_k2: float = 0.0,
    exposure_gain: float = 1.0,
    far_texture: float = 0.0,
) -> np.ndarray:
    """Ray-cast the scene from one camera -> [H, W, 3] uint8 RGB.

    ``far_texture`` is the texture of ground too far away for any of its octaves: 0 (dark) in the
    original sample, whose views barely reach it; its mean, 0.5, for views that see the horizon.
    """
    table = np.random.default_rng(seed).random((TEXTURE_TABLE, TEXTURE_TABLE, 3), dtype=np.float32)
    boxes = _scene() if boxes is None else boxes
    hits = _cast(K, R, centre, width, height, boxes, distortion_k1, distortion_k2)
    rays, ray_norm, depth, surface, axis, sky = hits.rays, hits.ray_norm, hits.depth, hits.surface, hits.axis, hits.sky
    m = rays.shape[0]
    centre = centre.astype(np.float32)

    points = hits.points(centre)
    normal_cos = np.abs(rays[np.arange(m), axis])
    footprint = depth / (K[0, 0] / ray_norm) / np.maximum(normal_cos, 0.25)
    # Surface coordinates: the two world axes that span the face, shifted per face.
    u_axis = np.where(axis == 0, 1, 0)
    v_axis = np.where(axis == 2, 1, 2)
    shift = (surface + 1) * 31.7 + axis * 7.3
    u = points[np.arange(m), u_axis] + shift
    v = points[np.arange(m), v_axis] - shift
    colour = _texture(table, u, v, footprint, far_texture)

    base = np.tile(np.array([0.55, 0.70, 0.40]), (m, 1))  # grass-like ground
    for index, box in enumerate(boxes):
        base[surface == index] = box.colour
    # Fixed Lambertian shading per face orientation: a sun in the south-east, high up.
    sun = np.array([0.4, -0.3, 0.87])
    shade = 0.45 + 0.55 * np.abs(sun[axis])
    rgb = base * (0.25 + 0.95 * colour) * shade[:, None]
    on_ground = (surface == -1) & ~sky
    for marker in markers or []:
        offset = points[:, :2] - marker.centre[:2]
        inside = on_ground & (np.abs(offset) <= marker.size_m / 2).all(axis=1)
        white = (offset[:, 0] >= 0) == (offset[:, 1] >= 0)
        rgb[inside] = np.where(white[inside, None], 0.95, 0.05) * shade[inside, None]
    if sky.any():
        rgb[sky] = _sky(rays[sky])
    rgb = rgb * exposure_gain
    pixels: np.ndarray = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8).reshape(height, width, 3)
    return pixels


def _intrinsics(width: int, height: int, focal_35mm: int) -> np.ndarray:
    focal = focal_35mm / FILM_35MM_WIDTH_MM * max(width, height)
    return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])


def _truth_camera(
    index: int, width: int, height: int, K: np.ndarray, R: np.ndarray, centre: np.ndarray, origin: GeoOrigin
) -> TruthCamera:
    lat_lon_alt = _triple(origin.to_lat_lon_alt(centre[None])[0])
    taken_at = FIRST_SHOT + timedelta(seconds=SECONDS_BETWEEN_SHOTS * index)
    return TruthCamera(
        f"DJI_{index + 1:04d}.JPG",
        width,
        height,
        K,
        R,
        -R @ centre,
        centre,
        lat_lon_alt,
        gps=lat_lon_alt,
        taken_at=taken_at.isoformat(),
        gimbal=gimbal_angles(R),
    )


def orbit_cameras(
    n: int,
    width: int,
    height: int,
    radius: float = 24.0,
    altitude: float = 26.0,
    focal_35mm: int = DEFAULT_FOCAL_35MM,
    origin: GeoOrigin = DEFAULT_ORIGIN,
    target_height: float = 0.0,
) -> list[TruthCamera]:
    """``n`` cameras on a drone orbit around the lot, looking at its centre (``target_height`` up)."""
    K = _intrinsics(width, height, focal_35mm)
    cameras = []
    for i in range(n):
        angle = 2 * np.pi * i / n
        # A slightly uneven orbit, as flown: altitude and radius wander by a few metres.
        centre = np.array(
            [
                radius * np.cos(angle) * (1 + 0.06 * np.sin(3 * angle)),
                radius * np.sin(angle) * (1 + 0.06 * np.sin(3 * angle)),
                altitude + 2.0 * np.sin(2 * angle) * min(1.0, altitude / 26.0),
            ]
        )
        target = np.array([1.5 * np.cos(5 * angle), 1.5 * np.sin(5 * angle), target_height])
        cameras.append(_truth_camera(i, width, height, K, _look_at(centre, target), centre, origin))
    return cameras


def grid_layout(
    n: int, width: int, height: int, altitude: float, focal_35mm: int, aspect: float = 1.0
) -> tuple[int, int, float, float]:
    """Lines, photos per line and their spacing (metres) of a mapping flight of ``n`` photos.

    Lines run north-south; a photo's footprint is ``altitude / focal`` metres per pixel, and
    photos overlap by :data:`FORWARD_OVERLAP` along a line and :data:`SIDE_OVERLAP` between lines.
    ``aspect`` is the flown area's length (along the lines) over its width.
    """
    focal = focal_35mm / FILM_35MM_WIDTH_MM * max(width, height)
    along = (1 - FORWARD_OVERLAP) * altitude * height / focal  # image top points along the line
    across = (1 - SIDE_OVERLAP) * altitude * width / focal
    lines = max(2, round(math.sqrt(n * along / (across * aspect))))
    per_line = math.ceil(n / lines)
    return lines, per_line, along, across


def grid_cameras(
    n: int,
    width: int,
    height: int,
    altitude: float = 30.0,
    focal_35mm: int = DEFAULT_FOCAL_35MM,
    origin: GeoOrigin = DEFAULT_ORIGIN,
    aspect: float = 1.0,
    seed: int = 0,
) -> list[TruthCamera]:
    """A nadir mapping flight: parallel north-south lines flown back and forth, camera straight down.

    The gimbal wobbles by about a degree and the altitude by decimetres, as flown.
    """
    K = _intrinsics(width, height, focal_35mm)
    lines, per_line, along, across = grid_layout(n, width, height, altitude, focal_35mm, aspect)
    rng = np.random.default_rng(seed + 1)
    cameras = []
    for i in range(n):
        line, k = divmod(i, per_line)
        northward = line % 2 == 0
        y = (k - (per_line - 1) / 2) * along * (1 if northward else -1)
        x = (line - (lines - 1) / 2) * across
        centre = np.array([x, y, altitude + rng.normal(0.0, 0.2)])
        pitch, yaw, roll = -90.0 + rng.normal(0.0, 1.0), (0.0 if northward else 180.0) + rng.normal(0.0, 2.0), 0.0
        R = camera_rotation(pitch, yaw, roll)
        cameras.append(_truth_camera(i, width, height, K, R, centre, origin))
    return cameras


def _flown_half_extent(cameras: list[TruthCamera]) -> tuple[float, float]:
    centres = np.stack([c.centre for c in cameras])
    return (max(20.0, float(np.abs(centres[:, 0]).max())), max(20.0, float(np.abs(centres[:, 1]).max())))


def _with_gps_noise(
    cameras: list[TruthCamera], options: SampleOptions, origin: GeoOrigin, seed: int
) -> list[TruthCamera]:
    """The cameras with what their GPS says: the true centre plus normal noise of the stated size."""
    if options.gps_noise_m == 0 and options.vertical_noise_m == 0:
        return cameras
    rng = np.random.default_rng(seed + 2)
    sigma = np.array([options.gps_noise_m, options.gps_noise_m, options.vertical_noise_m])
    noisy = []
    for camera in cameras:
        measured = camera.centre + rng.normal(0.0, 1.0, 3) * sigma
        noisy.append(_replace(camera, gps=_triple(origin.to_lat_lon_alt(measured[None])[0])))
    return noisy


def _replace(camera: TruthCamera, **changes: Any) -> TruthCamera:
    from dataclasses import replace

    return replace(camera, **changes)


def _world_boxes(cameras: list[TruthCamera], options: SampleOptions) -> list[_Box]:
    return _scene(_flown_half_extent(cameras)) + (_skyline() if options.sky else [])


def write_truth_reconstruction(capture: SampleCapture, out_dir: Path, points_per_photo: int = 300) -> Path:
    """``spaceport sfm``'s output folder made from the truth instead of SfM: for training without SfM.

    ``out_dir/sparse/0`` holds the true cameras (PINHOLE) and poses, and 3D points where rays
    through random pixels of each photo meet the scene (none in the sky, as SfM would have),
    coloured like those pixels; ``out_dir/images`` holds the photos. Needs a lens without
    distortion. Returns ``out_dir``.
    """
    import pycolmap

    truth = capture.truth
    if truth.options.distortion_k1 or truth.options.distortion_k2:
        raise ValueError("the truth reconstruction needs photos without lens distortion")
    boxes = _world_boxes(truth.cameras, truth.options)
    images_dir, model_dir = Path(out_dir) / "images", Path(out_dir) / "sparse" / "0"
    images_dir.mkdir(parents=True, exist_ok=True)
    model_dir.mkdir(parents=True, exist_ok=True)
    model = pycolmap.Reconstruction()
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(capture.zip_path) as archive:
        for image_id, camera in enumerate(truth.cameras, start=1):
            data = archive.read(camera.name)
            (images_dir / camera.name).write_bytes(data)
            K = camera.K
            model.add_camera_with_trivial_rig(
                pycolmap.Camera(
                    model="PINHOLE",
                    width=camera.width,
                    height=camera.height,
                    params=[K[0, 0], K[1, 1], K[0, 2], K[1, 2]],
                    camera_id=image_id,
                )
            )
            pose = pycolmap.Rigid3d(pycolmap.Rotation3d(camera.R), camera.t)
            model.add_image_with_trivial_frame(pycolmap.Image(camera.name, camera_id=image_id, image_id=image_id), pose)
            hits = _cast(K, camera.R, camera.centre, camera.width, camera.height, boxes)
            pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).reshape(-1, 3)
            chosen = rng.choice(
                np.flatnonzero(~hits.sky), size=min(points_per_photo, int((~hits.sky).sum())), replace=False
            )
            for xyz, colour in zip(hits.points(camera.centre)[chosen], pixels[chosen], strict=True):
                model.add_point3D(xyz.astype(np.float64), pycolmap.Track(), colour)
    model.write(model_dir)
    return Path(out_dir)


def sky_mask(truth: SampleTruth, camera: TruthCamera, width: int, height: int) -> np.ndarray:
    """[height, width] True where a photo (resized to width x height) shows the sky."""
    K = camera.K.copy()
    K[0] *= width / camera.width
    K[1] *= height / camera.height
    hits = _cast(K, camera.R, camera.centre, width, height, _world_boxes(truth.cameras, truth.options))
    return hits.sky.reshape(height, width)


def truth_path_for(zip_path: Path) -> Path:
    """Where the ground truth of a sample lives: ``X.zip`` -> ``X.truth.json``."""
    return zip_path.with_suffix(".truth.json")


def flight_log_path_for(zip_path: Path) -> Path:
    """Where a sample's flight-log CSV lives: ``X.zip`` -> ``X.flight.csv``."""
    return zip_path.with_suffix(".flight.csv")


def _cameras(
    n: int, width: int, height: int, focal_35mm: int, origin: GeoOrigin, options: SampleOptions, seed: int
) -> list[TruthCamera]:
    altitude = options.altitude_m or FLIGHT_ALTITUDE_M[options.flight]
    if options.flight == "orbit" and options.sky:
        # Low and shallow enough that the upper fifth of every view is sky.
        return orbit_cameras(
            n, width, height, radius=22.0, altitude=9.0, focal_35mm=focal_35mm, origin=origin, target_height=3.5
        )
    if options.flight == "orbit":
        return orbit_cameras(n, width, height, altitude=altitude, focal_35mm=focal_35mm, origin=origin)
    aspect = WIDE_ASPECT if options.flight == "wide" else 1.0
    return grid_cameras(n, width, height, altitude, focal_35mm, origin, aspect, seed)


def make_sample(
    out_zip: Path,
    n: int = 24,
    seed: int = 0,
    width: int = 640,
    height: int = 480,
    focal_35mm: int = DEFAULT_FOCAL_35MM,
    origin: GeoOrigin = DEFAULT_ORIGIN,
    progress: ProgressReporter | None = None,
    options: SampleOptions | None = None,
) -> SampleCapture:
    """Render ``n`` views into ``out_zip`` (JPEGs with EXIF) and the truth beside it."""
    if n < 3:
        raise ValueError("a capture needs at least 3 photos")
    options = options or SampleOptions()
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    cameras = _cameras(n, width, height, focal_35mm, origin, options, seed)
    if options.exposure_stops:
        gains = 2.0 ** np.random.default_rng(seed + 3).uniform(-options.exposure_stops, options.exposure_stops, n)
        cameras = [_replace(c, exposure_gain=float(g)) for c, g in zip(cameras, gains, strict=True)]
    cameras = _with_gps_noise(cameras, options, origin, seed)
    boxes = _world_boxes(cameras, options)
    markers = _markers(_flown_half_extent(cameras)) if options.markers else []
    centres = np.stack([c.centre for c in cameras])
    truth = SampleTruth(origin, float(np.linalg.norm(centres.max(0) - centres.min(0))), cameras, markers, options)

    with atomic_path(out_zip) as partial, zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
        for i, camera in enumerate(cameras):
            pixels = render(
                camera.K,
                camera.R,
                camera.centre,
                width,
                height,
                seed,
                boxes=boxes,
                markers=markers,
                distortion_k1=options.distortion_k1,
                distortion_k2=options.distortion_k2,
                exposure_gain=camera.exposure_gain,
                far_texture=0.5 if options.sky else 0.0,
            )
            buffer = io.BytesIO()
            exif = make_exif(
                focal_35mm=focal_35mm,
                gps=camera.gps if options.gps_in_exif else None,
                taken_at=datetime.fromisoformat(camera.taken_at),
            )
            extra: dict[str, Any] = {"xmp": _xmp(camera, origin)} if options.xmp else {}
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=95, exif=exif, **extra)
            archive.writestr(camera.name, buffer.getvalue())
            if progress is not None:
                progress.update((i + 1) / n, f"rendered {i + 1} of {n} photos")
        # The truth (and the flight log) land first: whoever sees the ZIP finds them beside it.
        truth_path = truth_path_for(out_zip)
        write_json_atomic(truth_path, truth.to_dict())
        log_path = flight_log_path_for(out_zip) if options.flight_log else None
        if log_path is not None:
            _write_flight_log(log_path, cameras)
    return SampleCapture(out_zip, truth_path, truth, log_path)


def _xmp(camera: TruthCamera, origin: GeoOrigin) -> bytes:
    lat, lon, alt = camera.gps or camera.lat_lon_alt
    pitch, yaw, roll = camera.gimbal
    # The take-off point is the origin's ground; the barometer's altitude carries no GPS noise.
    relative = float(camera.centre[2])
    return make_dji_xmp(DjiXmp(lat, lon, alt, relative, pitch, yaw if yaw <= 180 else yaw - 360, roll))


def _write_flight_log(path: Path, cameras: list[TruthCamera]) -> None:
    """The flight log as a drone app exports it: one row per photo with its time and GPS."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "time", "lat", "lon", "alt"])
    for camera in cameras:
        lat, lon, alt = camera.gps or camera.lat_lon_alt
        writer.writerow([camera.name, camera.taken_at, f"{lat:.9f}", f"{lon:.9f}", f"{alt:.3f}"])
    with atomic_path(path) as partial:
        partial.write_text(buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spaceport sample",
        description="Write a synthetic drone capture: JPEGs with GPS and focal-length EXIF rendered "
        "from known cameras, zipped, and the ground truth beside it (OUT.truth.json).",
    )
    parser.add_argument("out_zip", type=Path, metavar="OUT.zip")
    parser.add_argument("--n", type=int, default=24, help="number of photos (default 24)")
    parser.add_argument("--seed", type=int, default=0, help="texture seed (default 0)")
    parser.add_argument("--width", type=int, default=640, help="image width in pixels (default 640)")
    parser.add_argument("--height", type=int, default=480, help="image height in pixels (default 480)")
    parser.add_argument(
        "--flight",
        choices=FLIGHTS,
        default="orbit",
        help="orbit: around the lot, looking at it; grid: nadir parallel lines; wide: a grid over an area "
        "three times as long as wide (default orbit)",
    )
    parser.add_argument("--altitude-m", type=float, help="flying height above the ground (default: the flight's)")
    parser.add_argument("--gps-noise-m", type=float, default=0.0, help="GPS error, standard deviation per axis")
    parser.add_argument("--gps-vertical-noise-m", type=float, help="vertical GPS error (default: --gps-noise-m)")
    parser.add_argument("--sky", action="store_true", help="a low oblique orbit whose views see the sky")
    parser.add_argument("--exposure-stops", type=float, default=0.0, help="exposure changes per shot, up to +-stops")
    parser.add_argument("--markers", action="store_true", help="checkerboard ground markers at known positions")
    parser.add_argument("--xmp", action="store_true", help="DJI-style XMP: relative altitude and gimbal angles")
    parser.add_argument("--flight-log", action="store_true", help="also write the GPS to OUT.flight.csv")
    parser.add_argument("--no-exif-gps", action="store_true", help="leave the GPS out of the EXIF")
    parser.add_argument("--distortion-k1", type=float, default=0.0, help="radial lens distortion, r^2 term")
    parser.add_argument("--distortion-k2", type=float, default=0.0, help="radial lens distortion, r^4 term")
    args = parser.parse_args(argv)
    if args.n < 3:
        parser.error("--n must be at least 3")
    try:
        options = SampleOptions(
            flight=args.flight,
            altitude_m=args.altitude_m,
            gps_noise_m=args.gps_noise_m,
            gps_vertical_noise_m=args.gps_vertical_noise_m,
            sky=args.sky,
            exposure_stops=args.exposure_stops,
            markers=args.markers,
            xmp=args.xmp,
            gps_in_exif=not args.no_exif_gps,
            flight_log=args.flight_log,
            distortion_k1=args.distortion_k1,
            distortion_k2=args.distortion_k2,
        )
    except ValueError as error:
        parser.error(str(error))
    configure_logging()
    capture = make_sample(
        args.out_zip,
        n=args.n,
        seed=args.seed,
        width=args.width,
        height=args.height,
        progress=ProgressReporter("sample"),
        options=options,
    )
    extra = f", {capture.flight_log_path}" if capture.flight_log_path else ""
    print(f"wrote {capture.zip_path} ({args.n} photos), {capture.truth_path}{extra}")
    return 0
