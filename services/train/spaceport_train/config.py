"""The whole training configuration: one dataclass, named presets per device, string overrides.

Every field can be set from a CLI flag (``--max-gaussians 20000``) or a SageMaker
hyperparameter (``{"max_gaussians": "20000"}``: SageMaker passes strings). The effective
configuration is saved next to the outputs (:attr:`TrainOutputs.CONFIG`).

A preset knows its device: on a GPU ``default`` is the full 3DGS schedule as gsplat trains it
(30k steps), on a CPU it is sized for a CPU. ``device=auto`` picks the GPU when there is one.

>>> TrainConfig.from_preset("quick", {"steps": "200", "device": "cpu"}).steps
200
>>> TrainConfig.from_preset("default", {"device": "cuda"}).steps, TrainConfig.from_preset("default", {"device": "cpu"}).steps
(30000, 1200)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spaceport.contracts.training import BACKGROUNDS, EXPOSURES, PRESETS, RASTERIZE_MODES, STRATEGIES
from spaceport.files import write_json_atomic
from spaceport_train.errors import TrainConfigError

DEVICES = ("cpu", "cuda")


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
    max_image_size: int = _doc(
        "cap on the long side of the training images in pixels (0 = none); the preset sets it per device",
        default=0,
    )
    image_cache_mb: float = _doc(
        "memory for decoded training photos (uint8 at training size); beyond it photos are read again", default=1024.0
    )
    background: str = _doc(
        "black | sky: a background learned as a smooth function of the view direction (sky, far away)",
        default="sky",
    )
    background_lr: float = _doc("learning rate of the sky background", default=2e-2)
    exposure: str = _doc(
        "none | affine: a per-photo colour correction (3x3 + offset) for exposure changes; held-out photos get none",
        default="affine",
    )
    exposure_lr: float = _doc("learning rate of the per-photo colour corrections", default=1e-3)
    rasterize_mode: str = _doc(
        "classic | antialiased (gsplat's screen-space filter, for captures seen from several distances)",
        default="antialiased",
    )
    eval_every_nth_image: int = _doc("hold out every Nth image (by name) for evaluation", default=8)
    eval_every: int = _doc("steps between held-out evaluations (the last step always evaluates)", default=500)
    checkpoint_every: int = _doc("steps between checkpoints (SIGTERM also writes one)", default=500)
    progress_every: int = _doc("steps between progress lines", default=50)
    time_budget_s: float = _doc(
        "the job's whole wall time in seconds, loading, evaluation and writing included (0 = none)", default=0.0
    )
    device: str = _doc("auto | cuda | cpu (cpu uses Spaceport's own rasteriser)", default="auto")
    seed: int = _doc("random seed", default=0)

    def __post_init__(self) -> None:
        problems = []
        if self.preset not in PRESETS:
            problems.append(f"preset must be one of {', '.join(PRESETS)}")
        if self.device not in ("auto", "cuda", "cpu"):
            problems.append("device must be auto, cuda or cpu")
        for name, choices in (
            ("strategy", STRATEGIES),
            ("background", BACKGROUNDS),
            ("exposure", EXPOSURES),
            ("rasterize_mode", RASTERIZE_MODES),
        ):
            if getattr(self, name) not in choices:
                problems.append(f"{name} must be one of {', '.join(choices)}")
        if self.max_image_size < 0 or self.image_cache_mb < 0:
            problems.append("max_image_size and image_cache_mb must not be negative")
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
        """A preset for the device it will run on, with ``overrides`` applied (strings allowed: CLI, SageMaker)."""
        if preset not in PRESETS:
            raise TrainConfigError(f"Unknown preset {preset!r}: use one of {', '.join(PRESETS)}.")
        overrides = dict(overrides or {})
        device = preset_device(str(overrides.get("device", "auto")))
        base = dataclasses.replace(cls(), preset=preset, **_PRESET_VALUES[(preset, device)])
        return base.with_overrides(overrides)

    @classmethod
    def from_hyperparameters(cls, hyperparameters: Mapping[str, Any]) -> TrainConfig:
        """SageMaker's hyperparameters: ``preset`` picks the preset, the rest override fields."""
        values = {key.replace("-", "_"): value for key, value in hyperparameters.items()}
        return cls.from_preset(str(values.pop("preset", "default")), values)

    def with_overrides(self, overrides: Mapping[str, Any]) -> TrainConfig:
        types = {f.name: str(f.type) for f in dataclasses.fields(self)}
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


def preset_device(device: str) -> str:
    """The device whose presets apply: ``cuda`` or ``cpu`` (``auto``: CUDA when torch sees a GPU)."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device if device in DEVICES else "cpu"  # a bad value is refused by the config itself


# GPU presets follow gsplat's simple_trainer (the dataclass defaults): default is its 30k-step
# schedule, quick its first 7k steps; training images are capped at 1600 px on the long side.
# CPU presets are for this project's CPU rasteriser: quick is the demo on the generated sample,
# default is sized for real captures (fern, seneca_drone) within a 15-minute budget on a laptop.
_GPU = dict(max_image_size=1600, image_cache_mb=8192.0, progress_every=100)
_CPU_QUICK = dict(
    steps=120,
    max_image_size=256,
    init_scale=0.5,
    sh_degree=1,
    sh_degree_interval=60,
    max_gaussians=20_000,
    refine_start=30,
    refine_stop=90,
    refine_every=20,
    reset_every=100_000,
    eval_every=120,
    checkpoint_every=60,
    progress_every=10,
    means_lr=4e-4,
    time_budget_s=90.0,
)
_PRESET_VALUES: dict[tuple[str, str], dict[str, Any]] = {
    ("quick", "cuda"): dict(
        **_GPU,
        steps=7_000,
        refine_stop=5_000,
        max_gaussians=1_000_000,
        eval_every=3_500,
        checkpoint_every=1_000,
        time_budget_s=1_800.0,
    ),
    ("default", "cuda"): dict(
        **_GPU,
        steps=30_000,
        max_gaussians=3_000_000,
        eval_every=7_000,
        checkpoint_every=2_000,
        time_budget_s=5_400.0,
    ),
    ("quality", "cuda"): dict(
        _GPU,
        max_image_size=3200,
        steps=30_000,
        max_gaussians=6_000_000,
        eval_every=7_000,
        checkpoint_every=2_000,
    ),
    ("quick", "cpu"): _CPU_QUICK,
    ("default", "cpu"): dict(
        steps=1_200,
        max_image_size=800,
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
    ("quality", "cpu"): dict(
        steps=4_000,
        max_image_size=1200,
        coarse_fraction=0.3,
        coarse_resolution_scale=0.5,
        sh_degree_interval=500,
        max_gaussians=150_000,
        refine_start=300,
        refine_stop=3_000,
        refine_every=100,
        reset_every=100_000,
        eval_every=500,
        checkpoint_every=500,
        progress_every=50,
        time_budget_s=3_600.0,
    ),
}
