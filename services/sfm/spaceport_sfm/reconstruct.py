"""The pycolmap 4.x calls: SIFT extraction, matching, mapping, undistortion.

Each function is one step on a COLMAP database and an image folder; ``spaceport_sfm.job``
strings them together. pycolmap picks CUDA by itself when the build and device have it
(``Device.auto``); on the CPU everything runs with ``num_threads`` threads. In order::

    extract(db, image_dir, photos, camera_model="SIMPLE_RADIAL")
    write_position_priors(db, {"a.jpg": PositionPrior((1.0, 2.0, 30.0), 3.0, 5.0)})
    match(db, image_pairs("exhaustive", names, positions), on_progress=...)
    share_intrinsics(db)
    model = map_images(db, image_dir, work / "sparse", "incremental", use_position_priors=True)
    undistort(model_dir, image_dir, work / "undistorted")

With position priors, bundle adjustment weighs each camera centre against its GPS position
(a Cauchy loss on the covariance-weighted distance, so a wrong fix cannot drag the model),
and the model comes out in the priors' frame: metres, ENU.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pycolmap

from spaceport_sfm.images import Photo
from spaceport_sfm.options import MAPPERS, MATCHERS

DEFAULT_FOCAL_FACTOR = 1.2  # COLMAP's guess without EXIF: focal = 1.2 x long side
MIN_MODEL_SIZE = 3  # keep small models too (COLMAP drops under 10): small captures are valid
# The starting distortion of each camera model's extra parameters (after f, cx, cy or fx, fy, cx, cy).
_EXTRA_PARAMS = {"SIMPLE_RADIAL": "0", "RADIAL": "0,0", "OPENCV": "0,0,0,0", "FULL_OPENCV": "0,0,0,0,0,0,0,0"}
MATCH_BLOCKS = 20  # matching runs in about this many blocks of pairs, one progress line each
SEQUENTIAL_OVERLAP = 10
SPATIAL_NEIGHBOURS = 30
# Vocabulary-tree retrieval: each photo is matched with its most similar photos by visual words.
RETRIEVAL_NEIGHBOURS = 30
# The capture's own vocabulary is learnt from at most this many descriptors per photo and in all.
VOCABULARY_DESCRIPTORS_PER_PHOTO = 100
VOCABULARY_DESCRIPTORS = 500_000


@dataclass(frozen=True)
class MatcherChoice:
    name: str  # exhaustive | sequential | spatial
    reason: str


def choose_mapper(requested: str, num_images: int, global_min_images: int) -> MatcherChoice:
    """Resolve ``auto``: incremental mapping, global mapping from ``global_min_images`` photos on.

    >>> choose_mapper("auto", 120, 300).name, choose_mapper("auto", 800, 300).name
    ('incremental', 'global')
    """
    if requested != "auto":
        return MatcherChoice(requested, "requested")
    if num_images >= global_min_images:
        return MatcherChoice("global", f"{num_images} photos (global mapping from {global_min_images})")
    return MatcherChoice("incremental", f"{num_images} photos (incremental below {global_min_images})")


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


def _reader_options(camera_model: str, camera_params: str) -> pycolmap.ImageReaderOptions:
    options = pycolmap.ImageReaderOptions()
    options.camera_model = camera_model
    options.camera_params = camera_params
    return options


def _initial_params(camera_model: str, focal: float, width: int, height: int) -> str:
    """COLMAP's parameter string for a camera model: focal(s), principal point, zero distortion."""
    if camera_model not in _EXTRA_PARAMS:
        raise ValueError(f"unsupported camera model {camera_model!r}; expected one of {', '.join(_EXTRA_PARAMS)}")
    focals = f"{focal}" if camera_model.startswith(("SIMPLE", "RADIAL")) else f"{focal},{focal}"
    return f"{focals},{width / 2},{height / 2},{_EXTRA_PARAMS[camera_model]}"


