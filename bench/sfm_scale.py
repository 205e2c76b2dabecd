"""Benchmark: SfM on 100, 250 and 500 generated photos, incremental against global mapping.

Each capture is a generated wide mapping flight (``spaceport sample --flight wide``, small
photos). ``spaceport sfm`` runs in a subprocess per case, so its wall time and peak memory are
its own: spatial matching with the GPS priors, then incremental or global mapping; and, on the
photos without GPS, sequential matching (with loop closure) and the vocabulary tree learnt from
the capture. Prints, per case, the stage times, the pairs matched, the photos placed, the mean
reprojection error and the peak resident memory, and how each grows with the photos.

    .venv/bin/python bench/sfm_scale.py --out bench-out/sfm_scale [--photos 100 250 500] [--no-gps-at 250]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SPACEPORT = str(Path(sys.executable).parent / "spaceport")
# Runs a command and prints the peak resident memory (KiB) of it and its children.
MEASURED = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
)


def capture(folder: Path, photos: int, width: int, gps: bool) -> Path:
    from spaceport_sfm.sample import SampleOptions, make_sample

    name = f"wide{photos}{'' if gps else '-nogps'}.zip"
    if (folder / name).exists():
        return folder / name
    options = SampleOptions(flight="wide") if gps else SampleOptions(flight="wide", gps_in_exif=False, flight_log=True)
    started = time.monotonic()
    make_sample(folder / name, n=photos, width=width, height=width * 3 // 4, options=options)
    print(f"generated {photos} photos ({'GPS' if gps else 'no GPS'}) in {time.monotonic() - started:.0f} s")
    return folder / name


def sfm(zip_path: Path, out: Path, matcher: str, mapper: str) -> dict[str, object]:
    started = time.monotonic()
    command = [sys.executable, "-c", MEASURED, SPACEPORT, "sfm", str(zip_path), str(out), "--matcher", matcher]
    result = subprocess.run([*command, "--mapper", mapper], capture_output=True, text=True)
    wall = time.monotonic() - started
    report = json.loads((out / "report.json").read_text())
    peak_kib = int(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else 0
    return {
        "matcher": matcher,
        "mapper": mapper,
        "status": report.get("status"),
        "wall_s": round(wall, 1),
        "peak_mib": round(peak_kib / 1024),
        "pairs": report.get("matcher", {}).get("pairs"),
        "registered": report.get("images_registered"),
        "images": report.get("images_used"),
        "reprojection_px": report.get("mean_reprojection_error_px"),
        "points": report.get("points3d"),
        "timings_s": report.get("timings_s", {}),
        "georeferenced": report.get("gps_used"),
        "error": (report.get("error") or {}).get("message"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-out/sfm_scale"))
    parser.add_argument("--photos", type=int, nargs="+", default=[100, 250, 500])
    parser.add_argument("--width", type=int, default=240, help="photo width in pixels (default 240)")
    parser.add_argument("--no-gps-at", type=int, default=250, help="photo count of the runs without GPS (0: none)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    cases = [(n, True, "spatial", mapper) for n in args.photos for mapper in ("incremental", "global")]
    if args.no_gps_at:
        cases += [(args.no_gps_at, False, matcher, "global") for matcher in ("sequential", "vocabtree")]
    for photos, gps, matcher, mapper in cases:
        zip_path = capture(args.out, photos, args.width, gps)
        row = {
            "photos": photos,
            "gps": gps,
            **sfm(zip_path, args.out / f"sfm-{photos}-{matcher}-{mapper}", matcher, mapper),
        }
        rows.append(row)
        timings = row["timings_s"]
        assert isinstance(timings, dict)
        print(
            f"{photos:>4} photos {'GPS' if gps else 'no GPS':>6} {matcher:>10} {mapper:>11}: {row['wall_s']:>6.0f} s, "
            f"peak {row['peak_mib']:>5} MiB, {row['pairs']} pairs, {row['registered']}/{row['images']} placed, "
            f"{row['reprojection_px']} px; extract {timings.get('extract', 0):.0f} s, match {timings.get('match', 0):.0f} s, "
            f"map {timings.get('map', 0):.0f} s" + (f"; {row['error']}" if row["error"] else ""),
            flush=True,
        )
    load = os.getloadavg()
    print(f"load average: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {len(os.sched_getaffinity(0))} cores")
    (args.out / "summary.json").write_text(json.dumps({"rows": rows, "load_average": load}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
