"""What a program reaches by import, read from source (nothing is imported).

Deploying needs this twice: the shared modules a Chalice app reaches are what gets vendored
into its deployment package, and the third-party packages a job container's entrypoint
reaches are what its Dockerfile must install. Every ``import`` counts, also one inside a
function, so the answer is what the program *may* load; an import guarded by
``try: ... except ImportError`` (or ``Exception``) is optional and reported apart.

>>> reached = import_closure(REPO_ROOT / "services" / "sfm" / "app.py")
>>> "spaceport.config" in reached.first_party, sorted(reached.third_party)
(True, ['aws_lambda_powertools', 'boto3', 'botocore', 'chalice', 'pydantic'])
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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
    first_party: frozenset[str]  # dotted module names of ours
    third_party: frozenset[str]  # top-level names of everything else outside the standard library
    optional: frozenset[str]  # third-party names imported only where an ImportError is caught

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


_GUARDS = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def _guarded(tree: ast.AST) -> set[int]:
    """ids of the import statements inside a ``try`` whose handlers catch a failed import."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught: set[str] = set()
        for handler in node.handlers:
            types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            caught.update(t.id if isinstance(t, ast.Name) else "BaseException" for t in types)
        if caught & _GUARDS:
            guarded.update(
                id(n)
                for statement in node.body
                for n in ast.walk(statement)
                if isinstance(n, (ast.Import, ast.ImportFrom))
            )
    return guarded


def _imports(path: Path, module: str) -> set[tuple[str, bool]]:
    """``(module name, optional)`` for every import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    guarded = _guarded(tree)
    found: set[tuple[str, bool]] = set()
    for node in ast.walk(tree):
        optional = id(node) in guarded
        if isinstance(node, ast.Import):
            found.update((alias.name, optional) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            found.add((source, optional))
            # ``from spaceport.contracts import topology`` imports a module, not only a name.
            found.update((f"{source}.{alias.name}", optional) for alias in node.names)
    return found


def direct_imports(path: Path, module: str) -> set[str]:
    """The first-party modules ``path`` (the module ``module``) imports itself, optional ones too."""
    found = set()
    for name, _ in _imports(path, module):
        parts = name.split(".")
        for depth in range(len(parts), 0, -1):
            candidate = ".".join(parts[:depth])
            if module_file(candidate) is not None:
                found.add(candidate)
                break
    return found


def import_closure(*entry_files: Path) -> Reached:
    """Everything ``entry_files`` reach by import, following first-party modules transitively."""
    first: set[str] = set()
    required: set[str] = set()
    optional: set[str] = set()
    pending = [(path, "__main__") for path in entry_files]
    while pending:
        path, module = pending.pop()
        for name, guarded in _imports(path, module):
            top = name.split(".")[0]
            if top not in FIRST_PARTY:
                if top and top not in sys.stdlib_module_names:
                    (optional if guarded else required).add(top)
                continue
            parts = name.split(".")
            # Importing a module imports its parent packages first.
            for depth in range(1, len(parts) + 1):
                candidate = ".".join(parts[:depth])
                file = module_file(candidate)
                if file is not None and candidate not in first:
                    first.add(candidate)
                    pending.append((file, candidate))
    return Reached(frozenset(first), frozenset(required), frozenset(optional - required))
