"""Georeferencing: move a reconstruction into a local ENU frame (metres, z up) from GPS, and check it.

SfM alone knows neither scale nor which way is up. With GPS on at least three placed photos
that do not lie on one line, a similarity (scale, rotation, translation) maps the camera
centres onto their GPS positions in ENU around an origin. It is fitted robustly: RANSAC over
the similarity with an inlier threshold from the stated GPS accuracy, then least squares on
the inliers; the photos whose GPS disagrees are named. The fit is then checked: the
residuals to GPS (horizontal and vertical RMS, max), the share of outliers, and the scale
(distances between cameras against distances between their GPS positions). A model that
fails a check is still moved into the frame as well as it fits, but ``used`` is False and
``reason`` says why: it is not passed off as georeferenced.

>>> import pycolmap
>>> rng = np.random.default_rng(0)
>>> gps = rng.uniform(-50, 50, (12, 3)) * [1, 1, 0.1]
>>> model_centres = 0.5 * gps + [3.0, 1.0, 2.0]  # an SfM model: half the size, shifted
>>> model_centres[4] += [30.0, 0.0, 0.0]  # one photo's GPS is off by 60 m
>>> fit = fit_similarity(model_centres, gps, GeoreferenceLimits(GpsAccuracy(3.0, 5.0)))
>>> round(float(fit.enu_from_model.scale), 3), fit.outliers
(2.0, [4])
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pycolmap

from spaceport_sfm.geo import GeoOrigin
from spaceport_sfm.gps import GpsAccuracy

MIN_GPS_IMAGES = 3
# The second principal spread of the GPS positions, relative to the first: below this they
# lie on a line and the roll about that line is not determined.
MIN_SPREAD_RATIO = 0.02
CHI2_999_3DOF = 16.27  # beyond sqrt(this) standard deviations a 3-D normal error has a 1 in 1000 chance
FRAME_AXES = "x east, y north, z up, metres"
MAX_PAIRS = 20_000  # camera pairs sampled for the scale check


@dataclass(frozen=True)
class GeoreferenceLimits:
    """When a fit counts as georeferenced."""

    accuracy: GpsAccuracy
    max_horizontal_rms_m: float = 5.0
    max_vertical_rms_m: float = 10.0
    max_scale_error: float = 0.03  # |distance ratio - 1|
    max_outlier_fraction: float = 0.25

    @property
    def inlier_threshold_m(self) -> float:
        """The largest residual of a photo whose GPS agrees (99.9% of 3-D normal errors are smaller)."""
        mean_variance = (2 * self.accuracy.horizontal_m**2 + self.accuracy.vertical_m**2) / 3
        return float(np.sqrt(CHI2_999_3DOF * mean_variance))


@dataclass(frozen=True)
class SimilarityFit:
    enu_from_model: pycolmap.Sim3d
    inliers: list[int]
    outliers: list[int]


def origin_for(lat_lon_alts: Sequence[tuple[float, float, float]]) -> GeoOrigin:
    """The ENU origin of a capture: the mean GPS position of its photos."""
    mean = np.asarray(lat_lon_alts, dtype=np.float64).mean(axis=0)
    return GeoOrigin(lat=float(mean[0]), lon=float(mean[1]), alt=float(mean[2]))


def fit_similarity(model_centres: np.ndarray, gps_enu: np.ndarray, limits: GeoreferenceLimits) -> SimilarityFit:
    """Robust ENU-from-model similarity: RANSAC, then least squares on the photos that agree.

    ``model_centres`` and ``gps_enu`` are [N, 3]. Raises ValueError when no similarity fits.
    """
    source, target = np.asarray(model_centres, np.float64), np.asarray(gps_enu, np.float64)
    ransac = pycolmap.RANSACOptions()
    ransac.max_error = limits.inlier_threshold_m
    ransac.min_inlier_ratio = 1 - limits.max_outlier_fraction if len(source) > 4 else 0.5
    ransac.random_seed = 0
    # pycolmap 4.2.1 returns a dict here (its stub says Sim3d): the transform and the inlier mask.
    robust: Any = pycolmap.estimate_sim3d_robust(source, target, ransac)
    estimate = robust["tgt_from_src"] if robust else pycolmap.estimate_sim3d(source, target)
    if estimate is None:
        raise ValueError("no similarity fits the GPS positions")
    residuals = np.linalg.norm(_apply(estimate, source) - target, axis=1)
    inliers = [int(i) for i in np.flatnonzero(residuals <= limits.inlier_threshold_m)]
    if len(inliers) >= MIN_GPS_IMAGES:
        refined = pycolmap.estimate_sim3d(source[inliers], target[inliers])
        if refined is not None:
            estimate = refined
            residuals = np.linalg.norm(_apply(estimate, source) - target, axis=1)
            inliers = [int(i) for i in np.flatnonzero(residuals <= limits.inlier_threshold_m)]
    outliers = [i for i in range(len(source)) if i not in set(inliers)]
    return SimilarityFit(estimate, inliers, outliers)


def _apply(transform: pycolmap.Sim3d, points: np.ndarray) -> np.ndarray:
    return np.asarray(points) @ (float(transform.scale) * transform.rotation.matrix()).T + transform.translation


def distance_ratio(centres: np.ndarray, gps_enu: np.ndarray, min_separation_m: float) -> float | None:
    """Median of (distance between two cameras) / (distance between their GPS), over pairs far apart.

    Pairs closer than ``min_separation_m`` are left out: their GPS distance is mostly noise.
    """
    n = len(centres)
    pairs = list(itertools.combinations(range(n), 2))
    if len(pairs) > MAX_PAIRS:
        keep = np.random.default_rng(0).choice(len(pairs), MAX_PAIRS, replace=False)
        pairs = [pairs[i] for i in keep]
    if not pairs:
        return None
    a, b = np.array(pairs).T
    gps_distance = np.linalg.norm(gps_enu[a] - gps_enu[b], axis=1)
    far = gps_distance >= min_separation_m
    if far.sum() < 3:
        return None
    model_distance = np.linalg.norm(centres[a] - centres[b], axis=1)
    return float(np.median(model_distance[far] / gps_distance[far]))


def _figures(residual: np.ndarray) -> dict[str, float]:
    """[N, 3] ENU residuals -> horizontal and vertical RMS and the largest, metres."""
    horizontal = np.linalg.norm(residual[:, :2], axis=1)
    return {
        "horizontal_rms_m": round(float(np.sqrt(np.mean(horizontal**2))), 3),
        "vertical_rms_m": round(float(np.sqrt(np.mean(residual[:, 2] ** 2))), 3),
        "max_error_m": round(float(np.linalg.norm(residual, axis=1).max()), 3),
    }


def georeference(
    model: pycolmap.Reconstruction,
    gps_by_name: Mapping[str, tuple[float, float, float]],
    origin: GeoOrigin,
    limits: GeoreferenceLimits,
) -> dict[str, Any]:
    """Align ``model`` in place to ENU around ``origin``; describe what was done and how well it fits."""
    names, centres = [], []
    for image in model.images.values():
        if image.has_pose and image.name in gps_by_name:
            names.append(image.name)
            centres.append(image.projection_center())
    base: dict[str, Any] = {"images_with_gps": len(names), "origin": origin.to_dict(), "frame": "sfm"}
    if len(names) < MIN_GPS_IMAGES:
        reason = f"only {len(names)} placed photos have GPS; {MIN_GPS_IMAGES} are needed"
        return {"used": False, "reason": reason, **base}
    targets = origin.to_enu(np.array([gps_by_name[name] for name in names]))
    spread = np.linalg.svd(targets - targets.mean(axis=0), compute_uv=False)
    if spread[1] < MIN_SPREAD_RATIO * spread[0] or spread[0] < 1e-3:
        return {"used": False, "reason": "the GPS positions lie on one line, so the orientation is ambiguous", **base}
    try:
        fit = fit_similarity(np.asarray(centres), targets, limits)
    except ValueError as error:
        return {"used": False, "reason": str(error), **base}
    model.transform(fit.enu_from_model)
    moved = np.array([model.find_image_with_name(name).projection_center() for name in names])
    residual = moved - targets
    inliers = fit.inliers or list(range(len(names)))
    figures = _figures(residual[inliers])
    ratio = distance_ratio(moved[inliers], targets[inliers], 10 * limits.accuracy.horizontal_m)
    outliers = [
        {
            "name": names[i],
            "horizontal_m": round(float(np.linalg.norm(residual[i, :2])), 2),
            "vertical_m": round(float(residual[i, 2]), 2),
        }
        for i in fit.outliers
    ]
    result: dict[str, Any] = {
        **base,
        "frame": "enu",
        "axes": FRAME_AXES,
        "scale": float(fit.enu_from_model.scale),
        **figures,
        "all_photos": _figures(residual),
        "rmse_m": round(float(np.sqrt(np.mean(np.sum(residual[inliers] ** 2, axis=1)))), 3),
        "inlier_threshold_m": round(limits.inlier_threshold_m, 2),
        "outliers": outliers,
        "scale_check": {
            "distance_ratio": round(ratio, 4) if ratio is not None else None,
            "pairs_at_least_m": round(10 * limits.accuracy.horizontal_m, 1),
        },
        "thresholds": {
            "horizontal_rms_m": limits.max_horizontal_rms_m,
            "vertical_rms_m": limits.max_vertical_rms_m,
            "scale_error": limits.max_scale_error,
            "outlier_fraction": limits.max_outlier_fraction,
        },
    }
    problems = []
    if figures["horizontal_rms_m"] > limits.max_horizontal_rms_m:
        problems.append(
            f"the camera positions sit {figures['horizontal_rms_m']:.1f} m (horizontal RMS) from their GPS, "
            f"more than the {limits.max_horizontal_rms_m:g} m allowed"
        )
    if figures["vertical_rms_m"] > limits.max_vertical_rms_m:
        problems.append(
            f"the camera heights sit {figures['vertical_rms_m']:.1f} m (RMS) from their GPS altitude, "
            f"more than the {limits.max_vertical_rms_m:g} m allowed"
        )
    if len(outliers) > limits.max_outlier_fraction * len(names):
        problems.append(f"the GPS of {len(outliers)} of {len(names)} photos disagrees with the reconstruction")
    if ratio is not None and abs(ratio - 1) > limits.max_scale_error:
        problems.append(
            f"distances in the reconstruction are {abs(ratio - 1) * 100:.1f}% "
            f"{'longer' if ratio > 1 else 'shorter'} than between the GPS positions"
        )
    if problems:
        result.update(
            used=False,
            frame="enu_approximate",
            reason="Not georeferenced: " + "; ".join(problems) + ". Measurements in this scene are not reliable.",
        )
    else:
        result.update(used=True, reason=None)
    return result
