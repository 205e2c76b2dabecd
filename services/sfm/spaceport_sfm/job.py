"""The SfM job: photos (.zip or folder) -> COLMAP model, undistorted images, report.

Stages: unpack -> read (and locate: EXIF, XMP, flight log) -> extract -> match -> map (with the
GPS as position priors) -> georeference -> undistort -> export. Everything is built in
``OUT_DIR/.work`` and moved into place at the end, so a failed or retried run never leaves
half an output; the report (:attr:`SfmOutputs.REPORT`) is written last, also on an expected
failure (with the error). Nothing is written outside ``OUT_DIR``.
``run_sfm(Path("flight.zip"), Path("out"), SfmOptions(matcher="auto"), flight_log=Path("log.csv"))``
returns that report. Its ``georeference`` object is what the job page and the email show:
``used``, ``reason``, ``frame``, ``origin``, the residuals to GPS, the outlier photos, the scale
check and ``camera_centres`` (ENU metres of every placed photo, in name order).
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from spaceport.contracts.layout import SfmOutputs
from spaceport.files import write_json_atomic
from spaceport.progress import ProgressReporter
from spaceport_sfm.errors import (
    BadFlightLogError,
    ReconstructionFailedError,
    SfmError,
    TooFewImagesError,
    TooFewRegisteredError,
)
from spaceport_sfm.geo import GeoOrigin, camera_rotation
from spaceport_sfm.gps import FlightLog, LocatedPhotos, PhotoPosition, locate_photos, read_flight_log
from spaceport_sfm.images import read_images
from spaceport_sfm.options import SfmOptions
from spaceport_sfm.unpack import stage_photos

MIN_IMAGES = 3
OVERLAP_ADVICE = "consecutive photos need about 60-80% overlap"

# The stages and the share of the progress bar each takes.
_STAGES = {
    "unpack": 0.03,
    "read": 0.05,
    "extract": 0.25,
    "match": 0.25,
    "map": 0.3,
    "georeference": 0.01,
    "undistort": 0.08,
    "export": 0.03,
}


class _Run:
    """Progress and wall time per stage, mapped onto one 0..1 progress bar."""

    def __init__(self, progress: ProgressReporter) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}
        self._start = 0.0
        self._share = 0.0

    @contextmanager
    def stage(self, name: str, message: str) -> Iterator[None]:
        self._share = _STAGES[name]
        self.update(0.0, message)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - started, 3)
            self._start += self._share
            self._share = 0.0

    def update(self, fraction: float, message: str, **metrics: Any) -> None:
        self.progress.update(self._start + self._share * fraction, message, **metrics)


def _versions() -> dict[str, str | bool]:
    import numpy
    import PIL
    import pycolmap

    from spaceport import __version__

    return {
        "spaceport": __version__,
        "pycolmap": pycolmap.__version__,
        "pycolmap_cuda": bool(pycolmap.has_cuda),
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
    }


def _replace(source: Path, target: Path) -> None:
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)


def _camera_centres(model: Any) -> list[dict[str, Any]]:
    """Every placed photo's centre in the model's frame, in name order (the flight path, roughly)."""
    images = sorted((image for image in model.images.values() if image.has_pose), key=lambda image: image.name)
    return [{"name": image.name, "enu": [round(float(x), 3) for x in image.projection_center()]} for image in images]


def _camera_summary(model: Any) -> list[dict[str, Any]]:
    return [
        {
            "camera_id": camera_id,
            "model": camera.model.name,
            "width": camera.width,
            "height": camera.height,
            "params": [round(float(p), 6) for p in camera.params],
        }
        for camera_id, camera in sorted(model.cameras.items())
    ]


def run_sfm(
    photos: Path,
    out_dir: Path,
    options: SfmOptions | None = None,
    progress: ProgressReporter | None = None,
    flight_log: Path | None = None,
) -> dict[str, Any]:
    """Reconstruct ``photos`` into ``out_dir``; return the report (also written to ``out_dir``).

    ``flight_log``: a flight-log CSV with the photos' positions (used where they have no GPS).
    """
    options = options or SfmOptions()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / ".work"
    shutil.rmtree(work, ignore_errors=True)  # a retry starts from scratch
    run = _Run(progress or ProgressReporter("sfm"))
    report: dict[str, Any] = {"status": "running", "input": Path(photos).name, "options": _options_dict(options)}
    started = time.perf_counter()
    try:
        log, log_problem = _load_flight_log(flight_log)
        _reconstruct(Path(photos), out_dir, work, options, run, report, log, log_problem)
        report["status"] = "succeeded"
        return report
    except SfmError as error:
        report["status"] = "failed"
        report["error"] = error.to_dict()
        raise
    except Exception as error:  # a bug: keep the traceback, but leave a report that says so
        report["status"] = "failed"
        report["error"] = {"code": "internal_error", "message": f"{type(error).__name__}: {error}"}
        raise
    finally:
        report["timings_s"] = {**run.timings, "total": round(time.perf_counter() - started, 3)}
        report["versions"] = _versions()
        shutil.rmtree(work, ignore_errors=True)
        write_json_atomic(out_dir / SfmOutputs.REPORT, report)


def _load_flight_log(path: Path | None) -> tuple[FlightLog | None, str | None]:
    """The flight log, or why it cannot be used; a log that was named but is missing is an error."""
    if path is None:
        return None, None
    if not Path(path).is_file():
        raise BadFlightLogError(f"No flight log was found at {path}.", path=str(path))
    try:
        return read_flight_log(path), None
    except BadFlightLogError as error:  # the photos may carry their own GPS: go on without the log
        return None, error.message


def _options_dict(options: SfmOptions) -> dict[str, Any]:
    data = asdict(options)
    data["limits"] = asdict(options.limits)
    return data


def _gravity(gimbal: tuple[float, float, float]) -> tuple[float, float, float]:
    """The direction of gravity in the camera's axes for a gimbal at (pitch, yaw, roll) degrees."""
    down = camera_rotation(*gimbal) @ np.array([0.0, 0.0, -1.0])
    return (float(down[0]), float(down[1]), float(down[2]))


