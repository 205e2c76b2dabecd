"""SfM job overhead and incremental vs global mapping, on the shared real photo sets.

For each set (temple ring, fern 1/8) and each repeat, in alternating order:
  * bare: the four pycolmap calls on the same images (extract_features, match_exhaustive,
    incremental_mapping, undistort_images), nothing else;
  * job: ``run_sfm`` (unpack/copy, read, extract, match, map, undistort, PLY, report);
  * global: ``run_sfm`` with ``mapper="global"``.
Prints medians: job wall time / bare wall time, paired per repeat (goal <= 1.10), and per mapper the mapping
time, the job time, the registered photos and the mean reprojection error.

Usage::

    SPACEPORT_DATASETS=/work/shared/datasets .venv/bin/python bench/sfm_overhead.py --repeats 3
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import tempfile
import time
from contextlib import redirect_stderr
from pathlib import Path

import pycolmap

from spaceport.progress import ProgressReporter
from spaceport_sfm.job import run_sfm
from spaceport_sfm.options import SfmOptions

SETS = {"temple_ring": "middlebury_temple_ring/images", "fern_1_8": "llff_fern/images_8"}


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads: less sensitive than wall time
    to other work on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bare_pycolmap(images: Path, work: Path) -> dict:
    """The four pycolmap calls the job wraps, with pycolmap's defaults."""
    work.mkdir(parents=True)
    database = work / "database.db"
    started, cpu = time.perf_counter(), cpu_seconds()
    pycolmap.extract_features(database, images)
    pycolmap.match_exhaustive(database)
    models = pycolmap.incremental_mapping(database, images, work / "sparse")
    model = max(models.values(), key=lambda m: m.num_reg_images())
    model_dir = work / "sparse" / "best"
    model_dir.mkdir()
    model.write(model_dir)
    pycolmap.undistort_images(work / "undistorted", model_dir, images)
    return {
        "wall_s": time.perf_counter() - started,
        "cpu_s": cpu_seconds() - cpu,
        "registered": model.num_reg_images(),
        "reprojection_px": model.compute_mean_reprojection_error(),
    }


def job(images: Path, out: Path, mapper: str) -> dict:
    started, cpu = time.perf_counter(), cpu_seconds()
    quiet = ProgressReporter("sfm", stream=io.StringIO())
    report = run_sfm(images, out, SfmOptions(mapper=mapper), quiet)
    return {
        "wall_s": time.perf_counter() - started,
        "cpu_s": cpu_seconds() - cpu,
        "map_s": report["timings_s"]["map"],
        "registered": report["images_registered"],
        "reprojection_px": report["mean_reprojection_error_px"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sets", nargs="*", default=list(SETS))
    args = parser.parse_args()
    datasets = Path(os.environ.get("SPACEPORT_DATASETS", "../shared/datasets"))
    pycolmap.logging.minloglevel = 2
    results: dict[str, dict[str, list[dict]]] = {}
    for name in args.sets:
        images = datasets / SETS[name]
        runs: dict[str, list[dict]] = {"bare": [], "job": [], "global": []}
        for repeat in range(args.repeats):
            order = ["bare", "job", "global"] if repeat % 2 == 0 else ["global", "job", "bare"]
            for variant in order:
                with tempfile.TemporaryDirectory() as tmp, redirect_stderr(io.StringIO()):
                    if variant == "bare":
                        runs[variant].append(bare_pycolmap(images, Path(tmp) / "bare"))
                    else:
                        mapper = "incremental" if variant == "job" else "global"
                        runs[variant].append(job(images, Path(tmp) / "out", mapper))
                print(f"{name} repeat {repeat + 1} {variant}: {json.dumps(runs[variant][-1])}", flush=True)
        results[name] = runs

    print(
        "\nset          bare s   job s   job/bare | incremental: map s  reg  reproj px | global: map s  job s  reg  reproj px"
    )
    for name, runs in results.items():

        def med(variant: str, key: str, runs: dict = runs) -> float:
            return statistics.median(run[key] for run in runs[variant])

        # Paired per repeat (the two ran back to back), so load from other work cancels out.
        ratio = statistics.median(j["wall_s"] / b["wall_s"] for j, b in zip(runs["job"], runs["bare"], strict=True))
        cpu_ratio = statistics.median(j["cpu_s"] / b["cpu_s"] for j, b in zip(runs["job"], runs["bare"], strict=True))
        print(
            f"{name:<12} {med('bare', 'wall_s'):7.1f} {med('job', 'wall_s'):7.1f} "
            f"{ratio:9.3f}x | "
            f"{med('job', 'map_s'):17.1f} {med('job', 'registered'):4.0f} {med('job', 'reprojection_px'):10.3f} | "
            f"{med('global', 'map_s'):13.1f} {med('global', 'wall_s'):6.1f} {med('global', 'registered'):4.0f} "
            f"{med('global', 'reprojection_px'):10.3f} | CPU time job/bare {cpu_ratio:.3f}x"
        )


if __name__ == "__main__":
    main()
