"""What the SfM job can be told: one dataclass, filled in by the CLI and the SageMaker environment.

The matcher and mapper names are the job options' contract (:mod:`spaceport.contracts.events`),
so the gateway refuses an unknown one before any job starts.

>>> SfmOptions(matcher="spatial").mapper
'incremental'
>>> MATCHERS
('auto', 'exhaustive', 'sequential', 'spatial', 'vocabtree')
>>> SfmOptions().gps_accuracy
GpsAccuracy(horizontal_m=3.0, vertical_m=5.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spaceport.contracts.events import MAPPERS, MATCHERS, Mapper, Matcher
from spaceport_sfm.georeference import GeoreferenceLimits
from spaceport_sfm.gps import GpsAccuracy
from spaceport_sfm.unpack import UnpackLimits

__all__ = ["CAMERA_MODELS", "MAPPERS", "MATCHERS", "SfmOptions"]

# COLMAP camera models the job offers: one radial term, two, or OpenCV's radial + tangential.
CAMERA_MODELS = ("SIMPLE_RADIAL", "RADIAL", "OPENCV")


@dataclass(frozen=True)
class SfmOptions:
    """Everything the job can be told; the CLI and the SageMaker environment fill it in."""

    matcher: Matcher = "auto"
    mapper: Mapper = "incremental"
    max_image_size: int = 3200  # long side in pixels; larger photos are downscaled for SfM
    exhaustive_max_images: int = 50  # auto: at most this many photos are matched pair by pair
    global_mapper_min_images: int = 300  # auto mapper: global mapping from this many photos on
    min_registered_fraction: float = 0.5  # fewer placed photos than this share is a failure
    num_threads: int = -1  # -1: all cores
    seed: int = 0  # RANSAC and mapper seed, for repeatable runs
    camera_model: str = "SIMPLE_RADIAL"
    # Consumer GNSS on drones: a few metres horizontally, worse vertically (standard deviations).
    gps_horizontal_accuracy_m: float = 3.0
    gps_vertical_accuracy_m: float = 5.0
    gps_priors: bool = True  # weigh the cameras against their GPS in bundle adjustment
    georeference_max_rms_m: float = 5.0  # horizontal RMS to GPS above this: not georeferenced
    georeference_max_vertical_rms_m: float = 10.0
    georeference_max_scale_error: float = 0.03
    limits: UnpackLimits = field(default_factory=UnpackLimits)

    @property
    def gps_accuracy(self) -> GpsAccuracy:
        return GpsAccuracy(self.gps_horizontal_accuracy_m, self.gps_vertical_accuracy_m)

    def georeference_limits(self) -> GeoreferenceLimits:
        return GeoreferenceLimits(
            self.gps_accuracy,
            max_horizontal_rms_m=self.georeference_max_rms_m,
            max_vertical_rms_m=self.georeference_max_vertical_rms_m,
            max_scale_error=self.georeference_max_scale_error,
        )
