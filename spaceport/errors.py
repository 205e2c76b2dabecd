"""The base of every expected failure in Spaceport.

An expected failure (bad photos, a corrupt file, a reconstruction that could not place
enough images) is raised as a subclass of :class:`SpaceportError`. It carries one plain
sentence a photographer understands, a stable ``code`` for reports and events, and a
process ``exit_code`` from :mod:`spaceport.exit_codes`, where every code is registered once
so that a code alone says where a job stopped. Tracebacks are for bugs only.

>>> class NoPhotosError(SpaceportError):
...     code = "no_photos"
...     exit_code = ExitCode.NO_IMAGES
>>> error = NoPhotosError("The ZIP holds no photos: use JPEG, PNG or TIFF files.", files=3)
>>> error.to_dict()["exit_code"], error.to_dict()["files"]
(16, 3)
"""

from __future__ import annotations

from typing import Any

from spaceport.exit_codes import ExitCode


class SpaceportError(Exception):
    """An expected failure, explained in plain words."""

    code: str = "error"
    exit_code: int = ExitCode.BUG

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The failure as written into a stage's report and into job events."""
        return {"code": self.code, "exit_code": int(self.exit_code), "message": self.message, **self.details}
