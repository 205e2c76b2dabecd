"""A synthetic drone capture with exact ground truth: ``spaceport sample OUT.zip``.

A small outdoor-like scene (a textured ground plane with a few textured buildings, a tower
and crates) is ray-cast with numpy from a drone orbit that looks down at it. Each JPEG
carries GPS EXIF (the camera centre converted from the local ENU frame to lat/lon/alt around
a fixed origin) and its 35 mm focal length. The truth (intrinsics, world-to-camera poses in
OpenCV axes, centres, the ENU origin, the scene extent) is written beside the zip as
``OUT.truth.json``. The world frame IS the ENU frame: x east, y north, z up, metres.

Example::

    capture = make_sample(Path("demo/sample.zip"), n=16, width=480, height=360)
    capture.zip_path, capture.truth_path
    capture.truth.cameras[0].centre      # [3] ENU metres

or ``spaceport sample demo/sample.zip --n 24 --seed 0``.
"""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from spaceport.entrypoint import configure_logging
from spaceport.files import atomic_path, write_json_atomic
from spaceport.progress import ProgressReporter
from spaceport_sfm.exif import FILM_35MM_WIDTH_MM, make_exif
from spaceport_sfm.geo import GeoOrigin

# Zurich, Lindenhof: any fixed place will do; it only has to be a real lat/lon.
DEFAULT_ORIGIN = GeoOrigin(lat=47.372769, lon=8.540585, alt=428.0)
DEFAULT_FOCAL_35MM = 28  # a typical drone camera (DJI Mini/Mavic: 24-28 mm equivalent)
TEXTURE_TABLE = 256


@dataclass(frozen=True)
class TruthCamera:
    name: str
    width: int
    height: int
    K: np.ndarray  # [3, 3] pinhole intrinsics, pixel centres at +0.5 (COLMAP's convention)
    R: np.ndarray  # [3, 3] world-to-camera rotation, OpenCV axes (x right, y down, z forward)
    t: np.ndarray  # [3] world-to-camera translation
    centre: np.ndarray  # [3] camera centre in ENU metres (= -R.T @ t)
    lat_lon_alt: tuple[float, float, float]


