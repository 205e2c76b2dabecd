"""Every exit code is registered once, and a code alone says where a job stopped."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from spaceport.errors import SpaceportError
from spaceport.exit_codes import ExitCode, owner

# Package -> the range its errors' codes must fall in.
OWNERS = {
    "spaceport_sfm": "sfm",
    "spaceport_train": "train",
    "spaceport_compress": "compress",
    "spaceport_infra": "infra",
    "spaceport.local": "local",
    "spaceport.splats": "formats",
    "spaceport": "control",
}


def _import_everything() -> None:
    for top in ("spaceport", "spaceport_sfm", "spaceport_train", "spaceport_compress", "spaceport_infra"):
        package = pytest.importorskip(top)
        for module in pkgutil.walk_packages(package.__path__, prefix=f"{top}."):
            importlib.import_module(module.name)


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_each_error_class_has_a_code_of_its_own_in_its_owners_range():
    _import_everything()
    seen: dict[int, str] = {}
    for cls in _subclasses(SpaceportError):
        if "exit_code" not in vars(cls):
            continue  # inherits its base's code: the same failure family
        name = f"{cls.__module__}.{cls.__qualname__}"
        if cls.__module__.startswith(("tests", "control_", "spaceport_local_app")) or cls.__module__ == "__main__":
            continue
        code = cls.exit_code
        assert isinstance(code, ExitCode), f"{name} takes {code!r}, not a name from spaceport.exit_codes"
        assert code not in seen, f"{name} and {seen[code]} both exit with {int(code)}"
        seen[code] = name
        package = next(
            prefix for prefix in OWNERS if cls.__module__ == prefix or cls.__module__.startswith(prefix + ".")
        )
        assert owner(code) == OWNERS[package], f"{name} exits with {int(code)}, outside the {OWNERS[package]} range"
