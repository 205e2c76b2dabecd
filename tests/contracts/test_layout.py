"""The artifact layout is the one home of every output's file name."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from spaceport.contracts import layout

REPO = Path(__file__).resolve().parents[2]
NAMES = sorted(
    {
        value
        for holder in (layout.SfmOutputs, layout.TrainOutputs, layout.CompressOutputs, layout.TrainingArchives, layout)
        for name, value in vars(holder).items()
        if name.isupper() and isinstance(value, str) and "." in value
    }
)


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the git checkout to list the tracked files")
@pytest.mark.parametrize("name", NAMES)
def test_an_output_file_name_is_spelled_in_the_layout_module_alone(name):
    found = subprocess.run(
        ["git", "grep", "-l", "-F", name, "--", "*.py", ":!tests", ":!bench"],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert found == ["spaceport/contracts/layout.py"], f"{name} is spelled in {found}"
