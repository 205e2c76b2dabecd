"""Dependencies point one way: contracts <- ports <- adapters and handlers <- apps; nothing deployed imports the local runtime.

Read from source (:mod:`spaceport_infra.imports`), so a module that would import something it
must not is caught whatever the tests happen to run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from spaceport_infra.imports import FIRST_PARTY, REPO_ROOT, direct_imports, import_closure, module_file

# Each layer of the shared package, and the layers it may import from.
LAYERS: dict[str, set[str]] = {
    "foundation": set(),  # errors, exit codes, atomic files
    "contracts": {"foundation"},
    "settings": {"foundation", "contracts"},  # config, the container contract, progress, compute
    "ports": {"foundation", "contracts", "settings"},
    "adapters": {"foundation", "contracts", "settings", "ports", "adapters"},
    "handlers": {"foundation", "contracts", "settings", "ports", "handlers"},
    "apps": {"foundation", "contracts", "settings", "ports", "adapters", "handlers", "apps"},
    "tools": {"foundation", "contracts", "settings", "splats"},  # the CLI entry, splat files
    "splats": {"foundation", "contracts", "settings"},
    "local": {"foundation", "contracts", "settings", "ports", "adapters", "handlers", "apps", "local", "tools"},
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "spaceport" or len(parts) == 1:
        return "foundation"
    top = parts[1]
    if top in ("errors", "exit_codes", "files"):
        return "foundation"
    if top == "contracts":
        return "contracts"
    if top in ("config", "container", "progress", "compute", "entrypoint"):
        return "settings"
    if top == "ports":
        return "ports"
    if top == "adapters":
        return "adapters"
    if top in ("handlers", "api"):
        return "handlers"
    if top in ("service_apps", "app_loader", "unit_app"):
        return "apps"
    if top == "splats":
        return "splats"
    if top == "cli":
        return "tools"
    if top == "local":
        return "local"
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")


def _shared_modules() -> list[tuple[str, Path]]:
    root = FIRST_PARTY["spaceport"]
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).with_suffix("")
        parts = list(relative.parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append((".".join(parts), path))
    return found


@pytest.mark.parametrize("module, path", _shared_modules(), ids=[m for m, _ in _shared_modules()])
def test_each_module_imports_only_from_the_layers_below_it(module, path):
    layer = layer_of(module)
    allowed = LAYERS[layer] | {layer}
    for imported in direct_imports(path, module):
        if imported.split(".")[0] != "spaceport" or imported == module:
            continue
        assert layer_of(imported) in allowed, f"{module} ({layer}) imports {imported} ({layer_of(imported)})"


ENTRYPOINTS = [
    REPO_ROOT / "gateway" / "app.py",
    *sorted((REPO_ROOT / "services").glob("*/app.py")),
    *(module_file(f"spaceport_{stage}.cli") for stage in ("sfm", "train", "compress")),
]


@pytest.mark.parametrize("entry", ENTRYPOINTS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_nothing_deployed_reaches_the_local_runtime(entry):
    reached = import_closure(entry).first_party
    local = sorted(module for module in reached if module.startswith("spaceport.local"))
    assert local == [], f"{entry} reaches {local}"
    # The Lambda apps reach no job code either, and the jobs no control-plane handler.
    if entry.name == "app.py":
        assert not {m for m in reached if m.split(".")[0] != "spaceport"}, f"{entry} reaches stage-job code"
    else:
        assert not {m for m in reached if m.startswith(("spaceport.handlers", "spaceport.api", "spaceport.adapters"))}
