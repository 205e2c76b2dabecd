"""The pycolmap 4.x calls: SIFT extraction, matching, mapping, undistortion.

Each function is one step on a COLMAP database and an image folder; ``spaceport_sfm.job``
strings them together. pycolmap picks CUDA by itself when the build and device have it
(``Device.auto``); on the CPU everything runs with ``num_threads`` threads.

Example::

    extract(db, image_dir, photos, num_threads=-1)
    write_position_priors(db, {"a.jpg": (1.0, 2.0, 30.0)})
    match(db, "exhaustive", [p.name for p in photos])
    share_intrinsics(db)
    model = map_images(db, image_dir, work / "sparse", "incremental")
    undistort(model_dir, image_dir, work / "undistorted")
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pycolmap

from spaceport_sfm.images import Photo
from spaceport_sfm.options import MAPPERS, MATCHERS

CAMERA_MODEL = "SIMPLE_RADIAL"  # one focal, principal point, one radial term: robust for drones
DEFAULT_FOCAL_FACTOR = 1.2  # COLMAP's guess without EXIF: focal = 1.2 x long side
MIN_MODEL_SIZE = 3  # keep small models too (COLMAP drops under 10): small captures are valid


@dataclass(frozen=True)
class MatcherChoice:
    name: str  # exhaustive | sequential | spatial
    reason: str


def choose_matcher(requested: str, num_images: int, num_with_gps: int, exhaustive_max_images: int) -> MatcherChoice:
    """Resolve ``auto``: exhaustive for small sets; spatial with GPS on most; else sequential."""
    if requested != "auto":
        return MatcherChoice(requested, "requested")
    if num_images <= exhaustive_max_images:
        return MatcherChoice("exhaustive", f"{num_images} photos (at most {exhaustive_max_images}: every pair)")
    if num_with_gps > num_images / 2:
        return MatcherChoice("spatial", f"{num_with_gps} of {num_images} photos have GPS")
    return MatcherChoice(
        "sequential", f"{num_images} photos, too few with GPS: neighbours in name order plus loop closure"
    )


def _reader_options(camera_params: str) -> pycolmap.ImageReaderOptions:
    options = pycolmap.ImageReaderOptions()
    options.camera_model = CAMERA_MODEL
    options.camera_params = camera_params
    return options


def extract(
    database: Path,
    image_dir: Path,
    photos: Sequence[Photo],
    num_threads: int = -1,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    """SIFT features for every photo, each with a camera whose intrinsics start from its group's.

    Photos that share a size and EXIF focal length get identical starting intrinsics, and
    :func:`share_intrinsics` later makes them one camera for mapping. A focal prior from
    EXIF is marked as such; without one COLMAP's 1.2 x long side guess is not. Extraction
    runs in chunks of about a tenth of the photos so that progress can be reported (pycolmap
    has no progress callback for it).
    """
    groups: dict[tuple[int, int, float | None], list[Photo]] = defaultdict(list)
    for photo in photos:
        focal = round(photo.focal_px, 1) if photo.focal_px else None
        groups[(photo.width, photo.height, focal)].append(photo)
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = num_threads
    # A multiple of the thread count, so no thread idles at the end of a chunk.
    threads = num_threads if num_threads > 0 else len(os.sched_getaffinity(0))
    chunk = math.ceil(len(photos) / 10 / threads) * threads
    done = 0
    guessed: list[str] = []
    for (width, height, focal), members in groups.items():
        f = focal if focal else DEFAULT_FOCAL_FACTOR * max(width, height)
        params = f"{f},{width / 2},{height / 2},0"
        for start in range(0, len(members), chunk):
            names = [photo.name for photo in members[start : start + chunk]]
            pycolmap.extract_features(
                database,
                image_dir,
                image_names=names,
                camera_mode=pycolmap.CameraMode.PER_IMAGE,
                reader_options=_reader_options(params),
                extraction_options=extraction,
            )
            done += len(names)
            if on_progress is not None:
                on_progress(done)
        if not focal:
            guessed.extend(photo.name for photo in members)
    if guessed:
        with _open(database) as db:
            for name in guessed:
                camera = db.read_camera(db.read_image_with_name(name).camera_id)
                camera.has_prior_focal_length = False
                db.update_camera(camera)


def share_intrinsics(database: Path) -> int:
    """Make photos whose cameras start from identical intrinsics share one camera; returns the cameras left.

    One shared camera per physical camera constrains its intrinsics far better in bundle
    adjustment than one per photo. It is done after matching, not at extraction, because
    pycolmap 4.2.1 verified the pairs of a single shared camera on one core (temple ring, 47
    photos, 2 cores: matching took 19.8 s with one camera, 13.4 s with one per photo).
    """
    with _open(database) as db:
        shared: dict[tuple, pycolmap.Camera] = {}
        camera_for: dict[int, pycolmap.Camera] = {}
        for camera in db.read_all_cameras():
            key = (camera.model.name, camera.width, camera.height, tuple(camera.params), camera.has_prior_focal_length)
            camera_for[camera.camera_id] = shared.setdefault(key, camera)
        rig_for = {rig.ref_sensor_id.id: rig for rig in db.read_all_rigs()}
        images = {image.image_id: image for image in db.read_all_images()}
        # Frames first: an image may only name a camera that its frame already holds.
        for frame in db.read_all_frames():
            (data_id,) = frame.data_ids
            camera = camera_for[images[data_id.id].camera_id]
            rig = rig_for[camera.camera_id]
            frame.clear_data_ids()
            data_id.sensor_id = rig.ref_sensor_id
            frame.add_data_id(data_id)
            frame.rig_id = rig.rig_id
            db.update_frame(frame)
        priors = {prior.corr_data_id.id: prior for prior in db.read_all_pose_priors()}
        for image in images.values():
            image.camera_id = camera_for[image.camera_id].camera_id
            db.update_image(image)
            if image.image_id in priors:  # a prior names its image by (camera, image)
                prior = priors[image.image_id]
                prior.corr_data_id = image.data_id
                db.update_pose_prior(prior)
    return len(shared)


class _open:
    """``with _open(path) as db``: a pycolmap Database that is closed afterwards."""

    def __init__(self, path: Path) -> None:
        self.db = pycolmap.Database.open(path)

    def __enter__(self) -> pycolmap.Database:
        return self.db

    def __exit__(self, *exc) -> None:
        self.db.close()


def write_position_priors(database: Path, positions_enu: dict[str, tuple[float, float, float]]) -> None:
    """Replace COLMAP's own EXIF GPS priors with ours: ENU metres, for spatial matching.

    Ours follow the same EXIF reading as the rest of the job and exist also for the copies
    that were re-encoded (rotated or downscaled) and so lost their EXIF.
    """
    with _open(database) as db:
        db.clear_pose_priors()
        for image in db.read_all_images():
            position = positions_enu.get(image.name)
            if position is not None:
                db.write_pose_prior(
                    pycolmap.PosePrior(
                        corr_data_id=image.data_id,
                        position=list(position),
                        coordinate_system=pycolmap.PosePriorCoordinateSystem.CARTESIAN,
                    )
                )


def _loop_closure_pairs(names: Sequence[str], overlap: int) -> list[tuple[str, str]]:
    """Pairs that close loops without a vocabulary tree: every k-th photo with every other."""
    period = max(overlap // 2, len(names) // 25, 1)
    keyframes = list(names[::period])
    return [
        (a, b)
        for i, a in enumerate(keyframes)
        for j, b in enumerate(keyframes[i + 1 :], start=i + 1)
        if (j - i) * period > overlap  # nearer pairs are matched by the sequential pass
    ]


def match(
    database: Path,
    matcher: str,
    names: Sequence[str],
    num_threads: int = -1,
    sequential_overlap: int = 10,
    spatial_neighbors: int = 30,
) -> None:
    """Match features between the pairs the matcher picks, with geometric verification."""
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = num_threads
    if matcher == "exhaustive":
        pycolmap.match_exhaustive(database, matching_options=matching)
    elif matcher == "spatial":
        pairing = pycolmap.SpatialPairingOptions()
        pairing.ignore_z = False  # priors are ENU metres; altitude is as good as east/north
        pairing.max_num_neighbors = spatial_neighbors
        pairing.max_distance = 1e7  # the neighbour count bounds the pairs, not a radius
        pairing.num_threads = num_threads
        pycolmap.match_spatial(database, matching_options=matching, pairing_options=pairing)
    elif matcher == "sequential":
        pairing = pycolmap.SequentialPairingOptions()
        pairing.overlap = sequential_overlap
        pairing.quadratic_overlap = True
        pairing.num_threads = num_threads
        pycolmap.match_sequential(database, matching_options=matching, pairing_options=pairing)
        pairs = _loop_closure_pairs(sorted(names), sequential_overlap)
        if pairs:
            pairs_file = Path(database).with_name("loop_pairs.txt")
            pairs_file.write_text("".join(f"{a} {b}\n" for a, b in pairs))
            imported = pycolmap.ImportedPairingOptions()
            imported.match_list_path = str(pairs_file)
            pycolmap.match_image_pairs(database, matching_options=matching, pairing_options=imported)
    else:
        raise ValueError(f"unknown matcher {matcher!r}; expected one of {MATCHERS[1:]}")


def map_images(
    database: Path,
    image_dir: Path,
    sparse_dir: Path,
    mapper: str,
    num_threads: int = -1,
    seed: int = 0,
    on_registered: Callable[[int], None] | None = None,
) -> pycolmap.Reconstruction | None:
    """Build the models and return the one with the most registered photos (None if none)."""
    sparse_dir.mkdir(parents=True, exist_ok=True)
    if mapper == "incremental":
        options = pycolmap.IncrementalPipelineOptions()
        options.num_threads = num_threads
        options.random_seed = seed
        options.min_model_size = MIN_MODEL_SIZE
        registered = 0

        def next_image() -> None:
            nonlocal registered
            registered += 1
            if on_registered is not None:
                on_registered(registered)

        models = pycolmap.incremental_mapping(database, image_dir, sparse_dir, options, next_image_callback=next_image)
    elif mapper == "global":
        options = pycolmap.GlobalPipelineOptions()
        options.num_threads = num_threads
        options.random_seed = seed
        options.min_model_size = MIN_MODEL_SIZE
        models = pycolmap.global_mapping(database, image_dir, sparse_dir, options)
    else:
        raise ValueError(f"unknown mapper {mapper!r}; expected one of {MAPPERS}")
    if not models:
        return None
    return max(models.values(), key=lambda model: (model.num_reg_images(), model.num_points3D()))


def undistort(model_dir: Path, image_dir: Path, out_dir: Path, num_threads: int = -1) -> None:
    """Undistort to PINHOLE: ``out_dir/images`` and ``out_dir/sparse/*.bin`` (COLMAP layout)."""
    pycolmap.undistort_images(out_dir, model_dir, image_dir, output_type="COLMAP", num_threads=num_threads)
