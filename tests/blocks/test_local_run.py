"""``spaceport run`` on a generated wide capture over a small budget: blocks trained side by side, merged, compressed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spaceport.cli import main as spaceport_main
from spaceport.contracts.job import JobRecord, JobStatus, PartStatus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wide_zip(tmp_path_factory) -> Path:
    """40 photos of a mapping flight over a strip three times as long as it is wide."""
    from spaceport_sfm.sample import SampleOptions, make_sample

    folder = tmp_path_factory.mktemp("wide_run")
    return make_sample(folder / "wide.zip", n=40, width=320, height=240, options=SampleOptions(flight="wide")).zip_path


def test_a_capture_over_the_budget_runs_as_parallel_block_jobs_merged_into_one_scene(wide_zip, tmp_path, monkeypatch):
    from spaceport.contracts.units import BLOCK_RUN_GRANTS, UNITS
    from spaceport.local.iam import needed_statements
    from spaceport.local.stack import LocalStack

    # What the local IAM decided about every call of the run, kept as its stack stops.
    decisions: list = []
    deployments: list[str] = []
    stop = LocalStack.stop

    def stop_keeping_decisions(self: LocalStack) -> None:
        assert self.aws.iam is not None
        decisions.extend(self.aws.iam.decisions)
        deployments.append(self.config.deployment)
        stop(self)

    monkeypatch.setattr(LocalStack, "stop", stop_keeping_decisions)
    # The capture's SfM predicts some 50,000 Gaussians: a budget of 40,000 makes two blocks.
    monkeypatch.setenv("SPACEPORT_BLOCK_MAX_GAUSSIANS", "40000")
    out = tmp_path / "out"
    argv = ["run", str(wide_zip), "--email", "pilot@example.com", "--preset", "quick", "--option", "steps=10"]
    assert spaceport_main([*argv, "--jobs", "2", "--out", str(out), "--timeout", "600"]) == 0

    # Every unit called with the policy that deploys and nothing was refused; the statements only
    # a run in blocks needs (the pipeline's tests leave them to this one) were each needed here.
    assert decisions and [d for d in decisions if not d.allowed] == []
    needed = needed_statements(decisions)
    for name, sids in BLOCK_RUN_GRANTS.items():
        role = UNITS[name].role_name(deployments[0])
        assert sids <= needed.get(role, set()), f"{name}: {sorted(sids - needed.get(role, set()))} not needed"

    [folder] = [path for path in out.iterdir() if path.is_dir() and not path.name.startswith(".")]
    record = JobRecord.model_validate_json((folder / "job.json").read_text())
    assert record.status is JobStatus.SUCCEEDED and record.blocks is not None
    blocks = record.blocks
    assert blocks.count >= 2 and blocks.done == blocks.count and blocks.merge.status is PartStatus.DONE
    for part in blocks.parts.values():
        assert part.status is PartStatus.DONE and part.measured_gpu_hours and part.num_gaussians and part.psnr
    assert record.summary["train_blocks"] == blocks.count

    # The block jobs ran side by side: each started before the other ended.
    jobs = out / ".stack" / "jobs"
    runs = []
    for name in sorted(blocks.parts):
        [job] = jobs.glob(f"spaceport-local-train-{record.job_id}-r1-{name}-a1")
        runs.append(((job / "request.json").stat().st_mtime, (job / "job.log").stat().st_mtime))
    assert all(start < min(end for _, end in runs) for start, _ in runs), runs

    # One splat of every block's own Gaussians, and a scene that decodes to it.
    from spaceport.splats import read_ply

    metrics = json.loads((folder / "train_metrics.json").read_text())
    merged = read_ply(folder / "splat.ply")
    assert len(merged) == metrics["num_gaussians"] == sum(b["gaussians_kept"] for b in metrics["blocks"])
    assert len(merged) < sum(b["gaussians_trained"] for b in metrics["blocks"])  # the overlaps went
    assert spaceport_main(["decompress", str(folder / "scene.sog"), str(tmp_path / "decoded.ply")]) == 0
    assert len(read_ply(tmp_path / "decoded.ply")) == record.summary["compress_splats_out"] > 0
