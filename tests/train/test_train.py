"""The training job end to end on the generated sample: config, errors, outputs, SIGTERM + resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from spaceport.contracts.layout import TrainOutputs
from spaceport.splats import read_ply
from spaceport_train import trainer as trainer_module
from spaceport_train.cli import main
from spaceport_train.config import TrainConfig
from spaceport_train.errors import NaNLossError, NoPointsError, OutOfMemoryError, TrainConfigError
from spaceport_train.trainer import train

# Small and fast: the sample at a quarter of its size (120x90), a few dozen steps.
FAST = {"resolution_scale": "0.25"}


def test_presets_and_string_overrides():
    quick = TrainConfig.from_preset("quick", {"steps": "50", "ssim_lambda": "0.1", "device": "cpu"})
    assert (quick.preset, quick.steps, quick.ssim_lambda, quick.device) == ("quick", 50, 0.1, "cpu")
    assert TrainConfig.from_preset("quality").steps > TrainConfig.from_preset("default").steps > quick.steps
    from_job = TrainConfig.from_hyperparameters({"preset": "quick", "max-gaussians": "1e4"})
    assert from_job.max_gaussians == 10_000 and from_job.preset == "quick"
    for bad in ({"steps": "many"}, {"no_such_setting": "1"}, {"device": "tpu"}, {"sh_degree": "4"}):
        with pytest.raises(TrainConfigError):
            TrainConfig.from_preset("quick", bad)
    with pytest.raises(TrainConfigError):
        TrainConfig.from_preset("fastest")


def test_cli_help_lists_every_setting(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--max-gaussians" in text and "--preset" in text and "--resolution-scale" in text


def test_missing_model_is_a_named_error(tmp_path, capsys):
    (tmp_path / "sfm").mkdir()
    assert main([str(tmp_path / "sfm"), str(tmp_path / "out")]) == 32
    assert "spaceport sfm" in capsys.readouterr().err
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["error"]["code"] == "no_sparse_model"


def test_model_without_points_is_a_named_error(sample_sfm, tmp_path):
    import pycolmap

    reconstruction = pycolmap.Reconstruction(str(sample_sfm / "sparse" / "0"))
    for point_id in list(reconstruction.points3D):
        reconstruction.delete_point3D(point_id)
    (tmp_path / "sfm" / "sparse" / "0").mkdir(parents=True)
    reconstruction.write(str(tmp_path / "sfm" / "sparse" / "0"))
    (tmp_path / "sfm" / "images").symlink_to(sample_sfm / "images")
    with pytest.raises(NoPointsError):
        train(tmp_path / "sfm", tmp_path / "out", TrainConfig.from_preset("quick", FAST))


@pytest.mark.slow
def test_short_cpu_training_run(sample_sfm, tmp_path):
    out = tmp_path / "out"
    settings = {**FAST, "steps": "60", "eval_every": "30", "refine_start": "15", "refine_every": "15"}
    metrics = train(sample_sfm, out, TrainConfig.from_preset("quick", settings))

    # Held-out PSNR climbs at every evaluation. 60 steps gain 4.9-5.3 dB over the initial render,
    # the spread coming from SfM's run-to-run differences in the points it starts from.
    history = [entry["psnr"] for entry in metrics["eval_history"]]
    assert history == sorted(history) and metrics["psnr"] > metrics["initial_psnr"] + 3.5, metrics
    assert metrics["steps"] == 60 and metrics["device"] == "cpu" and metrics["backend"] == "cpu"
    assert [h["step"] for h in metrics["eval_history"]] == [0, 30, 60]
    on_disk = json.loads((out / "metrics.json").read_text())
    for key in ("psnr", "ssim", "lpips", "num_gaussians", "steps", "wall_time_s", "device", "backend"):
        assert key in on_disk
    assert json.loads((out / TrainOutputs.CONFIG).read_text())["steps"] == 60
    renders = sorted((out / "renders").glob("*.png"))
    assert len(renders) == metrics["eval_images"] >= 1

    from plyfile import PlyData

    vertex = PlyData.read(str(out / "splat.ply"))["vertex"]
    names = [p.name for p in vertex.properties]
    expected = (
        ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
        + [f"f_rest_{i}" for i in range(9)]  # quick trains SH degree 1: 3 bands x 3 colours
        + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    )
    assert names == expected
    assert all(vertex.data.dtype[name] == np.dtype("<f4") for name in names)
    assert len(vertex.data) == metrics["num_gaussians"]
    splats = read_ply(out / "splat.ply")
    assert np.isfinite(splats.means).all() and splats.sh_degree == 1
    checkpoint = torch.load(out / "checkpoints" / TrainOutputs.CHECKPOINT, weights_only=False)
    np.testing.assert_array_equal(splats.means, checkpoint["params"]["means"].numpy())
    np.testing.assert_array_equal(splats.shN, checkpoint["params"]["shN"].numpy())


def test_a_time_budget_lays_the_refine_window_onto_the_budget():
    budgeted = TrainConfig.from_preset("quick", {"steps": "100", "refine_stop": "80", "time_budget_s": "50"})
    assert not trainer_module.refine_window_closed(budgeted, 39.9)
    assert trainer_module.refine_window_closed(budgeted, 40.0)  # 80 of 100 steps -> 80% of 50 s
    assert not trainer_module.refine_window_closed(TrainConfig.from_preset("quick", {"time_budget_s": "0"}), 1e6)
    late = TrainConfig.from_preset("quick", {"steps": "100", "refine_stop": "500", "time_budget_s": "50"})
    assert not trainer_module.refine_window_closed(late, 49.9)


@pytest.mark.slow
def test_densification_ends_when_the_refine_window_closes(sample_sfm, tmp_path, monkeypatch):
    settings = {
        **FAST,
        "steps": "30",
        "eval_every": "30",
        "refine_start": "5",
        "refine_every": "5",
        "refine_stop": "30",
    }
    grown = train(sample_sfm, tmp_path / "grown", TrainConfig.from_preset("quick", settings))
    # As if the budget's refine share were spent after the first step: asked before every step, "no" only once.
    answers = iter([False])
    monkeypatch.setattr(trainer_module, "refine_window_closed", lambda config, elapsed_s: next(answers, True))
    held = train(sample_sfm, tmp_path / "held", TrainConfig.from_preset("quick", settings))
    assert grown["refine_stop_step"] == 30 and held["refine_stop_step"] == 1
    import pycolmap

    points = pycolmap.Reconstruction(str(sample_sfm / "sparse" / "0")).num_points3D()
    assert held["num_gaussians"] == points < grown["num_gaussians"]  # one per SfM point: never split or pruned


@pytest.mark.slow
def test_sigterm_checkpoints_and_a_restart_resumes(sample_sfm, tmp_path):
    out = tmp_path / "out"
    args = [
        str(sample_sfm),
        str(out),
        "--preset",
        "quick",
        "--steps",
        "40",
        "--checkpoint-every",
        "1000",
        "--progress-every",
        "5",
        "--resolution-scale",
        "0.25",
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "spaceport.cli", "train", *args],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 120
    for line in process.stderr:
        if "step 10/40" in line or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGTERM)
    rest = process.stderr.read()
    assert process.wait(timeout=60) == 40, rest
    assert "checkpoint is saved" in rest
    saved = torch.load(out / "checkpoints" / TrainOutputs.CHECKPOINT, weights_only=False)
    assert 10 <= saved["step"] < 40
    assert json.loads((out / "metrics.json").read_text())["error"]["code"] == "interrupted"

    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 40 and "error" not in metrics
    assert (out / "splat.ply").is_file()
    assert metrics["eval_history"][0]["step"] == 0  # the history from before the interruption is kept


def test_nan_loss_stops_and_keeps_the_last_checkpoint(sample_sfm, tmp_path, monkeypatch):
    real = trainer_module.rasterize
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        image, alpha, meta = real(*args, **kwargs)
        calls["n"] += 1
        return (image * float("nan") if calls["n"] > 4 else image), alpha, meta

    monkeypatch.setattr(trainer_module, "rasterize", poisoned)
    config = TrainConfig.from_preset("quick", {**FAST, "steps": "20", "checkpoint_every": "1", "eval_every": "100"})
    with pytest.raises(NaNLossError) as error:
        train(sample_sfm, tmp_path / "out", config)
    assert "last good checkpoint" in error.value.message
    saved = torch.load(tmp_path / "out" / "checkpoints" / TrainOutputs.CHECKPOINT, weights_only=False)
    assert all(torch.isfinite(t).all() for t in saved["params"].values())
    assert saved["step"] == error.value.details["step"]


def test_out_of_memory_suggests_smaller_settings(sample_sfm, tmp_path, monkeypatch):
    def exhausted(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(trainer_module.Trainer, "evaluate", lambda self, *a, **k: {"psnr": 0.0, "ssim": 0.0})
    monkeypatch.setattr(trainer_module, "rasterize", exhausted)
    with pytest.raises(OutOfMemoryError) as error:
        train(sample_sfm, tmp_path / "out", TrainConfig.from_preset("quick", FAST))
    assert "--resolution-scale" in error.value.message and "--max-gaussians" in error.value.message


@pytest.mark.slow
def test_sagemaker_training_job_layout(sample_sfm, tmp_path, monkeypatch):
    monkeypatch.setenv("SPACEPORT_SAGEMAKER_ROOT", str(tmp_path))
    assert main([]) == 32  # no sfm channel yet: named error and SageMaker's failure file
    assert "spaceport sfm" in (tmp_path / "output" / "failure").read_text()

    channel = tmp_path / "input" / "data" / "sfm"
    shutil.copytree(sample_sfm, channel)
    (tmp_path / "input" / "config").mkdir(parents=True)
    (tmp_path / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({"preset": "quick", "steps": "20", "resolution_scale": "0.25", "eval_every": "10"})
    )
    assert main([]) == 0
    assert (tmp_path / "checkpoints" / "splat.ply").is_file()
    assert json.loads((tmp_path / "checkpoints" / TrainOutputs.CONFIG).read_text())["steps"] == 20
    assert json.loads((tmp_path / "checkpoints" / "metrics.json").read_text())["steps"] == 20
    assert (tmp_path / "checkpoints" / TrainOutputs.CHECKPOINT).is_file()
