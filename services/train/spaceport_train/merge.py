"""Merging a run's blocks into one splat: each place on the ground keeps the Gaussians of its owner.

The plan's cores tile the whole ground plane (the outer ones are unbounded), so every Gaussian
centre has exactly one owning block. Each block trained more than its core (its bounds reach
into its neighbours by the plan's margin, and context points beyond), and near a border both
neighbours hold Gaussians for the same surfaces. The merge resolves the seam by ownership: a
Gaussian survives only from the block whose core holds its centre, so the overlap is never
drawn twice, and what each block kept at the border was trained with its neighbour's ground in
view, so it meets the neighbour's Gaussians there. Blocks trained with different SH degrees
(a block retrained alone with other settings) are padded to the highest with zero bands.

:func:`merge_blocks` is the functional core; :func:`merge_job` is ``spaceport merge``: it finds
each block's :attr:`~spaceport.contracts.layout.TrainOutputs.SPLAT` under a folder (the block is
the nearest enclosing folder named like :func:`~spaceport.contracts.layout.block_name`), writes
the merged splat and a report in the training job's names, so compression takes it as it is.

Two blocks owning the ground west and east of ``u = 0``, each holding a Gaussian on either side:

>>> from spaceport.contracts.blocks import BlockBudget, PlannedBlock, Prediction
>>> nothing = Prediction(cameras=0, points=0, gaussians=0, megapixels=0.0, gpu_hours=0.0)
>>> cores = [GroundRect(u_max=0.0), GroundRect(u_min=0.0)]
>>> plan = BlockPlan(
...     frame="enu", axes=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)), heights=(0.0, 5.0),
...     budget=BlockBudget(max_gaussians=1, max_megapixels=1.0, image_size_px=0, steps=1), whole=nothing,
...     blocks=[PlannedBlock(index=i, core=core, bounds=core, cameras=[], predicted=nothing) for i, core in enumerate(cores)],
...     reason="two halves")
>>> west, east = Splats.empty(2), Splats.empty(2)
>>> west.means[:, 0] = east.means[:, 0] = [-0.5, 3.0]
>>> merged, kept = merge_blocks(plan, {0: west, 1: east})
>>> merged.means[:, 0].tolist(), kept
([-0.5, 3.0], {0: 1, 1: 1})
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from spaceport.contracts.blocks import BlockPlan, GroundRect, Vector
from spaceport.contracts.layout import TrainOutputs, block_index
from spaceport.files import write_json_atomic
from spaceport.progress import ProgressReporter
from spaceport.splats import Splats, read_ply, write_ply
from spaceport_train.errors import MergeError

logger = logging.getLogger("spaceport.train")


def owned(means: np.ndarray, axes: tuple[Vector, Vector, Vector], core: GroundRect) -> np.ndarray:
    """[N] bool: the centres [N, 3] whose ground position lies in ``core``."""
    ground = means.astype(np.float64) @ np.asarray(axes[:2], dtype=np.float64).T
    inside = np.ones(len(means), dtype=bool)
    for column, low, high in ((0, core.u_min, core.u_max), (1, core.v_min, core.v_max)):
        if low is not None:
            inside &= ground[:, column] >= low
        if high is not None:
            inside &= ground[:, column] < high
    return inside


def merge_blocks(plan: BlockPlan, blocks: Mapping[int, Splats]) -> tuple[Splats, dict[int, int]]:
    """One splat of every block's Gaussians within its own core; also how many each block kept."""
    missing = sorted({block.index for block in plan.blocks} - set(blocks))
    if missing:
        raise MergeError(f"Blocks {missing} of the plan have no splat to merge.")
    degree = max(splats.sh_degree for splats in blocks.values())
    parts, kept = [], {}
    for block in plan.blocks:
        splats = blocks[block.index]
        part = splats.subset(owned(splats.means, plan.axes, block.core))
        parts.append(_with_degree(part, degree))
        kept[block.index] = len(part)
    merged = Splats(
        means=np.concatenate([p.means for p in parts]),
        quats=np.concatenate([p.quats for p in parts]),
        log_scales=np.concatenate([p.log_scales for p in parts]),
        opacity_logits=np.concatenate([p.opacity_logits for p in parts]),
        sh0=np.concatenate([p.sh0 for p in parts]),
        shN=np.concatenate([p.shN for p in parts]),
    )
    return merged, kept


def _with_degree(splats: Splats, degree: int) -> Splats:
    rest = (degree + 1) ** 2 - 1
    if splats.shN.shape[1] == rest:
        return splats
    padded = np.zeros((len(splats), rest, 3), dtype=splats.shN.dtype)
    padded[:, : splats.shN.shape[1]] = splats.shN
    return Splats(splats.means, splats.quats, splats.log_scales, splats.opacity_logits, splats.sh0, padded)