def _position_priors(
    positions: Mapping[str, PhotoPosition], origin: GeoOrigin, options: SfmOptions, report: dict[str, Any]
) -> dict[str, Any]:
    """ENU priors with the stated accuracy; heights from DJI's relative altitude when every photo has one.

    The barometric altitude above take-off is far steadier from shot to shot than GPS altitude;
    it is put on the GPS's mean height, so the priors keep the GPS's absolute level.
    """
    from spaceport_sfm.reconstruct import PositionPrior

    names = sorted(positions)
    enu = origin.to_enu(np.array([positions[name].lat_lon_alt for name in names]))
    relative = [positions[name].relative_altitude for name in names]
    vertical_sigma = options.gps_vertical_accuracy_m
    if all(value is not None for value in relative):
        heights = np.array(relative, dtype=np.float64)
        enu[:, 2] = heights + statistics.median(enu[:, 2] - heights)
        vertical_sigma = options.gps_horizontal_accuracy_m
        report["gps"]["heights"] = "DJI relative altitude (XMP), levelled on the GPS altitude"
    else:
        report["gps"]["heights"] = "GPS altitude"
    priors = {}
    for name, position in zip(names, enu, strict=True):
        gimbal = positions[name].gimbal
        priors[name] = PositionPrior(
            (float(position[0]), float(position[1]), float(position[2])),
            options.gps_horizontal_accuracy_m,
            vertical_sigma,
            _gravity(gimbal) if gimbal is not None else None,
        )
    return priors


def _gps_report(located: LocatedPhotos, total: int, options: SfmOptions) -> dict[str, Any]:
    return {
        "photos_with_position": len(located.positions),
        "photos": total,
        "sources": located.sources,
        "accuracy_m": {"horizontal": options.gps_horizontal_accuracy_m, "vertical": options.gps_vertical_accuracy_m},
        "flight_log": located.flight_log,
        "priors_in_bundle_adjustment": False,
    }