def extract(
    database: Path,
    image_dir: Path,
    photos: Sequence[Photo],
    num_threads: int = -1,
    on_progress: Callable[[int], None] | None = None,
    camera_model: str = "SIMPLE_RADIAL",
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
        params = _initial_params(camera_model, f, width, height)
        for start in range(0, len(members), chunk):
            names = [photo.name for photo in members[start : start + chunk]]
            pycolmap.extract_features(
                database,
                image_dir,
                image_names=names,
                camera_mode=pycolmap.CameraMode.PER_IMAGE,
                reader_options=_reader_options(camera_model, params),
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
                image = db.read_image_with_name(name)
                assert image is not None, name  # extracted just above
                camera = db.read_camera(image.camera_id)
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
        shared: dict[tuple[object, ...], pycolmap.Camera] = {}
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

    def __exit__(self, *exc: object) -> None:
        self.db.close()


@dataclass(frozen=True)
class PositionPrior:
    """Where a photo was taken (ENU metres) and how well that is known (standard deviations, metres)."""

    enu: tuple[float, float, float]
    sigma_horizontal_m: float
    sigma_vertical_m: float
    gravity: tuple[float, float, float] | None = None  # "down" in the camera's axes, from the gimbal

    def covariance(self) -> np.ndarray:
        """[3, 3] ENU covariance: independent east, north and up errors."""
        h, v = self.sigma_horizontal_m**2, self.sigma_vertical_m**2
        return np.diag([h, h, v])


def write_position_priors(database: Path, priors: Mapping[str, PositionPrior]) -> None:
    """Replace COLMAP's own EXIF GPS priors with ours: ENU metres with their covariance.

    Ours follow the same reading as the rest of the job (EXIF, XMP or the flight log) and exist
    also for the copies that were re-encoded (rotated or downscaled) and so lost their EXIF.
    """
    with _open(database) as db:
        db.clear_pose_priors()
        for image in db.read_all_images():
            prior = priors.get(image.name)
            if prior is None:
                continue
            pose_prior = pycolmap.PosePrior(
                corr_data_id=image.data_id,
                position=list(prior.enu),
                coordinate_system=pycolmap.PosePriorCoordinateSystem.CARTESIAN,
            )
            pose_prior.position_covariance = prior.covariance()
            if prior.gravity is not None:
                pose_prior.gravity = list(prior.gravity)
            db.write_pose_prior(pose_prior)


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


def image_pairs(
    matcher: str,
    names: Sequence[str],
    positions: Mapping[str, tuple[float, float, float]] | None = None,
    sequential_overlap: int = SEQUENTIAL_OVERLAP,
    spatial_neighbours: int = SPATIAL_NEIGHBOURS,
) -> list[tuple[str, str]]:
    """The photo pairs a matcher compares, each once, in a cache-friendly order.

    exhaustive: every pair. sequential: each photo with the next ``sequential_overlap`` in name
    order, and with the photos 2, 4, 8, ... further (quadratic overlap), plus loop-closure pairs.
    spatial: each photo with its ``spatial_neighbours`` nearest by GPS (ENU metres, altitude
    counts too); a photo without GPS gets its neighbours in name order instead.
    """
    ordered = sorted(names)
    rank = {name: i for i, name in enumerate(ordered)}
    pairs: set[tuple[str, str]] = set()

    def add(a: str, b: str) -> None:
        if a != b:
            pairs.add((a, b) if a < b else (b, a))

    if matcher == "exhaustive":
        return [(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1 :]]
    if matcher == "sequential":
        for i, a in enumerate(ordered):
            for k in range(1, sequential_overlap + 1):
                if i + k < len(ordered):
                    add(a, ordered[i + k])
                if i + 2**k < len(ordered):
                    add(a, ordered[i + 2**k])
        for a, b in _loop_closure_pairs(ordered, sequential_overlap):
            add(a, b)
    elif matcher == "spatial":
        located = [name for name in ordered if positions and name in positions]
        if len(located) > 1:
            xyz = np.array([(positions or {})[name] for name in located], dtype=np.float64)
            for i, neighbours in enumerate(nearest_neighbours(xyz, min(spatial_neighbours, len(located) - 1))):
                for j in neighbours:
                    add(located[i], located[int(j)])
        for i, a in enumerate(ordered):
            if not positions or a not in positions:
                for b in ordered[max(0, i - sequential_overlap) : i + sequential_overlap + 1]:
                    add(a, b)
    else:
        raise ValueError(f"unknown matcher {matcher!r}; expected one of {MATCHERS[1:]}")
    return sorted(pairs, key=lambda pair: (rank[pair[0]], rank[pair[1]]))


def nearest_neighbours(xyz: np.ndarray, k: int) -> list[np.ndarray]:
    """Each point's ``k`` nearest other points (by 3D distance), through a ground grid: O(n k), not O(n²).

    ``xyz`` [N, 3]. The grid's cells hold about ``k`` points each over the two widest axes (a
    flight spreads over the ground); rings of cells around a point are searched until the ``k``-th
    nearest found is nearer than any point beyond them can be.

    >>> [sorted(n.tolist()) for n in nearest_neighbours(np.array([[0.0, 0, 0], [1, 0, 0], [5, 0, 0], [6, 0, 0]]), 1)]
    [[1], [0], [3], [2]]
    """
    n = len(xyz)
    if k <= 0 or n < 2:
        return [np.zeros(0, dtype=int) for _ in range(n)]
    axes = np.argsort(np.ptp(xyz, axis=0))[::-1][:2]
    flat = xyz[:, axes]
    low, span = flat.min(axis=0), np.maximum(np.ptp(flat, axis=0), 1e-9)
    cell = max(float(np.sqrt(span[0] * span[1] * k / n)), float(max(span)) * k / n, 1e-9)
    keys = np.floor((flat - low) / cell).astype(np.int64)
    buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
    for index, (cx, cy) in enumerate(keys.tolist()):
        buckets[(cx, cy)].append(index)
    reach = int(np.ceil(max(span) / cell)) + 1
    found = []
    for index, (cx, cy) in enumerate(keys.tolist()):
        for ring in range(1, reach + 1):
            candidates = [
                other
                for dx in range(-ring, ring + 1)
                for dy in range(-ring, ring + 1)
                for other in buckets.get((cx + dx, cy + dy), ())
                if other != index
            ]
            if len(candidates) < k and ring < reach:
                continue
            distances = np.linalg.norm(xyz[candidates] - xyz[index], axis=1)
            nearest = np.argsort(distances, kind="stable")[:k]
            # Anything outside the searched rings is at least `ring` cells away on the ground.
            if ring == reach or distances[nearest[-1]] <= ring * cell:
                found.append(np.asarray(candidates)[nearest])
                break
    return found


def retrieval_pairs(
    database: Path, neighbours: int = RETRIEVAL_NEIGHBOURS, num_threads: int = -1, seed: int = 0
) -> list[tuple[str, str]]:
    """Pairs by visual similarity (a vocabulary tree), for photos without GPS in no useful order.

    The vocabulary is learnt from the capture's own SIFT descriptors (at most
    :data:`VOCABULARY_DESCRIPTORS_PER_PHOTO` per photo, read one photo at a time), so no
    pretrained tree has to be fetched; each photo is then paired with its ``neighbours`` most
    similar photos.
    """
    rng = np.random.default_rng(seed)
    with _open(database) as db:
        images = db.read_all_images()
        names = {image.image_id: image.name for image in images}
        per_photo = min(VOCABULARY_DESCRIPTORS_PER_PHOTO, max(1, VOCABULARY_DESCRIPTORS // max(len(images), 1)))
        sample, kind = [], None
        for image in images:
            stored = db.read_descriptors(image.image_id)
            kind = stored.type
            data = stored.data
            if len(data) > per_photo:
                data = data[rng.choice(len(data), per_photo, replace=False)]
            sample.append(data)
        if kind is None or len(images) < 2:
            return []
        descriptors = np.concatenate(sample).astype(np.float32)
        index = pycolmap.VisualIndex.create(descriptors.shape[1], 64)
        build = pycolmap.VisualIndex.BuildOptions()
        # About 40 descriptors per word, as k-means wants, within COLMAP's range.
        build.num_visual_words = int(np.clip(len(descriptors) // 40, 64, 65536))
        build.num_threads = num_threads
        index.build(build, pycolmap.FeatureDescriptorsFloat(kind, descriptors))
        tree = Path(database).with_name("vocabulary-tree.bin")
        index.write(tree)
        options = pycolmap.VocabTreePairingOptions()
        options.vocab_tree_path = str(tree)
        options.num_images = min(neighbours + 1, len(images))
        options.num_threads = num_threads
        ids = pycolmap.VocabTreePairGenerator(options, db).all_pairs()
    tree.unlink(missing_ok=True)
    pairs = {tuple(sorted((names[a], names[b]))) for a, b in ids if a != b}
    return sorted((a, b) for a, b in pairs)


def match(
    database: Path,
    pairs: Sequence[tuple[str, str]],
    num_threads: int = -1,
    on_progress: Callable[[int, int], None] | None = None,
) -> None:
    """Match features between ``pairs`` of photos, with geometric verification, in blocks.

    pycolmap reports nothing while it matches, so the pairs go to it in about
    :data:`MATCH_BLOCKS` blocks; ``on_progress(done, total)`` follows each block.
    """
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = num_threads
    threads = num_threads if num_threads > 0 else len(os.sched_getaffinity(0))
    # Blocks of a multiple of the thread count, so no thread idles at the end of a block.
    block = max(threads * 8, math.ceil(len(pairs) / MATCH_BLOCKS / threads) * threads)
    pairs_file = Path(database).with_name("pairs.txt")
    for start in range(0, len(pairs), block):
        chunk = pairs[start : start + block]
        pairs_file.write_text("".join(f"{a} {b}\n" for a, b in chunk))
        imported = pycolmap.ImportedPairingOptions()
        imported.match_list_path = pairs_file
        imported.block_size = len(chunk)
        pycolmap.match_image_pairs(database, matching_options=matching, pairing_options=imported)
        if on_progress is not None:
            on_progress(start + len(chunk), len(pairs))
    pairs_file.unlink(missing_ok=True)


def map_images(
    database: Path,
    image_dir: Path,
    sparse_dir: Path,
    mapper: str,
    num_threads: int = -1,
    seed: int = 0,
    on_registered: Callable[[int], None] | None = None,
    use_position_priors: bool = False,
) -> pycolmap.Reconstruction | None:
    """Build the models and return the one with the most registered photos (None if none).

    ``use_position_priors``: bundle adjustment weighs the cameras against the database's
    position priors (incremental mapping does it in every global adjustment; after global
    mapping one pose-prior adjustment follows), and the model ends in the priors' frame.
    """
    sparse_dir.mkdir(parents=True, exist_ok=True)
    if mapper == "incremental":
        incremental = pycolmap.IncrementalPipelineOptions()
        incremental.num_threads = num_threads
        incremental.random_seed = seed
        incremental.min_model_size = MIN_MODEL_SIZE
        incremental.use_prior_position = use_position_priors
        incremental.use_robust_loss_on_prior_position = True
        registered = 0

        def next_image() -> None:
            nonlocal registered
            registered += 1
            if on_registered is not None:
                on_registered(registered)

        models = pycolmap.incremental_mapping(
            database, image_dir, sparse_dir, incremental, next_image_callback=next_image
        )
    elif mapper == "global":
        global_options = pycolmap.GlobalPipelineOptions()
        global_options.num_threads = num_threads
        global_options.random_seed = seed
        global_options.min_model_size = MIN_MODEL_SIZE
        models = pycolmap.global_mapping(database, image_dir, sparse_dir, global_options)
    else:
        raise ValueError(f"unknown mapper {mapper!r}; expected one of {MAPPERS}")
    if not models:
        return None
    model: pycolmap.Reconstruction = max(models.values(), key=lambda m: (m.num_reg_images(), m.num_points3D()))
    if mapper == "global" and use_position_priors:
        adjust_with_position_priors(database, model)
    return model


def adjust_with_position_priors(database: Path, model: pycolmap.Reconstruction) -> None:
    """One bundle adjustment of ``model`` with the database's position priors (robust, Cauchy loss)."""
    with _open(database) as db:
        priors = db.read_all_pose_priors()
    config = pycolmap.BundleAdjustmentConfig()
    for image_id in model.reg_image_ids():
        config.add_image(image_id)
    prior_options = pycolmap.PosePriorBundleAdjustmentOptions()
    prior_options.ceres.prior_position_loss_function_type = pycolmap.LossFunctionType.CAUCHY
    adjuster = pycolmap.create_pose_prior_bundle_adjuster(
        pycolmap.BundleAdjustmentOptions(), prior_options, config, priors, model
    )
    adjuster.solve()


def undistort(model_dir: Path, image_dir: Path, out_dir: Path, num_threads: int = -1) -> None:
    """Undistort to PINHOLE: ``out_dir/images`` and ``out_dir/sparse/*.bin`` (COLMAP layout)."""
    pycolmap.undistort_images(out_dir, model_dir, image_dir, output_type="COLMAP", num_threads=num_threads)
