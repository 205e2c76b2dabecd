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

SETS = {
    "temple_ring": "middlebury_temple_ring/images",
    "fern_1_8": "llff_fern/images_8",
    "seneca": "seneca_drone/images",  # 48 drone photos with GPS: run it with --max-image-size 1600
}


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads: less sensitive than wall time
    to other work on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bare_pycolmap(images: Path, work: Path, max_image_size: int) -> dict:
    """The four pycolmap calls the job wraps, with pycolmap's defaults (and the job's image size cap)."""
    work.mkdir(parents=True)
    database = work / "database.db"
    started, cpu = time.perf_counter(), cpu_seconds()
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = max_image_size
    pycolmap.extract_features(database, images, extraction_options=extraction)
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


def job(images: Path, out: Path, mapper: str, max_image_size: int) -> dict:
    started, cpu = time.perf_counter(), cpu_seconds()
    quiet = ProgressReporter("sfm", stream=io.StringIO())
    options = SfmOptions(mapper=mapper, matcher="exhaustive", max_image_size=max_image_size)
    report = run_sfm(images, out, options, quiet)
    georeference = report["georeference"]
    return {
        "wall_s": time.perf_counter() - started,
        "cpu_s": cpu_seconds() - cpu,
        "map_s": report["timings_s"]["map"],
        "timings_s": report["timings_s"],
        "registered": report["images_registered"],
        "reprojection_px": report["mean_reprojection_error_px"],
        "georeferenced": georeference["used"],
        "horizontal_rms_m": georeference.get("horizontal_rms_m"),
        "vertical_rms_m": georeference.get("vertical_rms_m"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sets", nargs="*", default=["temple_ring", "fern_1_8"], choices=list(SETS))
    parser.add_argument("--max-image-size", type=int, default=3200, help="long side cap for both (pycolmap's default)")
    parser.add_argument("--variants", nargs="*", default=["bare", "job", "global"])
    args = parser.parse_args()
    datasets = Path(os.environ.get("SPACEPORT_DATASETS", "../shared/datasets"))
    pycolmap.logging.minloglevel = 2
    results: dict[str, dict[str, list[dict]]] = {}
    for name in args.sets:
        images = datasets / SETS[name]
        runs: dict[str, list[dict]] = {"bare": [], "job": [], "global": []}
        for repeat in range(args.repeats):
            order = args.variants if repeat % 2 == 0 else args.variants[::-1]
            for variant in order:
                with tempfile.TemporaryDirectory() as tmp, redirect_stderr(io.StringIO()):
                    if variant == "bare":
                        runs[variant].append(bare_pycolmap(images, Path(tmp) / "bare", args.max_image_size))
                    else:
                        mapper = "incremental" if variant == "job" else "global"
                        runs[variant].append(job(images, Path(tmp) / "out", mapper, args.max_image_size))
                print(f"{name} repeat {repeat + 1} {variant}: {json.dumps(runs[variant][-1])}", flush=True)
        results[name] = runs

    print(
        "\nset          bare s   job s   job/bare | incremental: map s  reg  reproj px | global: map s  job s  reg  reproj px"
    )
    for name, runs in results.items():

        def med(variant: str, key: str, runs: dict = runs) -> float:
            values = [run[key] for run in runs[variant]]
            return statistics.median(values) if values else float("nan")

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
        if runs["job"]:
            last = runs["job"][-1]
            print(f"  job stage timings (last repeat): {last['timings_s']}")
            print(
                f"  georeferenced: {last['georeferenced']}, horizontal RMS {last['horizontal_rms_m']} m, "
                f"vertical RMS {last['vertical_rms_m']} m to GPS"
            )
    print(f"load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
