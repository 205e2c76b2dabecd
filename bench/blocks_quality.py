"""Benchmark: training in blocks against training whole, at the same total steps, on the same held-out views.

A capture small enough to train whole (a generated wide mapping flight, or the first photos of
seneca_drone) goes through ``spaceport sfm``; its scene summary is planned into N blocks by
lowering the budget until the plan has N. Then, on the CPU:

* *whole*: one ``spaceport train`` of ``--steps`` steps on every photo;
* *blocks*: N ``spaceport train --block-plan --block i`` of ``steps / N`` steps each, run side
  by side (the cores shared out, as the local runner does), merged with ``spaceport merge``.

On a GPU (``--device cuda``) the jobs share the one GPU, so the wall time in parallel is not the
fleet's; the PSNR figures are the point there.

Both splats are rendered on the capture's held-out photos (every 8th; no block trained on any)
with neither the sky nor per-photo exposure (background black, exposure none in training too),
so the splat is the whole model. Each held-out view is a *border* view when less than 80% of its
ground (rays through a grid of its pixels, met at the scene's middle height) belongs to one
block's core, else an *interior* view. Prints PSNR overall, on border and on interior views, the
wall time with the blocks in parallel, the sum of the block jobs' times, and the load average.

    .venv/bin/python bench/blocks_quality.py --out bench-out/blocks --blocks 2 3 [--capture seneca]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from spaceport.contracts.blocks import BlockPlan

REPO = Path(__file__).resolve().parents[1]
SPACEPORT = str(Path(sys.executable).parent / "spaceport")
BORDER_SHARE = 0.8


def settings(steps: int, image_size: int, device: str) -> list[str]:
    """The default preset at ``steps``, its refine window laid on them, the splat the whole model."""
    return [
        "--preset", "default", "--device", device, "--steps", str(steps), "--max-image-size", str(image_size),
        "--refine-start", str(max(1, steps // 8)), "--refine-stop", str(3 * steps // 4),
        "--refine-every", str(max(1, steps // 12)), "--eval-every", str(steps), "--checkpoint-every", str(steps),
        "--background", "black", "--exposure", "none", "--time-budget-s", "0",
    ]  # fmt: skip


def capture(args: argparse.Namespace) -> Path:
    """The capture's ``spaceport sfm`` output folder."""
    sfm_dir: Path = args.out / "sfm"
    if (sfm_dir / "scene-summary.json").exists():
        return sfm_dir
    if args.capture == "generated":
        from spaceport_sfm.sample import SampleOptions, make_sample

        photos = make_sample(
            args.out / "wide.zip", n=args.photos, width=args.width, height=int(args.width * 0.75),
            options=SampleOptions(flight="wide"),
        ).zip_path  # fmt: skip
        extra: list[str] = []
    else:
        folder = Path(os.environ.get("SPACEPORT_DATASETS", REPO.parent / "shared" / "datasets")) / "seneca_drone"
        photos = args.out / "seneca"
        photos.mkdir(parents=True, exist_ok=True)
        for image in sorted((folder / "images").glob("*.JPG"))[: args.photos]:
            target = photos / image.name
            if not target.exists():
                target.symlink_to(image)
        extra = ["--max-image-size", str(args.width)]
    started = time.monotonic()
    subprocess.run([SPACEPORT, "sfm", str(photos), str(sfm_dir), *extra], check=True, capture_output=True)
    print(f"sfm: {time.monotonic() - started:.0f} s")
    return sfm_dir


def plan_with(sfm_dir: Path, count: int) -> BlockPlan:
    """The plan of exactly ``count`` blocks (the budget lowered until the planner makes that many)."""
    from spaceport.contracts.blocks import BlockBudget, SceneSummary
    from spaceport.handlers.block_plan import make_plan

    summary = SceneSummary.model_validate_json((sfm_dir / "scene-summary.json").read_text())

    def plan(gaussians: int) -> BlockPlan:
        return make_plan(summary, BlockBudget(max_gaussians=gaussians, max_megapixels=1e9, image_size_px=0, steps=1))

    whole = plan(10**12).whole.gaussians
    for share in np.linspace(0.95, 0.2, 60):
        candidate = plan(int(whole * share))
        if len(candidate.blocks) == count:
            return candidate
    raise SystemExit(f"no budget plans exactly {count} blocks")


