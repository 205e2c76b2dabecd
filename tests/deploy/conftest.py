"""Fixtures for the deployment tests: the synthesised stack, once per session (it takes ~20 s)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

DEPLOYMENT = "test"

# jsii prints a banner on node 20; the stack is the same.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@dataclass(frozen=True)
class Synthesised:
    stack: Any  # spaceport_infra.stack.SpaceportStack
    template: Any  # aws_cdk.assertions.Template
    resources: dict[str, dict[str, Any]]
    template_file: Path

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.resources.items() if r["Type"] == resource_type}


@pytest.fixture(scope="session")
def synthesised(tmp_path_factory: pytest.TempPathFactory) -> Synthesised:
    cdk = pytest.importorskip("aws_cdk", reason="aws-cdk-lib is not installed (pip install -e '.[infra]')")
    from aws_cdk.assertions import Template

    from spaceport_infra.settings import InfraSettings
    from spaceport_infra.stack import SpaceportStack

    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(outdir=str(outdir))
    stack = SpaceportStack(
        app,
        "spaceport-test",
        settings=InfraSettings(
            deployment=DEPLOYMENT,
            image_tag="0a1b2c3d4e5f",
            sender_email="ops@example.org",
            operator_email="oncall@example.org",
        ),
    )
    assembly = app.synth()
    template_file = Path(assembly.get_stack_by_name("spaceport-test").template_full_path)
    resources = json.loads(template_file.read_text())["Resources"]
    return Synthesised(stack, Template.from_stack(stack), resources, template_file)


@pytest.fixture(scope="session")
def deployment() -> str:
    """The deployment the synthesised stack belongs to."""
    return DEPLOYMENT
