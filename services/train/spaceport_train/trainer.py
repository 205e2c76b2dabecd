"""3D Gaussian splatting training: SfM points in, a splat out, on either rasterisation backend.

The loop is standard 3DGS (L1 + D-SSIM, SH degree raised step by step, gsplat's
densification strategies within a Gaussian cap) and does not know which backend renders.
Around the Gaussians, on both backends alike:

- a sky (``background=sky``): what no Gaussian covers shows a background learned as a smooth
  function of the view direction (spherical harmonics of degree 2), so sky and far background
  converge instead of staying black; it is not part of the exported splat;
- exposure (``exposure=affine``): each training photo gets its own colour correction (a 3x3
  matrix and an offset, starting at identity), so shot-to-shot exposure changes do not end up in
  the Gaussians; held-out photos are evaluated with none;
- ``rasterize_mode=antialiased``: gsplat's screen-space filter (Mip-Splatting's 2D filter).

It checkpoints every ``checkpoint_every`` steps and when SIGTERM arrives (SageMaker's notice
before a Spot interruption), and resumes from the checkpoint folder on restart. A time budget
bounds the whole job: training stops early enough for the final evaluation and the outputs to
fit in it. ``train(Path("out/sfm"), Path("out/train"), TrainConfig.from_preset("quick"))``
returns the metrics it writes.
"""

from __future__ import annotations

import logging
import math
import resource
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
from gsplat.strategy import DefaultStrategy, MCMCStrategy
from torch import Tensor

from spaceport.compute import torch_device
from spaceport.contracts.blocks import BlockPlan
from spaceport.contracts.layout import TrainOutputs
from spaceport.files import atomic_path, write_json_atomic
from spaceport.progress import ProgressCallback, ProgressReporter
from spaceport.splats import SH_C0, Splats, write_ply
from spaceport_train.blocks import block_scene
from spaceport_train.config import TrainConfig
from spaceport_train.data import Scene, View, load_scene
from spaceport_train.errors import (
    CheckpointError,
    NaNLossError,
    OutOfMemoryError,
    TrainConfigError,
    TrainError,
    TrainingInterrupted,
)
from spaceport_train.metrics import LpipsMeter, psnr, ssim
from spaceport_train.rasterize import rasterize, resolve_backend

logger = logging.getLogger("spaceport.train")

PARAM_NAMES = ("means", "scales", "quats", "opacities", "sh0", "shN")
SKY_SH_DEGREE = 2
# What the outputs cost beyond the final evaluation (PLY, PNGs), as a share of the budget, and at least.
WRITE_RESERVE_SHARE = 0.02
WRITE_RESERVE_MIN_S = 5.0


def view_directions(view: View) -> Tensor:
    """[H, W, 3] unit world directions of the rays through a view's pixel centres."""
    ys, xs = torch.meshgrid(
        torch.arange(view.height, dtype=torch.float32) + 0.5,
        torch.arange(view.width, dtype=torch.float32) + 0.5,
        indexing="ij",
    )
    pixels = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1)
    rays = pixels @ torch.linalg.inv(view.K).T @ view.viewmat[:3, :3]  # R^T d for each ray
    directions: Tensor = rays / rays.norm(dim=-1, keepdim=True)
    return directions


def sky_colours(directions: Tensor, coeffs: Tensor) -> Tensor:
    """[..., 3] background colours for unit ``directions`` [..., 3] from SH ``coeffs`` [(d + 1)^2, 3]."""
    from gsplat.cuda._torch_impl import _spherical_harmonics

    degree = math.isqrt(coeffs.shape[0]) - 1
    expanded = coeffs.expand(*directions.shape[:-1], *coeffs.shape)
    return torch.clamp_min(_spherical_harmonics(degree, directions, expanded) + 0.5, 0.0)