def run_jobs(commands: list[list[str]], threads: int, logs: Path) -> tuple[float, list[float]]:
    """Run the commands side by side, each on ``threads`` threads, each one's output in ``logs``.

    Returns the wall time and each command's own time.
    """
    env = {**os.environ, "SPACEPORT_CPU_THREADS": str(threads)}
    logs.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    running = []
    for number, command in enumerate(commands):
        log = (logs / f"job{number}.log").open("wb")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        running.append((process, log, time.monotonic()))
    times = [0.0] * len(running)
    while any(process.returncode is None for process, _, _ in running):
        for number, (process, log, began) in enumerate(running):
            if process.returncode is None and process.poll() is not None:
                times[number] = time.monotonic() - began
                log.close()
        time.sleep(0.2)
    for command, (process, log, _) in zip(commands, running, strict=True):
        if process.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed; its output is in {log.name}")
    return time.monotonic() - started, times


def held_out_psnr(splat: Path, sfm_dir: Path, image_size: int) -> dict[str, float]:
    """PSNR of ``splat`` on each held-out view of the capture, by view name."""
    import torch

    from spaceport.splats import read_ply
    from spaceport_train.data import load_scene
    from spaceport_train.metrics import psnr
    from spaceport_train.rasterize import rasterize

    scene = load_scene(sfm_dir, max_image_size=image_size, eval_every_nth_image=8)
    splats = read_ply(splat)
    coeffs = torch.from_numpy(np.concatenate([splats.sh0[:, None, :], splats.shN], axis=1))
    means, quats = torch.from_numpy(splats.means), torch.from_numpy(splats.quats)
    scales, opacities = torch.from_numpy(splats.scales), torch.from_numpy(splats.opacities)
    scores = {}
    with torch.no_grad():
        for index in scene.eval_ids:
            view = scene.views[index]
            image, _, _ = rasterize(
                means, quats, scales, opacities, coeffs, view.viewmat[None], view.K[None], view.width, view.height,
                sh_degree=splats.sh_degree, backend="cpu", rasterize_mode="antialiased",
            )  # fmt: skip
            scores[view.name] = psnr(image[0].clamp(0, 1), scene.image(view))
    return scores


def border_views(plan: BlockPlan, sfm_dir: Path, names: list[str]) -> set[str]:
    """The held-out views whose ground is shared between blocks' cores (less than 80% in one)."""
    from spaceport.contracts.blocks import SceneSummary

    summary = SceneSummary.model_validate_json((sfm_dir / "scene-summary.json").read_text())
    axes = np.asarray(summary.axes)
    middle = sum(summary.heights) / 2
    border = set()
    for view in summary.views:
        if view.name not in names:
            continue
        xs, ys = np.meshgrid(np.linspace(0, view.width, 16), np.linspace(0, view.height, 12))
        rays = np.stack([(xs - view.cx) / view.fx, (ys - view.cy) / view.fy, np.ones_like(xs)], -1).reshape(-1, 3)
        rays = rays @ np.asarray(view.rotation).reshape(3, 3)  # R^T d, row-wise
        centre = np.asarray(view.centre) @ axes.T
        local = rays @ axes.T
        going = local[:, 2] * np.sign(middle - centre[2]) > 1e-9
        t = (middle - centre[2]) / local[going, 2]
        ground = centre[:2] + t[:, None] * local[going, :2]
        owners = [next(b.index for b in plan.blocks if b.core.contains(u, v)) for u, v in ground]
        if owners and max(owners.count(i) for i in set(owners)) < BORDER_SHARE * len(owners):
            border.add(view.name)
    return border