@dataclass(frozen=True)
class SampleTruth:
    origin: GeoOrigin
    scene_extent_m: float  # diagonal of the bounding box of the camera centres
    cameras: list[TruthCamera]

    def to_dict(self) -> dict:
        return {
            "frame": "ENU (x east, y north, z up), metres; poses are world-to-camera in OpenCV axes",
            "origin": self.origin.to_dict(),
            "scene_extent_m": self.scene_extent_m,
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
                }
                for c in self.cameras
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> SampleTruth:
        cameras = [
            TruthCamera(
                name=c["name"],
                width=c["width"],
                height=c["height"],
                K=np.array(c["K"]),
                R=np.array(c["R"]),
                t=np.array(c["t"]),
                centre=np.array(c["centre"]),
                lat_lon_alt=tuple(c["lat_lon_alt"]),
            )
            for c in data["cameras"]
        ]
        return cls(GeoOrigin(**data["origin"]), float(data["scene_extent_m"]), cameras)

    @classmethod
    def load(cls, path: Path) -> SampleTruth:
        return cls.from_dict(json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class SampleCapture:
    zip_path: Path
    truth_path: Path
    truth: SampleTruth


@dataclass(frozen=True)
class _Box:
    lo: np.ndarray  # [3]
    hi: np.ndarray  # [3]
    colour: np.ndarray  # [3] base RGB in [0, 1]


def _scene() -> list[_Box]:
    """Buildings, a tower, a wall and crates on a 40 m x 40 m lot around the origin."""
    spec = [
        ((-9.0, -6.0, 0.0), (-1.0, 2.0, 5.0), (0.85, 0.55, 0.45)),  # building
        ((3.0, 3.0, 0.0), (6.0, 6.0, 9.0), (0.55, 0.60, 0.85)),  # tower
        ((2.0, -9.0, 0.0), (12.0, -8.0, 2.5), (0.80, 0.80, 0.70)),  # wall
        ((-4.0, 6.0, 0.0), (-2.0, 8.0, 1.5), (0.90, 0.75, 0.35)),  # crates
        ((7.0, -3.0, 0.0), (9.5, -0.5, 2.0), (0.45, 0.80, 0.55)),
        ((-12.0, 8.0, 0.0), (-8.0, 12.0, 3.5), (0.75, 0.45, 0.70)),
    ]
    return [_Box(np.array(lo), np.array(hi), np.array(colour)) for lo, hi, colour in spec]


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
    return top * (1 - fv) + bottom * fv


def _texture(table: np.ndarray, u: np.ndarray, v: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """Multi-octave colour noise at surface coordinates (metres) -> [M, 3].

    Octaves finer than about three pixels fade out (``footprint`` is the pixel size on the
    surface, metres), so far-away ground does not alias into features that move with the view.
    """
    total = np.zeros((u.size, 3), np.float32)
    weight_sum = np.zeros((u.size, 1), np.float32)
    for octave, cell in enumerate((4.0, 1.3, 0.45, 0.18)):
        weight = np.clip(cell / np.maximum(footprint, 1e-6) / 2.0 - 1.0, 0.0, 1.0)[:, None]
        offset = 53.7 * octave
        total += weight * _value_noise(table, u / cell + offset, v / cell - offset)
        weight_sum += weight
    return total / np.maximum(weight_sum, 1e-6)


def _look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World-to-camera rotation [3, 3] for a camera at ``centre`` looking at ``target``, z up."""
    forward = target - centre
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def render(K: np.ndarray, R: np.ndarray, centre: np.ndarray, width: int, height: int, seed: int = 0) -> np.ndarray:
    """Ray-cast the scene from one camera -> [H, W, 3] uint8 RGB."""
    table = np.random.default_rng(seed).random((TEXTURE_TABLE, TEXTURE_TABLE, 3), dtype=np.float32)
    boxes = _scene()
    us, vs = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    pixels = np.stack([us.ravel(), vs.ravel(), np.ones(us.size)], axis=1)
    rays = (pixels @ np.linalg.inv(K).T) @ R  # [M, 3] world directions (R.T @ d per ray)
    # float32 halves the work; a 1e-7 relative error is far below a pixel.
    rays, centre = rays.astype(np.float32), centre.astype(np.float32)
    ray_norm = np.linalg.norm(rays, axis=1)
    rays /= ray_norm[:, None]
    m = rays.shape[0]

    # Ground plane z = 0 (every ray of a downward-looking drone camera meets it).
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

    points = centre + rays * depth[:, None]
    normal_cos = np.abs(rays[np.arange(m), axis])
    footprint = depth / (K[0, 0] / ray_norm) / np.maximum(normal_cos, 0.25)
    # Surface coordinates: the two world axes that span the face, shifted per face.
    u_axis = np.where(axis == 0, 1, 0)
    v_axis = np.where(axis == 2, 1, 2)
    shift = (surface + 1) * 31.7 + axis * 7.3
    u = points[np.arange(m), u_axis] + shift
    v = points[np.arange(m), v_axis] - shift
    colour = _texture(table, u, v, footprint)

    base = np.tile(np.array([0.55, 0.70, 0.40]), (m, 1))  # grass-like ground
    for index, box in enumerate(boxes):
        base[surface == index] = box.colour
    # Fixed Lambertian shading per face orientation: a sun in the south-east, high up.
    sun = np.array([0.4, -0.3, 0.87])
    shade = 0.45 + 0.55 * np.abs(sun[axis])
    rgb = base * (0.25 + 0.95 * colour) * shade[:, None]
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8).reshape(height, width, 3)


def orbit_cameras(
    n: int,
    width: int,
    height: int,
    radius: float = 24.0,
    altitude: float = 26.0,
    focal_35mm: int = DEFAULT_FOCAL_35MM,
    origin: GeoOrigin = DEFAULT_ORIGIN,
) -> list[TruthCamera]:
    """``n`` cameras on a drone orbit around the lot, looking down at its centre."""
    focal = focal_35mm / FILM_35MM_WIDTH_MM * max(width, height)
    K = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])
    cameras = []
    for i in range(n):
        angle = 2 * np.pi * i / n
        # A slightly uneven orbit, as flown: altitude and radius wander by a few metres.
        centre = np.array(
            [
                radius * np.cos(angle) * (1 + 0.06 * np.sin(3 * angle)),
                radius * np.sin(angle) * (1 + 0.06 * np.sin(3 * angle)),
                altitude + 2.0 * np.sin(2 * angle),
            ]
        )
        target = np.array([1.5 * np.cos(5 * angle), 1.5 * np.sin(5 * angle), 0.0])
        R = _look_at(centre, target)
        lat_lon_alt = tuple(float(x) for x in origin.to_lat_lon_alt(centre[None])[0])
        cameras.append(TruthCamera(f"DJI_{i + 1:04d}.JPG", width, height, K, R, -R @ centre, centre, lat_lon_alt))
    return cameras


def truth_path_for(zip_path: Path) -> Path:
    """Where the ground truth of a sample lives: ``X.zip`` -> ``X.truth.json``."""
    return zip_path.with_suffix(".truth.json")


def make_sample(
    out_zip: Path,
    n: int = 24,
    seed: int = 0,
    width: int = 640,
    height: int = 480,
    focal_35mm: int = DEFAULT_FOCAL_35MM,
    origin: GeoOrigin = DEFAULT_ORIGIN,
    progress: ProgressReporter | None = None,
) -> SampleCapture:
    """Render ``n`` views into ``out_zip`` (JPEGs with EXIF) and the truth beside it."""
    if n < 3:
        raise ValueError("a capture needs at least 3 photos")
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    cameras = orbit_cameras(n, width, height, focal_35mm=focal_35mm, origin=origin)
    centres = np.stack([c.centre for c in cameras])
    truth = SampleTruth(origin, float(np.linalg.norm(centres.max(0) - centres.min(0))), cameras)

    with atomic_path(out_zip) as partial, zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
        for i, camera in enumerate(cameras):
            pixels = render(camera.K, camera.R, camera.centre, width, height, seed)
            buffer = io.BytesIO()
            exif = make_exif(focal_35mm=focal_35mm, gps=camera.lat_lon_alt)
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=95, exif=exif)
            archive.writestr(camera.name, buffer.getvalue())
            if progress is not None:
                progress.update((i + 1) / n, f"rendered {i + 1} of {n} photos")
        # The truth lands first: whoever sees the ZIP finds its truth beside it.
        truth_path = truth_path_for(out_zip)
        write_json_atomic(truth_path, truth.to_dict())
    return SampleCapture(out_zip, truth_path, truth)


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
    args = parser.parse_args(argv)
    if args.n < 3:
        parser.error("--n must be at least 3")
    configure_logging()
    capture = make_sample(
        args.out_zip,
        n=args.n,
        seed=args.seed,
        width=args.width,
        height=args.height,
        progress=ProgressReporter("sample"),
    )
    print(f"wrote {capture.zip_path} ({args.n} photos) and {capture.truth_path}")
    return 0
