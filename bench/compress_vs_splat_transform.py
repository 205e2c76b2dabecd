"""Our SOG compression against PlayCanvas' splat-transform, side by side in one run.

For each splat (donut, guitar): output size, ratio to the PLY, wall time, and render PSNR of
the decoded splat against the original (same views, same renderer, for every row). Wall time
is the compression alone (our job with fidelity off; ``splat-transform -g cpu``); both .sog
files are decoded by our decoder, which the interop test holds equal to splat-transform's.

``--extra`` adds splats the defaults were never tuned on (held out).

    .venv/bin/python bench/compress_vs_splat_transform.py [--repeats 3] [--datasets ../shared/datasets] [--extra PLY ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from spaceport.compute import torch_device
from spaceport.splats import read_ply
from spaceport_compress.fidelity import render_psnr
from spaceport_compress.job import CompressConfig, compress
from spaceport_compress.sog import read_sog

ROOT = Path(__file__).resolve().parents[1]
INTEROP = ROOT / "services/compress/interop"
SPLAT_TRANSFORM = INTEROP / "node_modules/.bin/splat-transform"
SPLATS = ("v3dg_donut.ply", "playcanvas_guitar.ply")
VIEWS, SIZE = 4, 128
# The job's defaults for scene.sog; the streamed scene and the other exports are left out, as
# splat-transform writes the .sog alone (bench/compress_streamed.py times the streamed scene).
SOG_ONLY = CompressConfig(fidelity_views=0, streamed=False, exports=False)


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--datasets", type=Path, default=Path(os.environ.get("SPACEPORT_DATASETS", "../shared/datasets"))
    )
    parser.add_argument("--extra", type=Path, nargs="*", default=[], help="more splat .ply files (held out)")
    args = parser.parse_args()
    if not SPLAT_TRANSFORM.exists():
        raise SystemExit("splat-transform is not installed: run make setup (needs npm)")
    torch_device("cpu")  # every core (or SPACEPORT_CPU_THREADS), as the job
    lock = json.loads((INTEROP / "package-lock.json").read_text())
    theirs = "splat-transform " + lock["packages"]["node_modules/@playcanvas/splat-transform"]["version"]
    print(f"load average {os.getloadavg()[0]:.1f} at the start")
    print(
        "| splat | tool | splats in | splats out | PLY MB | .sog MB | size vs splat-transform | ratio | time (s) "
        "| time vs splat-transform | render PSNR (dB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for source in [args.datasets / "splats" / name for name in SPLATS] + list(args.extra):
            name = source.name
            original = read_ply(source)
            runs = {
                theirs: lambda out, source=source: subprocess.run(
                    [str(SPLAT_TRANSFORM), "-w", "-g", "cpu", str(source), str(out / "scene.sog")],
                    check=True,
                    capture_output=True,
                ),
                "ours, PLAS": lambda out, source=source: compress(source, out, SOG_ONLY),
                "ours, Morton": lambda out, source=source: compress(source, out, replace(SOG_ONLY, order="morton")),
            }
            baseline = baseline_seconds = None
            for tool, run in runs.items():
                out = Path(tmp) / f"{name}-{tool.split(',')[-1].strip()}"
                out.mkdir()
                seconds = statistics.median(timed(lambda run=run, out=out: run(out)) for _ in range(args.repeats))
                size = (out / "scene.sog").stat().st_size
                baseline, baseline_seconds = baseline or size, baseline_seconds or seconds
                decoded = read_sog(out / "scene.sog")
                psnr = render_psnr(original, decoded, VIEWS, SIZE)["psnr"]
                print(
                    f"| {name.removesuffix('.ply')} | {tool} | {len(original):,} | {len(decoded):,} | "
                    f"{source.stat().st_size / 1e6:.2f} | {size / 1e6:.3f} | {size / baseline:.3f}x | "
                    f"{source.stat().st_size / size:.2f}x | {seconds:.1f} | {seconds / baseline_seconds:.2f}x | "
                    f"{psnr:.2f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
