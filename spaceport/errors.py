"""The base of every expected failure in Spaceport.

An expected failure (bad photos, a corrupt file, a reconstruction that could not place
enough images) is raised as a subclass of :class:`SpaceportError`. It carries one plain
sentence a photographer understands, a stable ``code`` for reports and events, and a
distinct process ``exit_code``. Tracebacks are for bugs only.

Exit codes are grouped by stage so that a code alone says where a job stopped:

=========  =====================
range      owner
=========  =====================
2          command-line usage (argparse)
10-29      SfM stage (``spaceport_sfm.errors``)
30-49      training stage (``spaceport_train.errors``)
50-69      compression stage (``spaceport_compress.errors``)
70-89      control plane and local runtime
=========  =====================

Example::

    class NoImagesError(SpaceportError):
        code = "no_images"
        exit_code = 12

    raise NoImagesError("The ZIP holds no photos: use JPEG, PNG or TIFF files.")
"""

from __future__ import annotations

from typing import Any


class SpaceportError(Exception):
    """An expected failure, explained in plain words."""

    code: str = "error"
    exit_code: int = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The failure as written into ``report.json``/``metrics.json`` and job events."""
        return {"code": self.code, "exit_code": self.exit_code, "message": self.message, **self.details}
