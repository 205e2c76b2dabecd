"""The training stage's expected failures (exit codes 30-49, see :mod:`spaceport.errors`).

Example::

    raise NoSparseModelError("out/sfm holds no COLMAP model (sparse/0/cameras.bin): run `spaceport sfm` first.")
"""

from __future__ import annotations

from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode


class TrainError(SpaceportError):
    """Base of the training stage's failures."""

    code = "train_failed"
    exit_code = ExitCode.TRAIN_FAILED


class TrainConfigError(TrainError):
    """A configuration value (CLI flag or job hyperparameter) that cannot be used."""

    code = "bad_train_config"
    exit_code = ExitCode.BAD_TRAIN_CONFIG


class NoSparseModelError(TrainError):
    code = "no_sparse_model"
    exit_code = ExitCode.NO_SPARSE_MODEL


class TooFewImagesError(TrainError):
    code = "too_few_images"
    exit_code = ExitCode.TRAIN_TOO_FEW_IMAGES


class NoPointsError(TrainError):
    code = "no_points"
    exit_code = ExitCode.NO_POINTS


class MissingImageError(TrainError):
    """A registered image whose photo is missing or unreadable in ``SFM_DIR/images``."""

    code = "missing_image"
    exit_code = ExitCode.MISSING_IMAGE


class BackendUnavailableError(TrainError):
    """The requested rasterisation backend cannot run here (e.g. CUDA without a GPU)."""

    code = "backend_unavailable"
    exit_code = ExitCode.BACKEND_UNAVAILABLE


class NaNLossError(TrainError):
    code = "nan_loss"
    exit_code = ExitCode.NAN_LOSS


class OutOfMemoryError(TrainError):
    code = "out_of_memory"
    exit_code = ExitCode.OUT_OF_MEMORY


class CheckpointError(TrainError):
    """A checkpoint that cannot be resumed (damaged, or from a different scene)."""

    code = "bad_checkpoint"
    exit_code = ExitCode.BAD_CHECKPOINT


class TrainingInterrupted(TrainError):
    """SIGTERM arrived: the state is checkpointed and a restart resumes from it."""

    code = "interrupted"
    exit_code = ExitCode.TRAINING_INTERRUPTED


class BlockPlanError(TrainError):
    """A block plan that does not fit the reconstruction (a block unknown to it, or with no photos of it)."""

    code = "bad_block_plan"
    exit_code = ExitCode.BAD_BLOCK_PLAN


class MergeError(TrainError):
    """The blocks of a run cannot be merged (a block's splat missing or unreadable)."""

    code = "merge_failed"
    exit_code = ExitCode.MERGE_FAILED
