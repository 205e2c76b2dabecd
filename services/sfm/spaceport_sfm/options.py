"""What the SfM job can be told: one dataclass, filled in by the CLI and the SageMaker environment.

The matcher and mapper names are the job options' contract (:mod:`spaceport.contracts.events`),
so the gateway refuses an unknown one before any job starts.

>>> SfmOptions(matcher="spatial").mapper
'incremental'
>>> MATCHERS
('auto', 'exhaustive', 'sequential', 'spatial')
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spaceport.contracts.events import MAPPERS, MATCHERS, Mapper, Matcher
from spaceport_sfm.unpack import UnpackLimits

__all__ = ["MAPPERS", "MATCHERS", "SfmOptions"]


@dataclass(frozen=True)
class SfmOptions:
    """Everything the job can be told; the CLI and the SageMaker environment fill it in."""

    matcher: Matcher = "auto"
    mapper: Mapper = "incremental"
    max_image_size: int = 3200  # long side in pixels; larger photos are downscaled for SfM
    exhaustive_max_images: int = 50  # auto: at most this many photos are matched pair by pair
    min_registered_fraction: float = 0.5  # fewer placed photos than this share is a failure
    num_threads: int = -1  # -1: all cores
    seed: int = 0  # RANSAC and mapper seed, for repeatable runs
    limits: UnpackLimits = field(default_factory=UnpackLimits)
