"""The whole training configuration: one dataclass, named presets, string overrides.

Every field can be set from a CLI flag (``--max-gaussians 20000``) or a SageMaker
hyperparameter (``{"max_gaussians": "20000"}``: SageMaker passes strings). The effective
configuration is saved next to the outputs (:attr:`TrainOutputs.CONFIG`).

Example::

    config = TrainConfig.from_preset("quick", {"steps": "200", "device": "cpu"})
    config.steps  # 200
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spaceport.files import write_json_atomic
from spaceport_train.errors import TrainConfigError

PRESETS = ("quick", "default", "quality")


def _doc(text: str, **kwargs: Any) -> Any:
    return field(metadata={"help": text}, **kwargs)


@dataclass(frozen=True)
class TrainConfig:
    preset: str = _doc("named starting point: quick | default | quality", default="default")
    steps: int = _doc("optimisation steps (one training image each)", default=2_000)
    resolution_scale: float = _doc(
        "scale applied to the SfM images for training and evaluation (1 = as is)", default=1.0
    )
    coarse_resolution_scale: float = _doc("extra scale for the first coarse_fraction of the steps", default=0.5)
    coarse_fraction: float = _doc("fraction of the steps trained at coarse_resolution_scale (0 = none)", default=0.0)
    sh_degree: int = _doc("final spherical-harmonics degree (0-3)", default=3)
    sh_degree_interval: int = _doc("steps between SH degree increases", default=1_000)
    ssim_lambda: float = _doc("weight of D-SSIM in the loss (the rest is L1)", default=0.2)
    means_lr: float = _doc(
        "learning rate of the centres, times the scene scale; decays 100x over the run", default=1.6e-4
    )
    scales_lr: float = _doc("learning rate of the log scales", default=5e-3)
    quats_lr: float = _doc("learning rate of the rotations", default=1e-3)
    opacities_lr: float = _doc("learning rate of the opacity logits", default=5e-2)
    sh0_lr: float = _doc("learning rate of the base colour", default=2.5e-3)
    shN_lr: float = _doc("learning rate of the higher SH bands", default=2.5e-3 / 20)
    init_opacity: float = _doc("opacity of the Gaussians made from SfM points", default=0.1)
    init_scale: float = _doc("initial size as a multiple of the distance to the 3 nearest SfM points", default=1.0)
    strategy: str = _doc(
        "densification strategy: default (gsplat DefaultStrategy) | mcmc (CUDA only)", default="default"
    )
    max_gaussians: int = _doc("cap on the number of Gaussians", default=1_000_000)
    refine_start: int = _doc("first step that densifies or prunes", default=500)
    refine_stop: int = _doc("last step that densifies or prunes", default=15_000)
    refine_every: int = _doc("steps between densification rounds", default=100)
    reset_every: int = _doc("steps between opacity resets", default=3_000)
    grow_grad2d: float = _doc("screen-space gradient above which a Gaussian is split or cloned", default=2e-4)
    prune_opacity: float = _doc("opacity below which a Gaussian is pruned", default=0.005)
    eval_every_nth_image: int = _doc("hold out every Nth image (by name) for evaluation", default=8)
    eval_every: int = _doc("steps between held-out evaluations (the last step always evaluates)", default=500)
    checkpoint_every: int = _doc("steps between checkpoints (SIGTERM also writes one)", default=500)
    progress_every: int = _doc("steps between progress lines", default=50)
    time_budget_s: float = _doc(
        "stop training after this many seconds of steps and write the outputs (0 = none)", default=0.0
    )
    device: str = _doc("auto | cuda | cpu (cpu uses Spaceport's own rasteriser)", default="auto")
    threads: int = _doc("torch CPU threads (0 = torch's default)", default=0)
    seed: int = _doc("random seed", default=0)

    def __post_init__(self) -> None:
        problems = []
        if self.preset not in PRESETS:
            problems.append(f"preset must be one of {', '.join(PRESETS)}")
        if self.device not in ("auto", "cuda", "cpu"):
            problems.append("device must be auto, cuda or cpu")
        if self.strategy not in ("default", "mcmc"):
            problems.append("strategy must be default or mcmc")
        if not 0 <= self.sh_degree <= 3:
            problems.append("sh_degree must be 0 to 3")
        if self.steps < 1 or self.max_gaussians < 1 or self.eval_every_nth_image < 2:
            problems.append("steps and max_gaussians must be positive and eval_every_nth_image at least 2")
        if not 0 < self.resolution_scale <= 1 or not 0 < self.coarse_resolution_scale <= 1:
            problems.append("resolution scales must be in (0, 1]")
        if self.time_budget_s < 0:
            problems.append("time_budget_s must not be negative")
        if not 0 <= self.coarse_fraction < 1:
            problems.append("coarse_fraction must be in [0, 1)")
        for name in (
            "sh_degree_interval",
            "refine_every",
            "reset_every",
            "eval_every",
            "checkpoint_every",
            "progress_every",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        if problems:
            raise TrainConfigError("Invalid training configuration: " + "; ".join(problems) + ".")

    @classmethod
    def from_preset(cls, preset: str = "default", overrides: Mapping[str, Any] | None = None) -> TrainConfig:
        """A preset with ``overrides`` applied; values may be strings (CLI, SageMaker)."""
        if preset not in PRESETS:
            raise TrainConfigError(f"Unknown preset {preset!r}: use one of {', '.join(PRESETS)}.")
        base = dataclasses.replace(cls(), preset=preset, **_PRESET_VALUES[preset])
        return base.with_overrides(overrides or {})

    @classmethod
    def from_hyperparameters(cls, hyperparameters: Mapping[str, Any]) -> TrainConfig:
        """SageMaker's hyperparameters: ``preset`` picks the preset, the rest override fields."""
        values = {key.replace("-", "_"): value for key, value in hyperparameters.items()}
        return cls.from_preset(str(values.pop("preset", "default")), values)

    def with_overrides(self, overrides: Mapping[str, Any]) -> TrainConfig:
        types = {f.name: f.type for f in dataclasses.fields(self)}
        parsed = {}
        for key, value in overrides.items():
            if key not in types:
                raise TrainConfigError(f"Unknown training setting {key!r}.")
            parsed[key] = _parse(key, types[key], value)
        return dataclasses.replace(self, **parsed)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        write_json_atomic(path, self.to_dict())


