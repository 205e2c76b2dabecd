"""The compression stage's expected failures (exit codes 50-69).

``spaceport.splats.SplatFileError`` (exit 50) covers a splat PLY that cannot be read at all:
empty, truncated, not a PLY, or missing the 3DGS properties.

>>> error = EmptySplatError("in.ply holds no splats, so there is nothing to compress.")
>>> error.exit_code.value, error.code
(51, 'empty_splat')
"""

from __future__ import annotations

from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode


class EmptySplatError(SpaceportError):
    """The PLY is well formed but holds zero splats."""

    code = "empty_splat"
    exit_code = ExitCode.EMPTY_SPLAT


class NoFiniteSplatsError(SpaceportError):
    """Every splat has a NaN or infinite attribute, so none is left to compress."""

    code = "no_finite_splats"
    exit_code = ExitCode.NO_FINITE_SPLATS


class SogFileError(SpaceportError):
    """A .sog bundle that cannot be decoded: not a ZIP, no meta.json, wrong version, bad textures."""

    code = "bad_sog_file"
    exit_code = ExitCode.BAD_SOG_FILE


class CompressInputError(SpaceportError):
    """The job's input is not usable: no splat file found, or options out of range."""

    code = "bad_compress_input"
    exit_code = ExitCode.BAD_COMPRESS_INPUT


class ExportError(SpaceportError):
    """An export cannot be written or read back: unknown format, unreadable file, values out of range."""

    code = "export_failed"
    exit_code = ExitCode.EXPORT_FAILED
