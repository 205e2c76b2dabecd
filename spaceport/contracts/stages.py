"""The pipeline's stages and their order: the one place that says what comes after what.

Example::

    assert next_stage(Stage.SFM) is Stage.TRAIN
    assert next_stage(Stage.COMPRESS) is None
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    SFM = "sfm"
    TRAIN = "train"
    COMPRESS = "compress"
    NOTIFY = "notify"

    @property
    def index(self) -> int:
        return STAGE_ORDER.index(self)


# The stages that run a SageMaker job, in order; notify follows the last one.
JOB_STAGES: tuple[Stage, ...] = (Stage.SFM, Stage.TRAIN, Stage.COMPRESS)
STAGE_ORDER: tuple[Stage, ...] = (*JOB_STAGES, Stage.NOTIFY)


def next_stage(stage: Stage) -> Stage | None:
    """The job stage that consumes ``stage``'s output; ``None`` after the last job stage."""
    position = JOB_STAGES.index(stage)
    return JOB_STAGES[position + 1] if position + 1 < len(JOB_STAGES) else None
