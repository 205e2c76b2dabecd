"""The job images, checked without a Docker engine.

Each Dockerfile is parsed: what it installs (base image, requirement files, the project) must
cover every third-party package its entrypoint can import, and the project's packaging must
carry every first-party module the entrypoint reaches. Then each entrypoint runs as SageMaker
would start it (no arguments) against a temporary folder laid out like ``/opt/ml``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

from spaceport.cli import COMMANDS
from spaceport_infra.imports import FIRST_PARTY, REPO_ROOT, import_closure, module_file

STAGES = ("sfm", "train", "compress")
# What each outside base image brings (by repository, tag aside).
BASE_PROVIDES = {"python": set(), "pytorch/pytorch": {"torch"}}
# Our own images another Dockerfile may start from: repository -> the stage that builds it.
PROJECT_IMAGES = {f"spaceport-{stage}": stage for stage in STAGES}
# Build arguments without a default that name another of our images (make images passes them).
PROJECT_IMAGE_ARGS = {f"{stage.upper()}_IMAGE": f"spaceport-{stage}" for stage in STAGES}
# Import name -> distribution name, where they differ.
DISTRIBUTION = {"PIL": "pillow", "yaml": "pyyaml", "cv2": "opencv-python"}
SPACEPORT = str(Path(sys.executable).with_name("spaceport"))


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """``(KEYWORD, arguments)`` per instruction: continuations joined, comments dropped."""
    joined, current = [], ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        joined.append(current + stripped)
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in joined]


def _requirement_names(lines: list[str]) -> dict[str, str]:
    """``{normalised name: specifier}`` from requirement lines."""
    found = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)$", line)
        if match:
            found[_normalise(match[1])] = match[2].replace(" ", "")
    return found


class Image:
    """What one Dockerfile builds, as far as Python is concerned."""

    def __init__(self, stage: str) -> None:
        self.dockerfile = REPO_ROOT / "services" / stage / "Dockerfile"
        self.steps = instructions(self.dockerfile)
        args = {}
        for keyword, text in self.steps:
            if keyword == "ARG":
                name, _, value = text.partition("=")
                args[name.strip()] = value.strip() or PROJECT_IMAGE_ARGS[name.strip()]
        [base] = [
            re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], text) for keyword, text in self.steps if keyword == "FROM"
        ]
        self.base = base.split()[0]
        repository = self.base.rsplit(":", 1)[0]
        # Built FROM another of our images: start from what that one has.
        parent = Image(PROJECT_IMAGES[repository]) if repository in PROJECT_IMAGES else None
        self.base_provides = parent.provided if parent else {_normalise(n) for n in BASE_PROVIDES[repository]}
        self.requirements: dict[str, str] = {}
        self.installs_project = bool(parent and parent.installs_project)
        for keyword, text in self.steps:
            if keyword == "RUN":
                self._read_pip(text)
        self.copied = (parent.copied if parent else []) + [
            text.split()[0] for keyword, text in self.steps if keyword == "COPY"
        ]
        [entrypoint] = [json.loads(text) for keyword, text in self.steps if keyword == "ENTRYPOINT"]
        self.entrypoint: list[str] = entrypoint

    def _read_pip(self, command: str) -> None:
        words = shlex.split(command)
        for start in [i for i in range(len(words) - 1) if words[i : i + 2] == ["pip", "install"]]:
            rest = iter(words[start + 2 :])
            for word in rest:
                if word in ("&&", "||", ";", "|"):
                    break
                elif word == "-r":
                    path = REPO_ROOT / next(rest)
                    self.requirements.update(_requirement_names(path.read_text().splitlines()))
                elif word == ".":
                    self.installs_project = True
                elif not word.startswith("-"):
                    self.requirements.update(_requirement_names([word]))

    @property
    def provided(self) -> set[str]:
        return self.base_provides | set(self.requirements)

    def entry_module(self) -> Path:
        assert self.entrypoint[0] == "spaceport", self.entrypoint
        module = COMMANDS[self.entrypoint[1]][0].split(":")[0]
        path = module_file(module)
        if path is None:
            pytest.skip(f"{module} (the `spaceport {self.entrypoint[1]}` job) does not exist yet")
        return path


def in_build_context(relative: str) -> bool:
    """Whether .dockerignore lets ``relative`` into the build context (its last matching line wins)."""
    keep = True
    for line in (REPO_ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!")
        if fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(relative, pattern.removesuffix("/**") + "/*"):
            keep = negated
    return keep


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


@pytest.mark.parametrize("stage", STAGES)
def test_dockerfile_installs_what_its_entrypoint_imports(stage: str):
    image = Image(stage)
    assert image.entrypoint == ["spaceport", stage]
    reached = import_closure(image.entry_module())
    # Optional imports (inside try/except ImportError) may be absent: the job runs without them.
    needed = {_normalise(DISTRIBUTION.get(name, name)) for name in reached.third_party}
    assert needed <= image.provided, f"{image.dockerfile} does not install {sorted(needed - image.provided)}"
    # No CPU build of torch over the CUDA base, and the pins agree with the project's.
    assert "torch" not in image.requirements
    jobs = _requirement_names(_pyproject()["project"]["optional-dependencies"]["jobs"])
    for name, specifier in image.requirements.items():
        if name in jobs:
            assert specifier == jobs[name], (name, specifier, jobs[name])


@pytest.mark.parametrize("stage", STAGES)
def test_the_project_install_carries_every_module_the_entrypoint_reaches(stage: str):
    image = Image(stage)
    assert image.installs_project
    settings = _pyproject()["tool"]["setuptools"]
    packages = set(settings["packages"])
    reached = import_closure(image.entry_module(), module_file("spaceport.cli"))
    for module, path in reached.files().items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        assert package in packages, f"{module} is not in pyproject's packages: `pip install .` would leave it out"
    # `pip install .` needs pyproject.toml and every listed package's folder in the build context,
    # through the Dockerfile's COPY and past .dockerignore.
    folders = [
        (REPO_ROOT / settings["package-dir"][p.split(".")[0]]).joinpath(*p.split(".")[1:])
        if p.split(".")[0] in settings["package-dir"]
        else REPO_ROOT.joinpath(*p.split("."))
        for p in packages
    ]
    for folder in folders:
        for path in [folder / "__init__.py", REPO_ROOT / "pyproject.toml"]:
            relative = path.relative_to(REPO_ROOT).as_posix()
            assert any(c == "." or relative == c or relative.startswith(c.rstrip("/") + "/") for c in image.copied), (
                f"{image.dockerfile} copies no {relative}"
            )
            assert in_build_context(relative), f".dockerignore leaves out {relative}"
    assert set(FIRST_PARTY) <= {p.split(".")[0] for p in packages}


# --- the entrypoints under a SageMaker-shaped folder ---------------------------------------


def _run(root: Path, stage: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPACEPORT_SAGEMAKER_ROOT": str(root), "OMP_NUM_THREADS": "2"}
    return subprocess.run([SPACEPORT, stage], cwd=root, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_sfm_entrypoint_runs_as_a_processing_job(sample_capture, tmp_path):
    root = tmp_path / "ml"
    (root / "processing" / "input").mkdir(parents=True)
    shutil.copy2(sample_capture.zip_path, root / "processing" / "input" / "photos.zip")
    result = _run(root, "sfm")
    assert result.returncode == 0, result.stderr[-3000:]
    output = root / "processing" / "output"
    for name in ("cameras.bin", "images.bin", "points3D.bin"):
        assert (output / "sparse" / "0" / name).stat().st_size > 0
    report = json.loads((output / "report.json").read_text())
    assert report["images_registered"] >= 3
    assert not (root / "output" / "failure").exists()


def test_sfm_entrypoint_leaves_its_failure_reason_where_sagemaker_shows_it(tmp_path):
    root = tmp_path / "ml"
    (root / "processing" / "input").mkdir(parents=True)
    with zipfile.ZipFile(root / "processing" / "input" / "photos.zip", "w") as archive:
        archive.writestr("notes.txt", "no photos here")
    result = _run(root, "sfm", timeout=120)
    assert result.returncode != 0
    reason = (root / "output" / "failure").read_text()
    assert reason and len(reason) <= 1024 and "Traceback" not in reason
    assert reason in result.stderr


def _training_root(tmp_path: Path, sample_sfm: Path, hyperparameters: dict[str, str]) -> Path:
    root = tmp_path / "ml"
    shutil.copytree(sample_sfm, root / "input" / "data" / "sfm")
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    for folder in ("model", "checkpoints", "output/data"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    return root


@pytest.mark.slow
def test_train_entrypoint_runs_as_a_training_job(sample_sfm, tmp_path):
    from spaceport.splats import read_ply

    # SageMaker hands every hyperparameter over as a string.
    # A few steps at a quarter of the resolution: the contract is under test, not the optimiser.
    root = _training_root(
        tmp_path,
        sample_sfm,
        {"preset": "quick", "steps": "4", "device": "cpu", "resolution_scale": "0.25", "eval_every": "1000"},
    )
    result = _run(root, "train")
    assert result.returncode == 0, result.stderr[-3000:]
    # Everything lands in the checkpoint folder, which SageMaker syncs to S3 file by file.
    splats = read_ply(root / "checkpoints" / "splat.ply")
    assert splats.means.shape[0] > 0
    assert json.loads((root / "checkpoints" / "metrics.json").read_text())
    assert not (root / "output" / "failure").exists()


@pytest.mark.slow
def test_train_entrypoint_checkpoints_on_sigterm_as_before_a_spot_stop(sample_sfm, tmp_path):
    root = _training_root(
        tmp_path,
        sample_sfm,
        {
            "preset": "quick",
            "steps": "100000",
            "device": "cpu",
            "resolution_scale": "0.25",
            "progress_every": "1",
            "checkpoint_every": "100000",
            "eval_every": "100000",
        },
    )
    env = {**os.environ, "SPACEPORT_SAGEMAKER_ROOT": str(root), "OMP_NUM_THREADS": "2"}
    process = subprocess.Popen(
        [SPACEPORT, "train"], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    deadline = time.monotonic() + 240
    try:
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line)
            # The first step's progress line: the loop (and its SIGTERM handler) is running.
            if "spaceport-progress" in line and '"step":' in line:
                break
            assert time.monotonic() < deadline, "".join(lines[-20:])
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(lines) + rest
    assert process.returncode == 40, output[-3000:]  # TrainingInterrupted
    assert any(p.is_file() for p in (root / "checkpoints").rglob("*")), "no checkpoint written on SIGTERM"
    assert "SIGTERM" in (root / "output" / "failure").read_text()


def _splat_file(path: Path, n: int = 500) -> Path:
    import numpy as np

    from spaceport.splats import Splats, write_ply

    rng = np.random.default_rng(0)
    splats = Splats(
        means=rng.normal(size=(n, 3)).astype(np.float32),
        quats=rng.normal(size=(n, 4)).astype(np.float32),
        log_scales=rng.normal(-3.0, 0.3, size=(n, 3)).astype(np.float32),
        opacity_logits=rng.normal(size=n).astype(np.float32),
        sh0=rng.normal(size=(n, 3)).astype(np.float32) * 0.5,
        shN=rng.normal(size=(n, 15, 3)).astype(np.float32) * 0.05,
    )
    return write_ply(splats, path)


def _check_compressed(root: Path, result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    output = root / "processing" / "output"
    assert (output / "scene.sog").stat().st_size > 0
    assert json.loads((output / "metrics.json").read_text())
    assert not (root / "output" / "failure").exists()


@pytest.mark.slow
def test_compress_entrypoint_runs_as_a_processing_job(tmp_path):
    """Its input is the splat.ply the train service took out of the training job's model.tar.gz."""
    Image("compress").entry_module()  # skips while the compress job does not exist
    root = tmp_path / "ml"
    (root / "processing" / "input").mkdir(parents=True)
    _splat_file(root / "processing" / "input" / "splat.ply")
    _check_compressed(root, _run(root, "compress"))
