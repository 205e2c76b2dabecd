"""The SfM stage's expected failures: one plain sentence each, exit codes 10-29.

Example::

    try:
        run_sfm(Path("photos.zip"), Path("out"))
    except TooFewRegisteredError as error:
        print(error.exit_code, error.message)  # 19, "Only 4 of 60 photos could be placed; ..."
"""

from __future__ import annotations

from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode


class SfmError(SpaceportError):
    """Base of the SfM stage's failures."""

    code = "sfm_failed"
    exit_code = ExitCode.SFM_FAILED


class PhotosNotFoundError(SfmError):
    code = "photos_not_found"
    exit_code = ExitCode.PHOTOS_NOT_FOUND


class NotAZipError(SfmError):
    code = "not_a_zip"
    exit_code = ExitCode.NOT_A_ZIP


class CorruptZipError(SfmError):
    code = "corrupt_zip"
    exit_code = ExitCode.CORRUPT_ZIP


class UnsafeZipError(SfmError):
    """Path traversal, absolute paths or symlinks inside the ZIP."""

    code = "unsafe_zip"
    exit_code = ExitCode.UNSAFE_ZIP


class ZipTooLargeError(SfmError):
    """Too many files, too many bytes, or a compression ratio only a zip bomb has."""

    code = "zip_too_large"
    exit_code = ExitCode.ZIP_TOO_LARGE


class NoImagesError(SfmError):
    code = "no_images"
    exit_code = ExitCode.NO_IMAGES


class TooFewImagesError(SfmError):
    code = "too_few_images"
    exit_code = ExitCode.SFM_TOO_FEW_IMAGES


class ReconstructionFailedError(SfmError):
    code = "reconstruction_failed"
    exit_code = ExitCode.RECONSTRUCTION_FAILED


class TooFewRegisteredError(SfmError):
    code = "too_few_registered"
    exit_code = ExitCode.TOO_FEW_REGISTERED


class BadFlightLogError(SfmError):
    """A flight-log CSV that cannot be read, or that has no positions to match to the photos."""

    code = "bad_flight_log"
    exit_code = ExitCode.BAD_FLIGHT_LOG
