"""Importing the Chalice apps (``gateway/app.py``, ``services/*/app.py``) as Lambda would.

Each ``app.py`` is imported from its file once, under a name of its own (they are all
called ``app``), so the local runtime calls the very functions the apps register.

>>> root = Path(__file__).resolve().parents[1]
>>> module = import_app_module(root / "services" / "sfm" / "app.py", "spaceport_doctest_app_sfm")
>>> [source.queue for source in module.app.event_sources]
['spaceport-local-sfm']
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def import_app_module(app_path: Path, module_name: str) -> ModuleType:
    """The module of the ``app.py`` at ``app_path``, imported once under ``module_name``."""
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, app_path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {app_path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    return module
