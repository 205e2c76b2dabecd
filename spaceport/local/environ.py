"""Variables of this process's environment set for a while, and put back as they were.

>>> import os
>>> overlay = EnvironmentOverlay()
>>> overlay.set({"SPACEPORT_EXAMPLE": "1"})
>>> os.environ["SPACEPORT_EXAMPLE"]
'1'
>>> overlay.restore()
>>> "SPACEPORT_EXAMPLE" in os.environ
False
"""

from __future__ import annotations

import os
from collections.abc import Mapping


class EnvironmentOverlay:
    """Remembers each variable's value before the first :meth:`set` of it, and :meth:`restore` puts it back."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def set(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            self._saved.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def restore(self) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved.clear()
