"""The pipeline's stages, in the order a job passes through them.

The order places a job's transitions (:func:`spaceport.contracts.job.position`); which event
starts which stage is the topology's (:mod:`spaceport.contracts.topology`).

>>> [stage.value for stage in STAGE_ORDER], Stage.TRAIN.order
(['sfm', 'train', 'compress', 'notify'], 1)
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    SFM = "sfm"
    TRAIN = "train"
    COMPRESS = "compress"
    NOTIFY = "notify"

    @property
    def order(self) -> int:
        """Where the stage comes in :data:`STAGE_ORDER` (0 for the first)."""
        return STAGE_ORDER.index(self)


# The stages that run a SageMaker job, in order; notify follows the last one.
JOB_STAGES: tuple[Stage, ...] = (Stage.SFM, Stage.TRAIN, Stage.COMPRESS)
STAGE_ORDER: tuple[Stage, ...] = (*JOB_STAGES, Stage.NOTIFY)