@dataclass
class CappedDefaultStrategy(DefaultStrategy):  # type: ignore[misc]  # gsplat ships no type information
    """gsplat's DefaultStrategy that grows only the highest-gradient Gaussians that fit under ``cap_max``."""

    cap_max: int = 1_000_000
    grow_grad2d: float = 0.0002  # DefaultStrategy's field and default, typed here (gsplat ships no types)

    def _grow_gs(
        self,
        params: torch.nn.ParameterDict,
        optimizers: dict[str, torch.optim.Optimizer],
        state: dict[str, Any],
        step: int,
    ) -> tuple[int, int]:
        room = self.cap_max - len(params["means"])
        if room <= 0:
            return 0, 0
        grads = state["grad2d"] / state["count"].clamp_min(1)
        original: float = self.grow_grad2d
        if int((grads > original).sum()) > room:  # a clone or a split each adds one Gaussian
            self.grow_grad2d = max(original, float(torch.topk(grads, room + 1).values[-1]))
        try:
            grown: tuple[int, int] = super()._grow_gs(params, optimizers, state, step)
            return grown
        finally:
            self.grow_grad2d = original


def refine_window_closed(config: TrainConfig, wall_time_s: float) -> bool:
    """Whether a time-budgeted run should stop densifying once the job has run ``wall_time_s`` seconds.

    Gaussians fresh from a densification round need about a hundred steps to settle, and a run
    that its budget cuts right after one ends worse than before it (fern 1/8: 24.7 -> 19.9 dB).
    So the step schedule's refine window is laid onto the budget: densifying ends once
    ``refine_stop / steps`` of the budget is spent, whichever of the two comes first.

    >>> config = TrainConfig.from_preset("default", {"device": "cpu"})  # refine_stop 900 of 1,200 steps, 900 s
    >>> refine_window_closed(config, 600.0), refine_window_closed(config, 700.0)
    (False, True)
    """
    share = min(config.refine_stop / config.steps, 1.0)
    return bool(config.time_budget_s) and wall_time_s >= config.time_budget_s * share


def _knn_distance(points: Tensor, k: int = 3, chunk: int = 1024) -> Tensor:
    """Mean distance from each point to its ``k`` nearest neighbours, [P]."""
    out = []
    for start in range(0, len(points), chunk):
        d = torch.cdist(points[start : start + chunk], points)
        out.append(d.topk(min(k + 1, len(points)), largest=False).values[:, 1:].mean(1))
    return torch.cat(out).nan_to_num(0.01)


