"""Training memory against photo count: peak RSS with a bounded photo cache and with room for every photo.

For each photo count (100, 250, 500 by default) a wide generated flight is rendered (small
photos), its reconstruction is written from the truth (no SfM: this measures training), and
``spaceport train`` runs one step per photo (so every photo is read) in a subprocess of its
own, twice: with ``image_cache_mb`` small (the bound) and large enough for every photo (the
baseline: memory that grows with the photo count, as uint8; the old loader kept every photo as
float32, four times that). Prints peak RSS per run; the bound should stay flat.

    .venv/bin/python bench/train_memory.py --out bench-out/train_memory [--counts 100 250 500]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-out/train_memory"))
    parser.add_argument("--counts", type=int, nargs="*", default=[100, 250, 500])
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--bound-mb", type=float, default=8.0)
    args = parser.parse_args()

    from spaceport_sfm.sample import SampleOptions, make_sample, write_truth_reconstruction

    rows = []
    for count in args.counts:
        folder = args.out / f"n{count}"
        sfm = folder / "sfm"
        if not (sfm / "sparse" / "0" / "images.bin").is_file():
            capture = make_sample(
                folder / "wide.zip", n=count, width=args.width, height=args.height, options=SampleOptions(flight="wide")
            )
            write_truth_reconstruction(capture, sfm, points_per_photo=40)
        for label, cache_mb in (("bounded", args.bound_mb), ("every photo cached", 1e6)):
            out = folder / f"train-{cache_mb:g}"
            started = time.monotonic()
            command = [
                sys.executable,
                "-m",
                "spaceport.cli",
                "train",
                str(sfm),
                str(out),
                "--preset",
                "quick",
                "--device",
                "cpu",
                "--steps",
                str(count),
                "--eval-every",
                str(10 * count),
                "--max-gaussians",
                "2000",
                "--time-budget-s",
                "0",
                "--image-cache-mb",
                str(cache_mb),
                "--max-image-size",
                str(max(args.width, args.height)),
            ]
            subprocess.run(command, check=True, capture_output=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
            metrics = json.loads((out / "metrics.json").read_text())
            rows.append(
                {
                    "photos": count,
                    "cache": label,
                    "image_cache_mb": cache_mb,
                    "peak_rss_mb": metrics["peak_memory_mb"],
                    "peak_cached_mb": metrics["image_memory"]["peak_cached_mb"],
                    "photo_reads": metrics["image_memory"]["photo_reads"],
                    "train_images": metrics["train_images"],
                    "wall_s": round(time.monotonic() - started, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nphotos  cache                 peak RSS MB  photos cached MB  photo reads   ({args.width}x{args.height})")
    for row in rows:
        print(
            f"{row['photos']:>6}  {row['cache']:<20}  {row['peak_rss_mb']:>11.0f}  {row['peak_cached_mb']:>16.1f}"
            f"  {row['photo_reads']:>11}"
        )
    print(f"load average: {os.getloadavg()[0]:.1f}")
    (args.out / "summary.json").write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