def compare(whole: dict[str, float], merged: dict[str, float], border: set[str]) -> str:
    """Median PSNR of both on all, border and interior views, and the median change per view.

    The change per view (merged minus whole) is the seam measure: a view's own content makes it
    easy or hard for both, so border against interior is compared on the change, not the score.

    >>> print(compare({"a": 20.0, "b": 30.0}, {"a": 19.0, "b": 28.0}, {"b"}))
    median PSNR, whole: 25.00 dB, blocks: 23.50 dB (2 views)
      border (1): whole 30.00, blocks 28.00, change -2.00 dB
      interior (1): whole 20.00, blocks 19.00, change -1.00 dB
    """
    lines = [
        f"median PSNR, whole: {np.median(list(whole.values())):.2f} dB, "
        f"blocks: {np.median(list(merged.values())):.2f} dB ({len(whole)} views)"
    ]
    for name, views in (("border", sorted(border)), ("interior", sorted(set(whole) - border))):
        if views:
            lines.append(
                f"  {name} ({len(views)}): whole {np.median([whole[v] for v in views]):.2f}, "
                f"blocks {np.median([merged[v] for v in views]):.2f}, "
                f"change {np.median([merged[v] - whole[v] for v in views]):+.2f} dB"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-out/blocks_quality"))
    parser.add_argument("--capture", choices=("generated", "seneca"), default="generated")
    parser.add_argument("--photos", type=int, default=48, help="photos of the capture (default 48)")
    parser.add_argument("--width", type=int, default=320, help="photo width for SfM and training (default 320)")
    parser.add_argument("--steps", type=int, default=1200, help="total training steps (default 1200)")
    parser.add_argument("--blocks", type=int, nargs="+", default=[2, 3], help="block counts to compare (default 2 3)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="training device (default cpu)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0))
    sfm_dir = capture(args)

    whole_dir = args.out / "whole"
    command = [SPACEPORT, "train", str(sfm_dir), str(whole_dir), *settings(args.steps, args.width, args.device)]
    wall, _ = run_jobs([command], cores, args.out / "logs" / "whole")
    whole = held_out_psnr(whole_dir / "splat.ply", sfm_dir, args.width)
    gaussians = json.loads((whole_dir / "metrics.json").read_text())["num_gaussians"]
    results: dict[str, Any] = {"whole": {"wall_s": round(wall, 1), "gaussians": gaussians, "psnr": whole}}
    print(
        f"whole: {args.steps} steps, {gaussians} Gaussians, {wall:.0f} s, "
        f"held-out median {np.median(list(whole.values())):.2f} dB"
    )
    for count in args.blocks:
        plan = plan_with(sfm_dir, count)
        folder = args.out / f"blocks{count}"
        folder.mkdir(exist_ok=True)
        plan_path = folder / "block-plan.json"
        plan_path.write_text(plan.model_dump_json())
        steps = args.steps // count
        commands = [
            [SPACEPORT, "train", str(sfm_dir), str(folder / f"b{block.index}"), *settings(steps, args.width, args.device),
             "--block-plan", str(plan_path), "--block", str(block.index)]
            for block in plan.blocks
        ]  # fmt: skip
        wall, times = run_jobs(commands, max(1, cores // count), args.out / "logs" / f"blocks{count}")
        subprocess.run(
            [SPACEPORT, "merge", str(plan_path), str(folder), str(folder / "merged")], check=True, capture_output=True
        )
        merged = held_out_psnr(folder / "merged" / "splat.ply", sfm_dir, args.width)
        report = json.loads((folder / "merged" / "metrics.json").read_text())
        border = border_views(plan, sfm_dir, list(merged))
        row = {
            "blocks": count,
            "steps_per_block": steps,
            "cameras": [len(b.cameras) for b in plan.blocks],
            "gaussians": report["num_gaussians"],
            "wall_s": round(wall, 1),
            "job_s": [round(t, 1) for t in times],
            "psnr": merged,
            "border_views": sorted(border),
        }
        results[f"blocks{count}"] = row
        print(compare(whole, merged, border))
        print(
            f"  {count} blocks: {steps} steps each, cameras {row['cameras']}, {row['gaussians']} Gaussians merged; "
            f"wall {wall:.0f} s in parallel, jobs {' + '.join(f'{t:.0f}' for t in times)} = {sum(times):.0f} s"
        )
    load = os.getloadavg()
    results["load_average"] = [round(x, 2) for x in load]
    print(f"load average: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {cores} cores")
    (args.out / "summary.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
