"""The SfM job: photos (.zip or folder) -> COLMAP model, undistorted images, report.

Stages: unpack -> read -> extract -> match -> map -> georeference -> undistort -> export.
Everything is built in ``OUT_DIR/.work`` and moved into place at the end, so a failed or
retried run never leaves half an output; the report (:attr:`SfmOutputs.REPORT`) is written
last, also on an expected failure (with the error). Nothing is written outside ``OUT_DIR``.
``run_sfm(Path("flight.zip"), Path("out"), SfmOptions(matcher="auto"))`` returns that report.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from spaceport.contracts.layout import SfmOutputs
from spaceport.files import write_json_atomic
from spaceport.progress import ProgressReporter
from spaceport_sfm.errors import (
    ReconstructionFailedError,
    SfmError,
    TooFewImagesError,
    TooFewRegisteredError,
)
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


def _versions() -> dict[str, str]:
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


def _camera_summary(model) -> list[dict[str, Any]]:
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
    photos: Path, out_dir: Path, options: SfmOptions | None = None, progress: ProgressReporter | None = None
) -> dict[str, Any]:
    """Reconstruct ``photos`` into ``out_dir``; return the report (also written to ``out_dir``)."""
    options = options or SfmOptions()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / ".work"
    shutil.rmtree(work, ignore_errors=True)  # a retry starts from scratch
    run = _Run(progress or ProgressReporter("sfm"))
    report: dict[str, Any] = {"status": "running", "input": Path(photos).name, "options": _options_dict(options)}
    started = time.perf_counter()
    try:
        _reconstruct(Path(photos), out_dir, work, options, run, report)
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


def _options_dict(options: SfmOptions) -> dict[str, Any]:
    data = asdict(options)
    data["limits"] = asdict(options.limits)
    return data


def _reconstruct(photos: Path, out_dir: Path, work: Path, options: SfmOptions, run: _Run, report: dict) -> None:
    # Heavy imports here, so `spaceport sfm --help` and failing inputs stay fast.
    from spaceport_sfm.georeference import georeference, origin_for
    from spaceport_sfm.reconstruct import (
        choose_matcher,
        extract,
        map_images,
        match,
        share_intrinsics,
        undistort,
        write_position_priors,
    )

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
    gps_by_name = {photo.name: photo.gps for photo in usable if photo.gps is not None}
    origin = origin_for(list(gps_by_name.values())) if gps_by_name else None

    database = work / "database.db"
    with run.stage("extract", f"finding features in {len(usable)} photos"):
        extract(
            database,
            image_dir,
            usable,
            options.num_threads,
            on_progress=lambda done: run.update(done / len(usable), f"features: {done} of {len(usable)} photos"),
        )
        if origin is not None:
            names = list(gps_by_name)
            enu = origin.to_enu([gps_by_name[name] for name in names])
            write_position_priors(database, {name: tuple(position) for name, position in zip(names, enu, strict=True)})

    choice = choose_matcher(options.matcher, len(usable), len(gps_by_name), options.exhaustive_max_images)
    report["matcher"] = {"name": choice.name, "requested": options.matcher, "reason": choice.reason}
    with run.stage("match", f"matching photos ({choice.name})"):
        match(database, choice.name, [photo.name for photo in usable], options.num_threads)
        share_intrinsics(database)

    report["mapper"] = options.mapper
    with run.stage("map", f"placing photos ({options.mapper} mapping)"):
        step = math.ceil(len(usable) / 10)

        def registered(count: int) -> None:
            if count % step == 0:
                run.update(min(count / len(usable), 1.0), f"placed {count} of {len(usable)} photos")

        model = map_images(
            database,
            image_dir,
            work / "sparse",
            options.mapper,
            options.num_threads,
            options.seed,
            on_registered=registered,
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
            report["georeference"] = {"used": False, "reason": "no photo has GPS", "images_with_gps": 0}
        else:
            report["georeference"] = georeference(model, gps_by_name, origin)
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
        _replace(work / "undistorted" / "sparse", out_dir / SfmOutputs.SPARSE)
        _replace(work / "undistorted" / "images", out_dir / SfmOutputs.IMAGES)
        _replace(points_ply, out_dir / SfmOutputs.POINTS)
        run.update(1.0, f"placed {len(registered_names)} of {len(usable)} photos, {model.num_points3D()} points")
