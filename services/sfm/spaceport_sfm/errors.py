"""The SfM stage's expected failures: one plain sentence each, exit codes 10-29.

Example::

    try:
        run_sfm(Path("photos.zip"), Path("out"))
    except TooFewRegisteredError as error:
        print(error.exit_code, error.message)  # 19, "Only 4 of 60 photos could be placed; ..."
"""

from __future__ import annotations

from spaceport.errors import SpaceportError


class SfmError(SpaceportError):
    """Base of the SfM stage's failures."""

    code = "sfm_failed"
    exit_code = 10


class PhotosNotFoundError(SfmError):
    code = "photos_not_found"
    exit_code = 11


class NotAZipError(SfmError):
    code = "not_a_zip"
    exit_code = 12


class CorruptZipError(SfmError):
    code = "corrupt_zip"
    exit_code = 13


class UnsafeZipError(SfmError):
    """Path traversal, absolute paths or symlinks inside the ZIP."""

    code = "unsafe_zip"
    exit_code = 14


class ZipTooLargeError(SfmError):
    """Too many files, too many bytes, or a compression ratio only a zip bomb has."""

    code = "zip_too_large"
    exit_code = 15


class NoImagesError(SfmError):
    code = "no_images"
    exit_code = 16


class TooFewImagesError(SfmError):
    code = "too_few_images"
    exit_code = 17


class ReconstructionFailedError(SfmError):
    code = "reconstruction_failed"
    exit_code = 18


class TooFewRegisteredError(SfmError):
    code = "too_few_registered"
    exit_code = 19
