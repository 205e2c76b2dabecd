"""``spaceport sfm PHOTOS OUT_DIR [options]``, and the SageMaker processing job entrypoint.

With no positional arguments the command runs as a SageMaker processing job: the photos
are read from ``/opt/ml/processing/input/photos/`` when the job has a flight log too (which
is then in ``/opt/ml/processing/input/flight_log/``), else from ``/opt/ml/processing/input``
itself (a folder of images, or a folder holding one .zip); outputs go to
``/opt/ml/processing/output``, a failure reason to ``/opt/ml/output/failure``. Every option
can also come from the environment as ``SPACEPORT_SFM_<OPTION>`` (e.g.
``SPACEPORT_SFM_MATCHER=spatial``); arguments win. ``spaceport sfm flight.zip out/sfm
--flight-log flight.csv --mapper global`` on a laptop.

>>> build_parser().parse_args(["photos.zip", "out", "--gps-accuracy-m", "2"]).gps_accuracy_m
2.0
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from spaceport.container import ProcessingPaths
from spaceport.contracts.jobspec import FLIGHT_LOG_INPUT, INPUT_NAMES
from spaceport.contracts.layout import SfmOutputs
from spaceport.contracts.stages import Stage
from spaceport.entrypoint import configure_logging, run_job
from spaceport.progress import ProgressReporter
from spaceport_sfm.options import CAMERA_MODELS, MAPPERS, MATCHERS, SfmOptions
from spaceport_sfm.unpack import looks_like_zip

ENV_PREFIX = "SPACEPORT_SFM_"
# The processing inputs' folders under /opt/ml/processing/input/ when a job has a flight log.
PHOTOS_INPUT = INPUT_NAMES[Stage.SFM]
_DEFAULTS = SfmOptions()


def _env(name: str, default: object) -> object:
    """An option's default: ``SPACEPORT_SFM_<NAME>`` when set, else the built-in one.

    A string default is parsed by argparse like a command-line value, so a malformed
    environment variable is a usage error (exit 2) like a malformed argument.
    """
    value = os.environ.get(ENV_PREFIX + name.upper())
    return value if value not in (None, "") else default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spaceport sfm",
        description=f"Photos (.zip or folder) -> COLMAP reconstruction: OUT_DIR/{SfmOutputs.SPARSE}/*.bin, "
        f"OUT_DIR/{SfmOutputs.IMAGES}/ (undistorted, PINHOLE), OUT_DIR/{SfmOutputs.POINTS}, "
        f"OUT_DIR/{SfmOutputs.REPORT}. Without PHOTOS and OUT_DIR it runs as a "
        "SageMaker processing job (input /opt/ml/processing/input, output /opt/ml/processing/output). Options "
        f"default to the environment variables {ENV_PREFIX}<OPTION>.",
    )
    parser.add_argument("photos", nargs="?", type=Path, metavar="PHOTOS", help="a .zip of photos or a folder")
    parser.add_argument("out_dir", nargs="?", type=Path, metavar="OUT_DIR", help="where the outputs go")
    parser.add_argument(
        "--matcher",
        choices=MATCHERS,
        default=_env("matcher", _DEFAULTS.matcher),
        help="which photo pairs to match; auto: exhaustive for small sets, spatial when most "
        "photos have GPS, else sequential with loop closure; vocabtree: by visual similarity, for "
        "photos without GPS in no useful order (default %(default)s)",
    )
    parser.add_argument(
        "--mapper",
        choices=MAPPERS,
        default=_env("mapper", _DEFAULTS.mapper),
        help="incremental (COLMAP) or global (GLOMAP-style) mapping; auto: global from "
        "--global-mapper-min-images photos on (default %(default)s)",
    )
    parser.add_argument(
        "--global-mapper-min-images",
        type=int,
        default=_env("global_mapper_min_images", _DEFAULTS.global_mapper_min_images),
        help="auto mapper: map this many photos or more globally (default %(default)s)",
    )
    parser.add_argument(
        "--max-image-size",
        type=int,
        default=_env("max_image_size", _DEFAULTS.max_image_size),
        help="downscale photos whose long side is larger, in pixels (default %(default)s)",
    )
    parser.add_argument(
        "--exhaustive-max-images",
        type=int,
        default=_env("exhaustive_max_images", _DEFAULTS.exhaustive_max_images),
        help="auto matcher: match every pair up to this many photos (default %(default)s)",
    )
    parser.add_argument(
        "--min-registered-fraction",
        type=float,
        default=_env("min_registered_fraction", _DEFAULTS.min_registered_fraction),
        help="fail when fewer photos than this share can be placed (default %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=_env("threads", _DEFAULTS.num_threads),
        help="CPU threads, -1 for all cores (default %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=_env("seed", _DEFAULTS.seed),
        help="random seed for repeatable runs (default %(default)s)",
    )
    parser.add_argument(
        "--flight-log",
        type=Path,
        metavar="CSV",
        help="flight-log CSV with the photos' positions (photo name or time, lat, lon, alt): used for the "
        "photos without GPS in their EXIF or XMP",
    )
    parser.add_argument(
        "--camera-model",
        choices=CAMERA_MODELS,
        default=_env("camera_model", _DEFAULTS.camera_model),
        help="COLMAP camera model for the lens (default %(default)s)",
    )
    parser.add_argument(
        "--gps-accuracy-m",
        type=float,
        default=_env("gps_accuracy_m", _DEFAULTS.gps_horizontal_accuracy_m),
        help="horizontal GPS accuracy, standard deviation in metres (default %(default)s)",
    )
    parser.add_argument(
        "--gps-vertical-accuracy-m",
        type=float,
        default=_env("gps_vertical_accuracy_m", _DEFAULTS.gps_vertical_accuracy_m),
        help="vertical GPS accuracy, standard deviation in metres (default %(default)s)",
    )
    parser.add_argument(
        "--gps-priors",
        choices=("on", "off"),
        default=_env("gps_priors", "on" if _DEFAULTS.gps_priors else "off"),
        help="weigh the cameras against their GPS in bundle adjustment (default %(default)s)",
    )
    parser.add_argument(
        "--georeference-max-rms-m",
        type=float,
        default=_env("georeference_max_rms_m", _DEFAULTS.georeference_max_rms_m),
        help="largest horizontal RMS distance from the cameras to their GPS for a georeferenced result "
        "(default %(default)s)",
    )
    parser.add_argument("--verbose", action="store_true", help="show pycolmap's own log lines")
    return parser


def processing_input(folder: Path) -> Path:
    """What a processing job reconstructs: the one upload (.zip) in its input folder, else the folder.

    With a flight log the photos have a folder of their own (:data:`PHOTOS_INPUT`).
    """
    if (folder / PHOTOS_INPUT).is_dir():
        folder = folder / PHOTOS_INPUT
    if folder.is_dir():
        files = [path for path in folder.iterdir() if path.is_file() and not path.name.startswith(".")]
        if len(files) == 1 and (files[0].suffix.lower() == ".zip" or looks_like_zip(files[0])):
            return files[0]
    return folder


def processing_flight_log(folder: Path) -> Path | None:
    """The flight-log CSV of a processing job (the one file in :data:`FLIGHT_LOG_INPUT`), if it has one."""
    log_dir = folder / FLIGHT_LOG_INPUT
    if not log_dir.is_dir():
        return None
    files = sorted(path for path in log_dir.iterdir() if path.is_file() and not path.name.startswith("."))
    return files[0] if files else None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for option, choices in (
        ("matcher", MATCHERS),
        ("mapper", MAPPERS),
        ("camera_model", CAMERA_MODELS),
        ("gps_priors", ("on", "off")),
    ):  # argparse skips defaults
        if getattr(args, option) not in choices:
            parser.error(f"{ENV_PREFIX}{option.upper()} must be one of {', '.join(choices)}")
    if (args.photos is None) != (args.out_dir is None):
        parser.error("give both PHOTOS and OUT_DIR, or neither (SageMaker processing job)")
    failure_file = None
    if args.photos is None:
        paths = ProcessingPaths.from_env()
        args.photos, args.out_dir, failure_file = processing_input(paths.input), paths.output, paths.failure
        args.flight_log = args.flight_log or processing_flight_log(paths.input)
    configure_logging(args.verbose)
    options = SfmOptions(
        matcher=args.matcher,
        mapper=args.mapper,
        max_image_size=args.max_image_size,
        exhaustive_max_images=args.exhaustive_max_images,
        global_mapper_min_images=args.global_mapper_min_images,
        min_registered_fraction=args.min_registered_fraction,
        num_threads=args.threads,
        seed=args.seed,
        camera_model=args.camera_model,
        gps_horizontal_accuracy_m=args.gps_accuracy_m,
        gps_vertical_accuracy_m=args.gps_vertical_accuracy_m,
        gps_priors=args.gps_priors == "on",
        georeference_max_rms_m=args.georeference_max_rms_m,
    )

    def body() -> int:
        import pycolmap

        from spaceport_sfm.job import run_sfm

        pycolmap.logging.minloglevel = 0 if args.verbose else 2  # glog: 0 info, 1 warning, 2 error
        report = run_sfm(args.photos, args.out_dir, options, ProgressReporter("sfm"), flight_log=args.flight_log)
        print(
            f"placed {report['images_registered']} of {report['images_used']} photos, {report['points3d']} points, "
            f"mean reprojection error {report['mean_reprojection_error_px']:.2f} px -> {args.out_dir}"
        )
        georeference = report["georeference"]
        if georeference["used"]:
            print(
                f"georeferenced: {georeference['horizontal_rms_m']:.2f} m horizontal, "
                f"{georeference['vertical_rms_m']:.2f} m vertical RMS to GPS"
            )
        else:
            print(f"not georeferenced: {georeference['reason']}")
        return 0

    return run_job(body, failure_file=failure_file)
