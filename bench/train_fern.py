"""Benchmark: CPU training of LLFF fern 1/8 with the ``default`` preset.

Runs ``spaceport sfm`` on ``llff_fern/images_8`` (unless ``--sfm-dir`` is given), trains with
the CPU backend, and prints held-out PSNR against wall time, steps/s and peak memory.
The goal is >= 20 dB held-out PSNR within 15 minutes on a 2-core CPU.

    .venv/bin/python bench/train_fern.py --out bench-out/fern [--sfm-dir DIR] [--set steps=800 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets",
        type=Path,
        default=Path(os.environ.get("SPACEPORT_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets")),
    )
    parser.add_argument("--out", type=Path, default=Path("bench-out/train_fern"))
    parser.add_argument("--sfm-dir", type=Path, help="reuse an existing `spaceport sfm` output")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="override a setting")
    args = parser.parse_args()

    from spaceport_sfm.cli import main as sfm_main
    from spaceport_train.config import TrainConfig
    from spaceport_train.trainer import train

    sfm_dir = args.sfm_dir
    if sfm_dir is None:
        sfm_dir = args.out / "sfm"
        started = time.monotonic()
        if sfm_main([str(args.datasets / "llff_fern" / "images_8"), str(sfm_dir)]) != 0:
            return 1
        print(f"sfm: {time.monotonic() - started:.1f} s")
    overrides = dict(item.split("=", 1) for item in args.set)
    # Threads: SPACEPORT_CPU_THREADS, as for any job (spaceport.compute).
    overrides.setdefault("device", "cpu")
    config = TrainConfig.from_preset(args.preset, overrides)
    started = time.monotonic()
    metrics = train(sfm_dir, args.out / "train", config)
    total = time.monotonic() - started

    print(
        f"\nfern 1/8, preset {config.preset}, backend {metrics['backend']}, "
        f"{metrics['width']}x{metrics['height']}, {metrics['train_images']} train / "
        f"{metrics['eval_images']} held-out images"
    )
    print("step  train_wall_s  train_cpu_s  held-out PSNR  SSIM   Gaussians")
    for row in metrics["eval_history"]:
        print(
            f"{row['step']:>5}  {row['wall_time_s']:>12.0f}  {row.get('cpu_time_s', 0):>11.0f}  {row['psnr']:>13.2f}  "
            f"{row.get('ssim', float('nan')):.3f}  {row.get('num_gaussians', '')}"
        )
    print(
        f"final: PSNR {metrics['psnr']:.2f} dB, SSIM {metrics['ssim']:.3f}, {metrics['num_gaussians']} Gaussians, "
        f"{metrics['steps']} steps in {metrics['wall_time_s']:.0f} s of training ({metrics['steps_per_s']:.2f} steps/s), "
        f"{total:.0f} s in all with evaluation; {metrics['cpu_time_s']:.0f} CPU-s in steps on {metrics['threads']} threads"
    )
    print(f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    (args.out / "summary.json").write_text(json.dumps({**metrics, "total_wall_s": round(total, 1)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
