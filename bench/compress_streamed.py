"""The streamed scene (levels of detail): per level, splats, bytes and render fidelity where it is shown.

For each splat: the compress job's streamed output (``write_levels``, job defaults: each level a
quarter of the one before, merged from neighbours, PLAS within each chunk), then for each level
the render PSNR of the decoded level against the full input splat from the distance at which the
viewer first shows it (``streamed.level_distance``; level 0 from the usual framing distance).
Beside it, the same number of splats *dropped* at random from the full splat, rendered from the
same cameras: the baseline that merging has to beat. Also the time to write the streamed scene,
median of ``--repeats``, against the time to write scene.sog in the same run.

    .venv/bin/python bench/compress_streamed.py [--repeats 3] [--datasets ../shared/datasets] [--extra PLY ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from spaceport.compute import torch_device
from spaceport.contracts.layout import CompressOutputs
from spaceport.splats import read_ply
from spaceport_compress.fidelity import framing_distance, render_psnr
from spaceport_compress.job import CompressConfig, compress, prepare_splats, write_levels
from spaceport_compress.sog import SogOptions
from spaceport_compress.streamed import level_distance, read_streamed_sog

SPLATS = ("v3dg_donut.ply", "playcanvas_guitar.ply")
VIEWS, SIZE = 4, 128


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--datasets", type=Path, default=Path(os.environ.get("SPACEPORT_DATASETS", "../shared/datasets"))
    )
    parser.add_argument("--extra", type=Path, nargs="*", default=[], help="more splat .ply files (held out)")
    args = parser.parse_args()
    torch_device("cpu")
    print(f"load average {os.getloadavg()[0]:.1f} at the start")
    print(
        "| splat | level | splats | MB | shown from (x framing) | PSNR, merged level (dB) "
        "| PSNR, as many dropped at random (dB) |"
    )
    print("|---|---|---|---|---|---|---|")
    timings = []
    config = CompressConfig(fidelity_views=0)
    sog_only = replace(config, streamed=False, exports=False)
    options = SogOptions(position_bits=config.position_bits, seed=config.seed)
    for source in [args.datasets / "splats" / name for name in SPLATS] + list(args.extra):
        original = read_ply(source)
        splats = prepare_splats(original, config.min_opacity)
        with tempfile.TemporaryDirectory() as tmp:
            index = Path(tmp) / CompressOutputs.STREAMED
            streamed_s = statistics.median(
                _timed(lambda s=splats, i=index: write_levels(s, i, options, config)) for _ in range(args.repeats)
            )
            sog_s = statistics.median(
                _timed(lambda s=source, t=tmp: compress(s, Path(t) / "single", sog_only)) for _ in range(args.repeats)
            )
            summary = write_levels(splats, index, options, config)
            levels = read_streamed_sog(index)
            meta = json.loads(index.read_text())
            unit_bytes = _bytes_per_level(index.parent, meta)
            _, framing = framing_distance(original.means)
            rng = np.random.default_rng(0)
            for lod, level in enumerate(levels):
                distance = level_distance(meta["tree"]["bound"], lod) if lod else framing
                scale = distance / framing
                merged = render_psnr(original, level, VIEWS, SIZE, distance_scale=scale)["psnr"]
                dropped = original.subset(rng.choice(len(original), len(level), replace=False))
                dropped_psnr = render_psnr(original, dropped, VIEWS, SIZE, distance_scale=scale)["psnr"]
                print(
                    f"| {source.stem} | {lod} | {len(level):,} | {unit_bytes[lod] / 1e6:.3f} | {scale:.2f} | "
                    f"{merged:.2f} | {dropped_psnr if lod else float('nan'):.2f} |",
                    flush=True,
                )
            timings.append((source.stem, summary, streamed_s, sog_s))
    print()
    print("| splat | levels | units | streamed MB | write streamed (s) | compress scene.sog (s) | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, summary, streamed_s, sog_s in timings:
        print(
            f"| {name} | {summary['levels']} | {summary['units']} | {summary['bytes'] / 1e6:.3f} | "
            f"{streamed_s:.1f} | {sog_s:.1f} | {streamed_s / sog_s:.2f}x |"
        )


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _bytes_per_level(folder: Path, meta: dict[str, Any]) -> list[int]:
    sizes = [0] * meta["lodLevels"]
    for name in meta["filenames"]:
        lod = int(name.split("_", 1)[0])
        sizes[lod] += sum(path.stat().st_size for path in (folder / name).parent.iterdir())
    return sizes


if __name__ == "__main__":
    main()
