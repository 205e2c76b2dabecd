"""What a program reaches by import, read from source (nothing is imported).

Deploying needs this twice: the shared modules a Chalice app reaches are what gets vendored
into its deployment package, and the third-party packages a job container's entrypoint
reaches are what its Dockerfile must install. Every ``import`` counts, also one inside a
function, so the answer is what the program *may* load.

Example::

    reached = import_closure(Path("services/sfm/app.py"))
    reached.first_party     # {"spaceport", "spaceport.config", ...}
    reached.third_party     # {"boto3", "pydantic", "aws_lambda_powertools", "chalice"}
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

REPO_ROOT = Path(__file__).resolve().parents[2]

# Top-level package -> its folder: the shared package and the stage jobs (pyproject's package-dir).
FIRST_PARTY: Mapping[str, Path] = {
    "spaceport": REPO_ROOT / "spaceport",
    "spaceport_sfm": REPO_ROOT / "services" / "sfm" / "spaceport_sfm",
    "spaceport_train": REPO_ROOT / "services" / "train" / "spaceport_train",
    "spaceport_compress": REPO_ROOT / "services" / "compress" / "spaceport_compress",
}


@dataclass(frozen=True)
class Reached:
    first_party: frozenset[str]   # dotted module names of ours
    third_party: frozenset[str]   # top-level names of everything else outside the standard library

    def files(self) -> dict[str, Path]:
        """Each first-party module's source file."""
        return {module: module_file(module) for module in self.first_party}  # type: ignore[misc]


def module_file(module: str) -> Path | None:
    """The source file of a first-party module, or None when ``module`` names none."""
    top, *rest = module.split(".")
    if top not in FIRST_PARTY:
        return None
    base = FIRST_PARTY[top].joinpath(*rest)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            found.add(source)
            # ``from spaceport.contracts import topology`` imports a module, not only a name.
            found.update(f"{source}.{alias.name}" for alias in node.names)
    return found


def import_closure(*entry_files: Path) -> Reached:
    """Everything ``entry_files`` reach by import, following first-party modules transitively."""
    first: set[str] = set()
    third: set[str] = set()
    pending = [(path, "__main__") for path in entry_files]
    while pending:
        path, module = pending.pop()
        for name in _imports(path, module):
            top = name.split(".")[0]
            if top not in FIRST_PARTY:
                if top and top not in sys.stdlib_module_names:
                    third.add(top)
                continue
            parts = name.split(".")
            # Importing a module imports its parent packages first.
            for depth in range(1, len(parts) + 1):
                candidate = ".".join(parts[:depth])
                file = module_file(candidate)
                if file is not None and candidate not in first:
                    first.add(candidate)
                    pending.append((file, candidate))
    return Reached(frozenset(first), frozenset(third))