def _parse(name: str, type_name: str, value: Any) -> Any:
    try:
        if type_name == "int":
            return int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)
        if type_name == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise TrainConfigError(
            f"Training setting {name} must be a{'n' if type_name == 'int' else ''} {type_name}, not {value!r}."
        ) from None


# The quick preset trains the generated sample in seconds; default is sized for fern 1/8 on a
# 2-core CPU in about 15 minutes; quality is the usual 30k-step 3DGS schedule for a GPU.
# quick uses one thread: on a busy machine torch's OpenMP threads wait on each other at every
# small operation and a 2-thread step ran 10x slower than a 1-thread one (measured).
_PRESET_VALUES: dict[str, dict[str, Any]] = {
    "quick": dict(
        steps=150,
        resolution_scale=0.3,
        init_scale=0.5,
        sh_degree=1,
        sh_degree_interval=75,
        max_gaussians=10_000,
        refine_start=50,
        refine_stop=120,
        refine_every=25,
        reset_every=10_000,
        eval_every=75,
        checkpoint_every=75,
        progress_every=25,
        means_lr=4e-4,
        threads=1,
    ),
    "default": dict(
        steps=1_200,
        coarse_fraction=0.5,
        coarse_resolution_scale=0.5,
        sh_degree=3,
        sh_degree_interval=250,
        max_gaussians=30_000,
        refine_start=150,
        refine_stop=900,
        refine_every=100,
        reset_every=100_000,
        eval_every=200,
        checkpoint_every=200,
        progress_every=25,
        time_budget_s=900.0,
    ),
    "quality": dict(
        steps=30_000,
        sh_degree_interval=1_000,
        max_gaussians=3_000_000,
        eval_every=7_000,
        checkpoint_every=2_000,
        progress_every=100,
    ),
}