def _reconstruct(
    photos: Path,
    out_dir: Path,
    work: Path,
    options: SfmOptions,
    run: _Run,
    report: dict[str, Any],
    flight_log: FlightLog | None,
    flight_log_problem: str | None = None,
) -> None:
    # Heavy imports here, so `spaceport sfm --help` and failing inputs stay fast.
    from spaceport_sfm.georeference import georeference, origin_for
    from spaceport_sfm.reconstruct import (
        choose_mapper,
        choose_matcher,
        extract,
        image_pairs,
        map_images,
        match,
        retrieval_pairs,
        share_intrinsics,
        undistort,
        write_position_priors,
    )
    from spaceport_sfm.summary import scene_summary

    image_dir = work / "images"
    with run.stage("unpack", f"unpacking {photos.name}"):
        staged = stage_photos(photos, image_dir, options.limits)
    report.update(images_found=len(staged.names), skipped=staged.skipped)

    with run.stage("read", f"reading {len(staged.names)} photos"):
        total = len(staged.names)
        usable, unreadable = read_images(
            image_dir,
            staged.names,
            options.max_image_size,
            on_progress=lambda done: run.update(done / total, f"read {done} of {total} photos"),
        )
    report.update(
        images_used=len(usable), unreadable=unreadable, images_downscaled=sum(photo.scale < 1 for photo in usable)
    )
    if len(usable) < MIN_IMAGES:
        raise TooFewImagesError(
            f"Only {len(usable)} of the {len(staged.names)} photos could be read; at least {MIN_IMAGES} are "
            "needed, and 20 or more overlapping photos work best.",
            images_found=len(staged.names),
            images_used=len(usable),
        )
    located = locate_photos([photo.meta() for photo in usable], flight_log, options.gps_accuracy)
    report["gps"] = _gps_report(located, len(usable), options)
    if flight_log_problem:
        report["gps"]["flight_log"] = {"note": f"The flight log was not used: {flight_log_problem}"}
    gps_by_name = {name: position.lat_lon_alt for name, position in located.positions.items()}
    origin = origin_for(list(gps_by_name.values())) if gps_by_name else None
    priors = _position_priors(located.positions, origin, options, report) if origin is not None else {}

    database = work / "database.db"
    with run.stage("extract", f"finding features in {len(usable)} photos"):
        extract(
            database,
            image_dir,
            usable,
            options.num_threads,
            on_progress=lambda done: run.update(done / len(usable), f"features: {done} of {len(usable)} photos"),
            camera_model=options.camera_model,
        )
        write_position_priors(database, priors)

    choice = choose_matcher(options.matcher, len(usable), len(gps_by_name), options.exhaustive_max_images)
    report["matcher"] = {"name": choice.name, "requested": options.matcher, "reason": choice.reason}
    with run.stage("match", f"matching photos ({choice.name})"):
        if choice.name == "vocabtree":
            pairs = retrieval_pairs(database, num_threads=options.num_threads, seed=options.seed)
        else:
            pairs = image_pairs(choice.name, [photo.name for photo in usable], {n: p.enu for n, p in priors.items()})
        report["matcher"]["pairs"] = len(pairs)
        match(
            database,
            pairs,
            options.num_threads,
            on_progress=lambda done, total: run.update(done / total, f"matched {done} of {total} photo pairs"),
        )
        share_intrinsics(database)

    mapper = choose_mapper(options.mapper, len(usable), options.global_mapper_min_images)
    # The mapper that ran; why, beside it (the requested one is in the report's options).
    report["mapper"], report["mapper_reason"] = mapper.name, mapper.reason
    use_priors = options.gps_priors and len(priors) >= 3
    report["gps"]["priors_in_bundle_adjustment"] = use_priors
    with run.stage("map", f"placing photos ({mapper.name} mapping{', GPS priors' if use_priors else ''})"):

        def registered(count: int) -> None:
            run.update(min(count / len(usable), 1.0), f"placed {count} of {len(usable)} photos")

        model = map_images(
            database,
            image_dir,
            work / "sparse",
            mapper.name,
            options.num_threads,
            options.seed,
            on_registered=registered,
            use_position_priors=use_priors,
        )
    if model is None or model.num_reg_images() == 0:
        report.update(images_registered=0, unregistered=sorted(photo.name for photo in usable))
        raise ReconstructionFailedError(
            f"None of the {len(usable)} photos could be placed in 3D; {OVERLAP_ADVICE}, and the scene needs "
            "visible texture (not glass, water or blank walls).",
            images_used=len(usable),
        )
    registered_names = {image.name for image in model.images.values() if image.has_pose}
    report.update(
        images_registered=len(registered_names),
        unregistered=sorted(photo.name for photo in usable if photo.name not in registered_names),
    )
    needed = max(MIN_IMAGES, options.min_registered_fraction * len(usable))
    if len(registered_names) < needed:
        raise TooFewRegisteredError(
            f"Only {len(registered_names)} of {len(usable)} photos could be placed; {OVERLAP_ADVICE}.",
            images_registered=len(registered_names),
            images_used=len(usable),
        )

    with run.stage("georeference", "georeferencing with GPS"):
        if origin is None:
            report["georeference"] = {"used": False, "reason": "no photo has GPS", "images_with_gps": 0, "frame": "sfm"}
        else:
            report["georeference"] = georeference(model, gps_by_name, origin, options.georeference_limits())
            report["georeference"]["camera_centres"] = _camera_centres(model)
    report["gps_used"] = report["georeference"]["used"]

    report.update(
        points3d=model.num_points3D(),
        mean_reprojection_error_px=round(float(model.compute_mean_reprojection_error()), 4),
        mean_track_length=round(float(model.compute_mean_track_length()), 3),
        mean_observations_per_image=round(float(model.compute_mean_observations_per_reg_image()), 1),
        cameras=_camera_summary(model),
    )

    with run.stage("undistort", f"undistorting {len(registered_names)} photos"):
        model_dir = work / "model"
        model_dir.mkdir()
        model.write(model_dir)
        undistort(model_dir, image_dir, work / "undistorted", options.num_threads)

    with run.stage("export", "writing outputs"):
        import pycolmap

        undistorted = pycolmap.Reconstruction(work / "undistorted" / "sparse")
        report["undistorted_cameras"] = _camera_summary(undistorted)
        points_ply = work / SfmOutputs.POINTS
        undistorted.export_PLY(points_ply)
        summary = scene_summary(undistorted, georeferenced=bool(report["georeference"]["used"]))
        write_json_atomic(work / SfmOutputs.SCENE_SUMMARY, summary.model_dump(mode="json"))
        _replace(work / "undistorted" / "sparse", out_dir / SfmOutputs.SPARSE)
        _replace(work / "undistorted" / "images", out_dir / SfmOutputs.IMAGES)
        _replace(points_ply, out_dir / SfmOutputs.POINTS)
        _replace(work / SfmOutputs.SCENE_SUMMARY, out_dir / SfmOutputs.SCENE_SUMMARY)
        run.update(1.0, f"placed {len(registered_names)} of {len(usable)} photos, {model.num_points3D()} points")
