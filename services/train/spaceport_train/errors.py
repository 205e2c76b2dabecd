"""The training stage's expected failures (exit codes 30-49, see :mod:`spaceport.errors`).

Example::

    raise NoSparseModelError("out/sfm holds no COLMAP model (sparse/0/cameras.bin): run `spaceport sfm` first.")
"""

from __future__ import annotations

from spaceport.errors import SpaceportError


class TrainError(SpaceportError):
    """Base of the training stage's failures."""

    code = "train_failed"
    exit_code = 30


class TrainConfigError(TrainError):
    """A configuration value (CLI flag or job hyperparameter) that cannot be used."""

    code = "bad_train_config"
    exit_code = 31


class NoSparseModelError(TrainError):
    code = "no_sparse_model"
    exit_code = 32


class TooFewImagesError(TrainError):
    code = "too_few_images"
    exit_code = 33


class NoPointsError(TrainError):
    code = "no_points"
    exit_code = 34


class MissingImageError(TrainError):
    """A registered image whose photo is missing or unreadable in ``SFM_DIR/images``."""

    code = "missing_image"
    exit_code = 35


class BackendUnavailableError(TrainError):
    """The requested rasterisation backend cannot run here (e.g. CUDA without a GPU)."""

    code = "backend_unavailable"
    exit_code = 36


class NaNLossError(TrainError):
    code = "nan_loss"
    exit_code = 37


class OutOfMemoryError(TrainError):
    code = "out_of_memory"
    exit_code = 38


class CheckpointError(TrainError):
    """A checkpoint that cannot be resumed (damaged, or from a different scene)."""

    code = "bad_checkpoint"
    exit_code = 39