class Trainer:
    def __init__(
        self, scene: Scene, config: TrainConfig, out_dir: Path, checkpoint_dir: Path, progress: ProgressReporter
    ) -> None:
        self.scene, self.config, self.out_dir, self.checkpoint_dir = scene, config, out_dir, checkpoint_dir
        self.progress = progress
        self.device = torch.device(torch_device(config.device))
        self.backend = resolve_backend("cuda" if self.device.type == "cuda" else "cpu", self.device)
        if config.strategy == "mcmc" and self.backend != "cuda":
            raise TrainConfigError("The mcmc strategy needs gsplat's CUDA kernels: use --strategy default on CPU.")
        self.generator = torch.Generator().manual_seed(config.seed)
        self.step = 0
        self.deadline: float | None = None  # time.monotonic() by which the whole job must be done
        self.elapsed_before_s = 0.0  # job time spent in earlier runs (before a resume)
        self._last_eval_s_per_view: tuple[float, int] | None = None  # seconds per held-out view, Gaussians then
        self.wall_time_s = 0.0
        self.cpu_time_s = 0.0  # process CPU seconds spent in steps: comparable on a shared machine
        self.history: list[dict[str, Any]] = []
        self.initial_psnr: float | None = None
        self._stop_requested = False
        self._coarse_views = {
            i: v.scaled(config.coarse_resolution_scale) for i, v in enumerate(scene.views) if config.coarse_fraction > 0
        }
        self._train_slot = {view_id: slot for slot, view_id in enumerate(scene.train_ids)}
        self._init_params()

    # -- state ---------------------------------------------------------------------------------
    def _init_params(self) -> None:
        config, scene = self.config, self.scene
        points, colors = scene.points, scene.point_colors
        if len(points) > config.max_gaussians:
            keep = torch.randperm(len(points), generator=self.generator)[: config.max_gaussians]
            points, colors = points[keep], colors[keep]
        n = len(points)
        k = (config.sh_degree + 1) ** 2 - 1
        scales = torch.log(_knn_distance(points).clamp_min(1e-7) * config.init_scale)[:, None].repeat(1, 3)
        values = {
            "means": points.clone(),
            "scales": scales,
            "quats": torch.rand(n, 4, generator=self.generator),
            "opacities": torch.logit(torch.full((n,), config.init_opacity)),
            "sh0": ((colors - 0.5) / SH_C0)[:, None, :],
            "shN": torch.zeros(n, k, 3),
        }
        self._set_params(values)
        self._init_extras()
        self._init_strategy()

    def _set_params(self, values: dict[str, Tensor], optimizer_states: dict[str, Any] | None = None) -> None:
        c = self.config
        self.params = torch.nn.ParameterDict(
            {name: torch.nn.Parameter(values[name].to(self.device)) for name in PARAM_NAMES}
        )
        lrs = {
            "means": c.means_lr * self.scene.scene_scale,
            "scales": c.scales_lr,
            "quats": c.quats_lr,
            "opacities": c.opacities_lr,
            "sh0": c.sh0_lr,
            "shN": c.shN_lr,
        }
        self.optimizers = {
            name: torch.optim.Adam([{"params": self.params[name], "lr": lrs[name], "name": name}], eps=1e-15)
            for name in PARAM_NAMES
        }
        if optimizer_states:
            for name, state in optimizer_states.items():
                if name in self.optimizers:
                    self.optimizers[name].load_state_dict(state)
        self.means_lr_decay = 0.01 ** (1.0 / c.steps)

    def _init_extras(
        self, saved: dict[str, Tensor] | None = None, optimizer_state: dict[str, Any] | None = None
    ) -> None:
        """The sky and the per-photo colour corrections: trained with the Gaussians, not densified."""
        c, n = self.config, len(self.scene.train_ids)
        values: dict[str, Tensor] = {}
        if c.background == "sky":
            values["sky"] = torch.zeros((SKY_SH_DEGREE + 1) ** 2, 3)  # a uniform mid grey to start from
        if c.exposure == "affine":
            values["exposure_matrix"] = torch.eye(3).repeat(n, 1, 1)
            values["exposure_offset"] = torch.zeros(n, 3)
        if saved:
            values.update({name: saved[name] for name in values if name in saved})
        self.extras = torch.nn.ParameterDict(
            {name: torch.nn.Parameter(value.to(self.device)) for name, value in values.items()}
        )
        groups = [
            {"params": [param], "lr": c.background_lr if name == "sky" else c.exposure_lr, "name": name}
            for name, param in self.extras.items()
        ]
        self.extras_optimizer = torch.optim.Adam(groups, eps=1e-15) if groups else None
        if self.extras_optimizer is not None and optimizer_state:
            self.extras_optimizer.load_state_dict(optimizer_state)

    def _init_strategy(self) -> None:
        c = self.config
        if c.strategy == "mcmc":
            self.strategy = MCMCStrategy(
                cap_max=c.max_gaussians,
                refine_start_iter=c.refine_start,
                refine_stop_iter=c.refine_stop,
                refine_every=c.refine_every,
            )
        else:
            self.strategy = CappedDefaultStrategy(
                cap_max=c.max_gaussians,
                refine_start_iter=c.refine_start,
                refine_stop_iter=c.refine_stop,
                refine_every=c.refine_every,
                reset_every=c.reset_every,
                grow_grad2d=c.grow_grad2d,
                prune_opa=c.prune_opacity,
            )
        self.strategy.check_sanity(self.params, self.optimizers)
        self.strategy_state = self.strategy.initialize_state(
            **({} if c.strategy == "mcmc" else {"scene_scale": self.scene.scene_scale})
        )

    def save_checkpoint(self) -> Path:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        path = self.checkpoint_dir / TrainOutputs.CHECKPOINT
        with atomic_path(path) as partial:
            torch.save(
                {
                    "step": self.step,
                    "elapsed_s": self.elapsed_s(),
                    "extras": {name: p.detach().cpu() for name, p in self.extras.items()},
                    "extras_optimizer": self.extras_optimizer.state_dict() if self.extras_optimizer else None,
                    "wall_time_s": self.wall_time_s,
                    "cpu_time_s": self.cpu_time_s,
                    "fingerprint": self.scene.fingerprint(),
                    "config": self.config.to_dict(),
                    "params": {name: p.detach().cpu() for name, p in self.params.items()},
                    "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
                    "strategy_state": {
                        k: (v.cpu() if isinstance(v, Tensor) else v) for k, v in self.strategy_state.items()
                    },
                    "generator": self.generator.get_state(),
                    "history": self.history,
                    "initial_psnr": self.initial_psnr,
                },
                partial,
            )
        return path

    def try_resume(self) -> bool:
        path = self.checkpoint_dir / TrainOutputs.CHECKPOINT
        if not path.is_file():
            return False
        try:
            saved = torch.load(path, map_location="cpu", weights_only=False)
            if saved["fingerprint"] != self.scene.fingerprint():
                raise CheckpointError(
                    f"The checkpoint in {self.checkpoint_dir} belongs to a different image set: "
                    "use a new output or checkpoint folder."
                )
            self._set_params(saved["params"], saved["optimizers"])
            self._init_extras(saved.get("extras"), saved.get("extras_optimizer"))
            self._init_strategy()
            self.strategy_state.update(
                {k: (v.to(self.device) if isinstance(v, Tensor) else v) for k, v in saved["strategy_state"].items()}
            )
            self.generator.set_state(saved["generator"])
            self.step, self.wall_time_s = int(saved["step"]), float(saved["wall_time_s"])
            self.elapsed_before_s = float(saved.get("elapsed_s", self.wall_time_s))
            self.cpu_time_s = float(saved.get("cpu_time_s", 0.0))
            self.history, self.initial_psnr = list(saved["history"]), saved["initial_psnr"]
        except CheckpointError:
            raise
        except Exception as error:  # a truncated or foreign file
            raise CheckpointError(
                f"The checkpoint {path} cannot be resumed ({type(error).__name__}: {error}); delete it to start over."
            ) from None
        for group in self.optimizers["means"].param_groups:
            group["lr"] = self.config.means_lr * self.scene.scene_scale * self.means_lr_decay**self.step
        return True

    # -- rendering -----------------------------------------------------------------------------
    def elapsed_s(self) -> float:
        """The job's wall time so far, earlier runs included (what the time budget counts)."""
        if self.deadline is None:
            return self.elapsed_before_s
        return self.config.time_budget_s - (self.deadline - time.monotonic())

    def render(self, view: View, sh_degree: int) -> tuple[Tensor, dict[str, Any]]:
        """The view as the model shows it, [H, W, 3]: the Gaussians over the sky, before any colour correction."""
        p = self.params
        coeffs = torch.cat([p["sh0"], p["shN"]], dim=1)[:, : (sh_degree + 1) ** 2]
        image, alpha, meta = rasterize(
            p["means"],
            p["quats"],
            torch.exp(p["scales"]),
            torch.sigmoid(p["opacities"]),
            coeffs,
            view.viewmat[None].to(self.device),
            view.K[None].to(self.device),
            view.width,
            view.height,
            sh_degree=sh_degree,
            backend=self.backend,
            rasterize_mode=self.config.rasterize_mode,
        )
        image = image[0]
        if "sky" in self.extras:
            sky = sky_colours(view_directions(view).to(self.device), self.extras["sky"])
            image = image + (1.0 - alpha[0]) * sky
        return image, meta

    def corrected(self, image: Tensor, view_id: int) -> Tensor:
        """A training photo's colour correction applied to a render; held-out photos have none."""
        slot = self._train_slot.get(view_id)
        if slot is None or "exposure_matrix" not in self.extras:
            return image
        out: Tensor = image @ self.extras["exposure_matrix"][slot].T + self.extras["exposure_offset"][slot]
        return out

    @torch.no_grad()
    def evaluate(self, lpips: LpipsMeter | None = None, renders_dir: Path | None = None) -> dict[str, Any]:
        psnrs, ssims, lpipses = [], [], []
        started = time.monotonic()
        for i in self.scene.eval_ids:
            view = self.scene.views[i]
            image, _ = self.render(view, self.current_sh_degree())
            image, target = image.cpu().clamp(0, 1), self.scene.image(view)
            psnrs.append(psnr(image, target))
            ssims.append(float(ssim(image, target)))
            if lpips is not None:
                lpipses.append(lpips(image, target))
            if renders_dir is not None:
                _save_side_by_side(renders_dir / f"{Path(view.name).stem}.png", image, target)
        seconds_per_view = (time.monotonic() - started) / max(len(self.scene.eval_ids), 1)
        self._last_eval_s_per_view = (seconds_per_view, len(self.params["means"]))
        scores = [score for score in lpipses if score is not None]
        return {
            "psnr": float(np.mean(psnrs)),
            "ssim": float(np.mean(ssims)),
            "lpips": float(np.mean(scores)) if scores and len(scores) == len(lpipses) else None,
        }

    def final_reserve_s(self) -> float:
        """Seconds to keep for the final evaluation and the outputs, from the last evaluation's pace.

        Rendering time grows with the Gaussians, so the last pace is scaled by how many more there
        are now; writing gets a share of the budget.
        """
        budget = self.config.time_budget_s
        reserve = max(WRITE_RESERVE_MIN_S, WRITE_RESERVE_SHARE * budget)
        if self._last_eval_s_per_view is not None:
            per_view, gaussians_then = self._last_eval_s_per_view
            growth = max(1.0, len(self.params["means"]) / max(gaussians_then, 1))
            # The final evaluation also saves a PNG per view and may run LPIPS: half as much again.
            reserve += 1.5 * per_view * growth * len(self.scene.eval_ids)
        return reserve

    def current_sh_degree(self) -> int:
        return min(self.step // self.config.sh_degree_interval, self.config.sh_degree)

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        if self.initial_psnr is None:
            self.initial_psnr = self.evaluate()["psnr"]
            self.history.append({"step": 0, "psnr": self.initial_psnr, "wall_time_s": 0.0})
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            self._loop()
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        self._stop_requested = True

    def _loop(self) -> None:
        c = self.config
        order: list[int] = []
        rate_clock, rate_steps = time.monotonic(), 0
        last_loss = float("nan")
        while self.step < c.steps:
            if self.deadline is not None and time.monotonic() + self.final_reserve_s() >= self.deadline:
                logger.info(
                    "time budget of %.0f s: training stops at step %d of %d, keeping %.0f s for the evaluation "
                    "and the outputs",
                    c.time_budget_s,
                    self.step,
                    c.steps,
                    self.final_reserve_s(),
                )
                self.save_checkpoint()
                return
            if self.step < self.strategy.refine_stop_iter and refine_window_closed(c, self.elapsed_s()):
                logger.info(
                    "%.0f s of the %.0f s budget spent: no densification after step %d",
                    self.elapsed_s(),
                    c.time_budget_s,
                    self.step,
                )
                self.strategy.refine_stop_iter = self.step
            if self._stop_requested:
                self.save_checkpoint()
                raise TrainingInterrupted(
                    f"Training stopped by SIGTERM at step {self.step} of {c.steps}; the "
                    "checkpoint is saved and a restart with the same folders resumes it.",
                    step=self.step,
                )
            started, cpu_started = time.monotonic(), time.process_time()
            if not order:
                order = [
                    self.scene.train_ids[i]
                    for i in torch.randperm(len(self.scene.train_ids), generator=self.generator).tolist()
                ]
            index = order.pop()
            coarse = self.step < c.coarse_fraction * c.steps
            view = self._coarse_views[index] if coarse else self.scene.views[index]
            try:
                loss = self._train_step(view, index)
            except RuntimeError as error:
                if "out of memory" in str(error).lower() or "can't allocate memory" in str(error).lower():
                    raise OutOfMemoryError(
                        f"Ran out of memory at step {self.step} with {len(self.params['means'])} Gaussians: lower "
                        "--resolution-scale or --max-gaussians.",
                        step=self.step,
                    ) from None
                raise
            if not math.isfinite(loss):
                kept = self.checkpoint_dir / TrainOutputs.CHECKPOINT
                where = (
                    f"the last good checkpoint ({kept}) is kept" if kept.exists() else "no checkpoint was written yet"
                )
                raise NaNLossError(
                    f"The loss became NaN at step {self.step}; training stopped and {where}. Try a "
                    "lower learning rate or --resolution-scale.",
                    step=self.step,
                )
            self.step += 1
            self.wall_time_s += time.monotonic() - started
            self.cpu_time_s += time.process_time() - cpu_started
            rate_steps += 1
            last_loss = loss
            if self.step % c.progress_every == 0 or self.step == c.steps:
                now = time.monotonic()
                rate = rate_steps / max(now - rate_clock, 1e-9)
                rate_clock, rate_steps = now, 0
                n = len(self.params["means"])
                self.progress.update(
                    self.step / c.steps,
                    f"step {self.step}/{c.steps} loss {last_loss:.4f} gaussians {n} {rate:.2f} steps/s",
                    step=self.step,
                    loss=round(last_loss, 5),
                    num_gaussians=n,
                    steps_per_s=round(rate, 3),
                )
            if self.step % c.eval_every == 0 and self.step < c.steps:
                eval_started = time.monotonic()
                result = self.evaluate()
                self.history.append(
                    {
                        "step": self.step,
                        "psnr": result["psnr"],
                        "ssim": result["ssim"],
                        "wall_time_s": round(self.wall_time_s, 2),
                        "cpu_time_s": round(self.cpu_time_s, 2),
                        "num_gaussians": len(self.params["means"]),
                    }
                )
                logger.info("step %d: held-out PSNR %.2f dB, SSIM %.4f", self.step, result["psnr"], result["ssim"])
                rate_clock += time.monotonic() - eval_started  # evaluation time is not training speed
            if self.step % c.checkpoint_every == 0 or self.step == c.steps:
                self.save_checkpoint()

    def _train_step(self, view: View, view_id: int) -> float:
        c = self.config
        sh_degree = self.current_sh_degree()
        image, meta = self.render(view, sh_degree)
        image = self.corrected(image, view_id)
        target = self.scene.image(view).to(self.device)
        l1 = (image - target).abs().mean()
        loss = (1 - c.ssim_lambda) * l1 + c.ssim_lambda * (1 - ssim(image, target))
        self.strategy.step_pre_backward(self.params, self.optimizers, self.strategy_state, self.step, meta)
        loss.backward()  # type: ignore[no-untyped-call]  # untyped in torch's annotations
        value = float(loss.detach())
        if not math.isfinite(value):
            return value
        for optimizer in [*self.optimizers.values(), *([self.extras_optimizer] if self.extras_optimizer else [])]:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        for group in self.optimizers["means"].param_groups:
            group["lr"] *= self.means_lr_decay
        if c.strategy == "mcmc":
            self.strategy.step_post_backward(
                self.params,
                self.optimizers,
                self.strategy_state,
                self.step,
                meta,
                lr=self.optimizers["means"].param_groups[0]["lr"],
            )
        else:
            self.strategy.step_post_backward(
                self.params, self.optimizers, self.strategy_state, self.step, meta, packed=False
            )
        return value

    def splats(self) -> Splats:
        p = {name: t.detach().cpu().numpy().astype(np.float32) for name, t in self.params.items()}
        return Splats(
            means=p["means"],
            quats=p["quats"],
            log_scales=p["scales"],
            opacity_logits=p["opacities"],
            sh0=p["sh0"][:, 0, :],
            shN=p["shN"],
        )


def _save_side_by_side(path: Path, image: Tensor, target: Tensor) -> None:
    from PIL import Image

    pair = torch.cat([image, target], dim=1).numpy()
    with atomic_path(path) as partial:
        Image.fromarray((pair * 255 + 0.5).clip(0, 255).astype(np.uint8)).save(partial)


def peak_memory_mb() -> float:
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def train(
    sfm_dir: Path,
    out_dir: Path,
    config: TrainConfig,
    checkpoint_dir: Path | None = None,
    progress_callback: ProgressCallback | None = None,
    block: tuple[BlockPlan, int] | None = None,
) -> dict[str, Any]:
    """Train a splat from ``sfm_dir`` into ``out_dir``; resumes from ``checkpoint_dir`` when it holds one.

    ``block``: a plan and the index of the one block of it to train (:mod:`spaceport_train.blocks`).

    Writes the :class:`TrainOutputs`: the splat, its metrics, the configuration and held-out renders
    (render | photo). On an expected failure the metrics hold the error and the error is raised again.
    With a time budget, the whole call (loading, evaluations, writing) ends within it.
    """
    started = time.monotonic()
    out_dir, checkpoint_dir = Path(out_dir), Path(checkpoint_dir or Path(out_dir) / TrainOutputs.CHECKPOINTS)
    out_dir.mkdir(parents=True, exist_ok=True)
    config.save(out_dir / TrainOutputs.CONFIG)
    progress = ProgressReporter("train", progress_callback)
    torch.manual_seed(config.seed)
    trainer: Trainer | None = None
    try:
        progress.update(0.0, f"loading the reconstruction from {sfm_dir}")
        scene = load_scene(
            Path(sfm_dir),
            config.resolution_scale,
            config.eval_every_nth_image,
            max_image_size=config.max_image_size,
            image_cache_mb=config.image_cache_mb,
        )
        if block is not None:
            scene = block_scene(scene, block[0], block[1], config.eval_every_nth_image, config.seed)
        trainer = Trainer(scene, config, out_dir, checkpoint_dir, progress)
        if trainer.try_resume():
            progress.update(trainer.step / config.steps, f"resumed from the checkpoint at step {trainer.step}")
        if config.time_budget_s:
            trainer.deadline = started + config.time_budget_s - trainer.elapsed_before_s
        lpips = LpipsMeter()  # loads its network now, inside the budget, not after the last step
        resolution = scene.resolution
        progress.update(
            trainer.step / config.steps,
            f"training {len(trainer.params['means'])} Gaussians on {len(scene.train_ids)} images "
            f"({resolution['width']}x{resolution['height']}: {resolution['reason']}), {len(scene.eval_ids)} held out, "
            f"backend {trainer.backend}",
        )
        trainer.run()
        final = trainer.evaluate(lpips, renders_dir=out_dir / TrainOutputs.RENDERS)
        if not trainer.history or trainer.history[-1]["step"] != trainer.step:
            trainer.history.append(
                {
                    "step": trainer.step,
                    "psnr": final["psnr"],
                    "ssim": final["ssim"],
                    "wall_time_s": round(trainer.wall_time_s, 2),
                    "cpu_time_s": round(trainer.cpu_time_s, 2),
                    "num_gaussians": len(trainer.params["means"]),
                }
            )
        write_ply(trainer.splats(), out_dir / TrainOutputs.SPLAT)
        metrics = {
            "psnr": final["psnr"],
            "ssim": final["ssim"],
            "lpips": final["lpips"],
            "lpips_note": lpips.reason or None,
            "initial_psnr": trainer.initial_psnr,
            "num_gaussians": len(trainer.params["means"]),
            "steps": trainer.step,
            "wall_time_s": round(trainer.wall_time_s, 2),
            "steps_per_s": round(trainer.step / max(trainer.wall_time_s, 1e-9), 3),
            "cpu_time_s": round(trainer.cpu_time_s, 2),
            "threads": torch.get_num_threads(),
            "device": trainer.device.type,
            "backend": trainer.backend,
            "train_images": len(scene.train_ids),
            "eval_images": len(scene.eval_ids),
            "width": resolution["width"],
            "height": resolution["height"],
            "resolution": resolution,
            "image_memory": {
                "budget_mb": config.image_cache_mb,
                "peak_cached_mb": round(scene.images.peak_bytes / 2**20, 1),
                "photo_reads": scene.images.loads,
            },
            "background": _background_summary(trainer),
            "exposure": _exposure_summary(trainer),
            "rasterize_mode": config.rasterize_mode,
            "peak_memory_mb": round(peak_memory_mb(), 1),
            "refine_stop_step": min(trainer.strategy.refine_stop_iter, trainer.step),
            "eval_history": trainer.history,
            "preset": config.preset,
            "time_budget_s": config.time_budget_s,
        }
        if block is not None:
            metrics["block"] = {
                "index": block[1],
                "cameras": len(scene.views),
                "points": len(scene.points),
                "eval_views": [scene.views[i].name for i in scene.eval_ids],
            }
        metrics["total_wall_s"] = round(trainer.elapsed_before_s + time.monotonic() - started, 2)
        write_json_atomic(out_dir / TrainOutputs.METRICS, metrics)
        progress.update(
            1.0,
            f"held-out PSNR {final['psnr']:.2f} dB, SSIM {final['ssim']:.3f}, "
            f"{metrics['num_gaussians']} Gaussians, {metrics['total_wall_s']:.0f} s",
        )
        return metrics
    except TrainError as error:
        payload = {
            "error": error.to_dict(),
            "steps": trainer.step if trainer else 0,
            "device": trainer.device.type if trainer else None,
            "backend": trainer.backend if trainer else None,
        }
        write_json_atomic(out_dir / TrainOutputs.METRICS, payload)
        raise


def _background_summary(trainer: Trainer) -> dict[str, Any]:
    if "sky" not in trainer.extras:
        return {"mode": "black"}
    coeffs = trainer.extras["sky"].detach().cpu()
    return {
        "mode": "sky",
        "sh_degree": SKY_SH_DEGREE,
        "sh_coefficients": [[round(float(v), 5) for v in row] for row in coeffs],
        "note": "learned as a function of the view direction, behind the Gaussians; not part of the splat",
    }


def _exposure_summary(trainer: Trainer) -> dict[str, Any]:
    if "exposure_matrix" not in trainer.extras:
        return {"mode": "none"}
    matrices = trainer.extras["exposure_matrix"].detach().cpu()
    gains = torch.diagonal(matrices, dim1=1, dim2=2).mean(dim=1)
    return {
        "mode": "affine",
        "held_out": "evaluated with no correction (the held-out photos' pixels are never fitted)",
        "gain_range": [round(float(gains.min()), 4), round(float(gains.max()), 4)],
    }
