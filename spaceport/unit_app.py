"""The Chalice app object of a deploy unit, as every ``app.py`` makes it.

Loaded by the Chalice CLI (``chalice deploy`` or ``chalice package`` in the app's folder, as
the design card deploys a service), the app first checks that ``make deploy`` prepared the
folder for that deployment: the stage's environment and IAM policy from the stack, the shared
code vendored as it is in the checkout, and (for a first deploy) the finishing step after
Chalice. If not, it stops with one plain line naming the step to run.

>>> unit_app("notify").app_name
'spaceport-notify'
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from chalice.app import Chalice

from spaceport.contracts.deployment import DEPLOYMENT_ENV
from spaceport.exit_codes import ExitCode

# `make deploy` sets it around its `chalice deploy`, between its prepare and finish steps.
MAKE_DEPLOY_ENV = "SPACEPORT_MAKE_DEPLOY"
SHARED_PACKAGE = "spaceport"


def unit_app(unit: str) -> Chalice:
    """The Chalice app of ``unit`` (refusing an unprepared ``chalice deploy``, see the module)."""
    if Path(sys.argv[0]).name == "chalice":
        refuse_unprepared_cli(unit, sys.argv, Path.cwd())
    return Chalice(app_name=f"spaceport-{unit}")


def unprepared(app_dir: Path, unit: str, deployment: str, command: str) -> str | None:
    """Why ``chalice <command> --stage <deployment>`` in ``app_dir`` would ship something broken (one
    line naming the step to run), or ``None`` when it may go ahead."""
    step = f"`make deploy SERVICE={unit} DEPLOYMENT={deployment}` from the repository root"
    chalice = app_dir / ".chalice"
    section = json.loads((chalice / "config.json").read_text()).get("stages", {}).get(deployment, {})
    environment = section.get("environment_variables", {})
    if not (chalice / f"policy-{deployment}.json").exists() or environment.get(DEPLOYMENT_ENV) != deployment:
        return (
            f"{unit} is not prepared for the {deployment} deployment: run {step} "
            f"(after `make deploy-infra DEPLOYMENT={deployment}`); it fills .chalice/ from the stack."
        )
    stale = stale_vendored_file(app_dir)
    if stale:
        return f"{unit}'s vendor/ is older than the checkout ({stale}): run {step}."
    first = not (chalice / "deployed" / f"{deployment}.json").exists()
    if command == "deploy" and first and os.environ.get(MAKE_DEPLOY_ENV) != "1":
        return f"The first deploy of {unit} to {deployment} needs its finishing step: run {step}."
    return None


def stale_vendored_file(app_dir: Path) -> str | None:
    """A vendored shared file that is missing or differs from the checkout the app folder sits in."""
    vendor = app_dir / "vendor" / SHARED_PACKAGE
    if not vendor.is_dir():
        return "vendor/spaceport is missing"
    checkout = next((p for p in app_dir.resolve().parents if (p / SHARED_PACKAGE / "__init__.py").is_file()), None)
    if checkout is None:
        return None  # a copy outside the checkout: nothing to compare with
    for copy in sorted(vendor.rglob("*.py")):
        source = checkout / SHARED_PACKAGE / copy.relative_to(vendor)
        if not source.is_file() or source.read_bytes() != copy.read_bytes():
            return f"{SHARED_PACKAGE}/{copy.relative_to(vendor).as_posix()}"
    return None


def refuse_unprepared_cli(unit: str, argv: list[str], app_dir: Path) -> None:
    """Under ``chalice deploy|package``: stop with one plain line if the app is not ready."""
    command = argv[1] if len(argv) > 1 else ""
    if command not in ("deploy", "package"):
        return
    stage = argv[argv.index("--stage") + 1] if "--stage" in argv[:-1] else "dev"
    reason = unprepared(app_dir, unit, stage, command)
    if reason:
        print(f"spaceport: {reason}", file=sys.stderr)
        raise SystemExit(ExitCode.DEPLOY_STEP_FAILED.value)