def find_block_outputs(folder: Path) -> dict[int, Path]:
    """Block index -> the folder holding its splat, for every splat under ``folder``."""
    found: dict[int, Path] = {}
    for splat in sorted(Path(folder).rglob(TrainOutputs.SPLAT)):
        index = next(
            (block_index(parent.name) for parent in splat.parents if block_index(parent.name) is not None), None
        )
        if index is None:
            continue
        if index in found:
            raise MergeError(f"Block {index} has two splats, {found[index]} and {splat.parent}: name one run's.")
        found[index] = splat.parent
    return found


def _block_report(folder: Path) -> dict[str, Any]:
    path = folder / TrainOutputs.METRICS
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return report if isinstance(report, dict) else {}


def merge_job(
    plan_path: Path, blocks_dir: Path, out_dir: Path, progress: ProgressReporter | None = None
) -> dict[str, Any]:
    """Merge the blocks of ``plan_path`` found under ``blocks_dir`` into ``out_dir``; returns the report.

    On an expected failure the report holds the error, as the training job's would.
    """
    from spaceport_train.blocks import read_plan

    started = time.monotonic()
    progress = progress or ProgressReporter("merge")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        plan = read_plan(plan_path)
        folders = find_block_outputs(blocks_dir)
        splats: dict[int, Splats] = {}
        for done, block in enumerate(plan.blocks):
            if block.index not in folders:
                raise MergeError(f"Block {block.index} of the plan has no {TrainOutputs.SPLAT} under {blocks_dir}.")
            progress.update(done / (len(plan.blocks) + 1), f"reading block {block.index} of {len(plan.blocks)}")
            splats[block.index] = read_ply(folders[block.index] / TrainOutputs.SPLAT)
        progress.update(len(plan.blocks) / (len(plan.blocks) + 1), "keeping each block's own Gaussians")
        merged, kept = merge_blocks(plan, splats)
        write_ply(merged, out_dir / TrainOutputs.SPLAT)
        report = merged_report(plan, {i: _block_report(folders[i]) for i in folders if i in kept}, kept, splats)
        report["merge_wall_s"] = round(time.monotonic() - started, 2)
        write_json_atomic(out_dir / TrainOutputs.METRICS, report)
        progress.update(1.0, f"{len(merged):,} Gaussians from {len(plan.blocks)} blocks")
        return report
    except MergeError as error:
        write_json_atomic(out_dir / TrainOutputs.METRICS, {"status": "failed", "error": error.to_dict()})
        raise


def merged_report(
    plan: BlockPlan, reports: Mapping[int, dict[str, Any]], kept: Mapping[int, int], splats: Mapping[int, Splats]
) -> dict[str, Any]:
    """The merged run's figures in the training job's names, and each block's.

    ``psnr``/``ssim`` are the blocks' held-out figures, weighted by their held-out photos (the
    merged splat is not rendered here); ``wall_time_s`` is the longest block (they run side by side).
    """

    def weighted(name: str) -> float | None:
        pairs = [
            (float(r[name]), int(r.get("eval_images") or 1)) for r in reports.values() if isinstance(r.get(name), float)
        ]
        return sum(v * w for v, w in pairs) / sum(w for _, w in pairs) if pairs else None

    walls = [float(r.get("total_wall_s") or 0.0) for r in reports.values()]
    devices = sorted({str(r["device"]) for r in reports.values() if r.get("device")})
    blocks = [
        {
            "index": block.index,
            "cameras": len(block.cameras),
            "gaussians_trained": len(splats[block.index]),
            "gaussians_kept": kept[block.index],
            "psnr": reports.get(block.index, {}).get("psnr"),
            "steps": reports.get(block.index, {}).get("steps"),
            "wall_s": reports.get(block.index, {}).get("total_wall_s"),
            "device": reports.get(block.index, {}).get("device"),
            "predicted_gpu_hours": block.predicted.gpu_hours,
        }
        for block in plan.blocks
    ]
    return {
        "status": "succeeded",
        "merged_blocks": len(plan.blocks),
        "num_gaussians": int(sum(kept.values())),
        "psnr": weighted("psnr"),
        "ssim": weighted("ssim"),
        "psnr_note": "the blocks' held-out PSNR, weighted by their held-out photos",
        "steps": int(sum(int(r.get("steps") or 0) for r in reports.values())),
        "wall_time_s": round(max(walls, default=0.0), 2),
        "job_time_s": round(sum(walls), 2),
        "device": devices[0] if len(devices) == 1 else ",".join(devices),
        "preset": next((r["preset"] for r in reports.values() if r.get("preset")), None),
        "sh_degree": max(s.sh_degree for s in splats.values()),
        "blocks": blocks,
    }
