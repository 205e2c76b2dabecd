"""Training on what drone captures bring: many photos, large photos, a sky, exposure changes, a time budget."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from spaceport_train.config import TrainConfig
from spaceport_train.data import load_scene
from spaceport_train.trainer import train


def test_presets_know_their_device():
    gpu, cpu = (TrainConfig.from_preset("default", {"device": device}) for device in ("cuda", "cpu"))
    assert gpu.steps == 30_000 and gpu.refine_stop == 15_000 and gpu.reset_every == 3_000  # gsplat's schedule
    assert gpu.max_image_size == 1600 and cpu.max_image_size < gpu.max_image_size
    assert cpu.steps < gpu.steps and cpu.time_budget_s > 0
    assert "threads" not in TrainConfig.__dataclass_fields__  # thread caps come from spaceport.compute only


def test_photos_are_read_lazily_within_the_memory_budget(sample_sfm, tmp_path):
    one_photo_mb = 120 * 90 * 3 / 2**20
    scene = load_scene(sample_sfm, resolution_scale=0.25, image_cache_mb=1.5 * one_photo_mb)
    assert scene.images.loads == 0  # loading the scene decodes no photo
    settings = {"steps": "20", "resolution_scale": "0.25", "image_cache_mb": str(1.5 * one_photo_mb)}
    metrics = train(sample_sfm, tmp_path / "out", TrainConfig.from_preset("quick", settings))
    memory = metrics["image_memory"]
    assert memory["peak_cached_mb"] <= 1.5 * one_photo_mb
    # Room for one photo only: photos are read again from disk, but training goes on.
    assert memory["photo_reads"] > len(scene.views) and metrics["steps"] == 20


def test_training_size_is_capped_and_the_reason_reported(sample_sfm, tmp_path):
    metrics = train(
        sample_sfm, tmp_path / "out", TrainConfig.from_preset("quick", {"steps": "5", "max_image_size": "100"})
    )
    resolution = metrics["resolution"]
    assert max(resolution["width"], resolution["height"]) == 100
    assert "capped at 100 px" in resolution["reason"]


@pytest.mark.slow
def test_the_time_budget_bounds_the_whole_job(sample_sfm, tmp_path):
    settings = {"steps": "100000", "resolution_scale": "0.25", "time_budget_s": "12", "eval_every": "40"}
    started = time.monotonic()
    metrics = train(sample_sfm, tmp_path / "out", TrainConfig.from_preset("quick", settings))
    total = time.monotonic() - started
    assert metrics["steps"] < 100_000 and metrics["total_wall_s"] <= 12.0
    assert total <= 12.0, total  # loading, evaluations and writing included
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["psnr"] == metrics["psnr"]


def _oblique_scene(folder, exposure_stops: float):
    """A low oblique orbit that sees the sky; the reconstruction from the truth.

    The model is made from the true cameras (``write_truth_reconstruction``: points where the
    photos see the scene, none in the sky), so these tests are about training, not SfM.
    """
    from spaceport_sfm.sample import SampleOptions, make_sample, write_truth_reconstruction

    options = SampleOptions(sky=True, exposure_stops=exposure_stops)
    capture = make_sample(folder / "oblique.zip", n=16, width=320, height=240, options=options)
    return capture, write_truth_reconstruction(capture, folder / "sfm")


@pytest.fixture(scope="module")
def sky_scene(tmp_path_factory):
    return _oblique_scene(tmp_path_factory.mktemp("sky"), exposure_stops=0.0)


@pytest.fixture(scope="module")
def exposure_scene(tmp_path_factory):
    """The same, with each shot's exposure off by up to 0.7 stops."""
    return _oblique_scene(tmp_path_factory.mktemp("exposure"), exposure_stops=0.7)


SKY_RUN = {"steps": "60", "eval_every": "60", "max_image_size": "200", "exposure": "none"}


def _sky_psnr(capture, out) -> float:
    """Held-out PSNR over the sky's pixels only, from the saved renders (render | photo)."""
    from PIL import Image

    from spaceport_sfm.sample import sky_mask

    cameras = {camera.name.rsplit(".", 1)[0]: camera for camera in capture.truth.cameras}
    errors = []
    for png in sorted((out / "renders").glob("*.png")):
        pair = np.asarray(Image.open(png), dtype=np.float64) / 255.0
        width = pair.shape[1] // 2
        mask = sky_mask(capture.truth, cameras[png.stem], width, pair.shape[0])
        errors.append(((pair[:, :width] - pair[:, width:])[mask] ** 2).mean())
    return float(-10 * np.log10(np.mean(errors)))


@pytest.mark.slow
def test_a_sky_without_sfm_points_converges_with_the_sky_background(sky_scene, tmp_path):
    capture, sfm = sky_scene
    black = train(sfm, tmp_path / "black", TrainConfig.from_preset("quick", {**SKY_RUN, "background": "black"}))
    sky = train(sfm, tmp_path / "sky", TrainConfig.from_preset("quick", {**SKY_RUN, "background": "sky"}))
    assert sky["background"]["mode"] == "sky" and black["background"]["mode"] == "black"
    black_sky, learned_sky = _sky_psnr(capture, tmp_path / "black"), _sky_psnr(capture, tmp_path / "sky")
    assert learned_sky > black_sky + 5.0, (learned_sky, black_sky)
    assert sky["psnr"] > black["psnr"]


@pytest.mark.slow
def test_per_photo_exposure_corrections_follow_each_shots_exposure(exposure_scene, tmp_path):
    import torch

    capture, sfm = exposure_scene
    run = {**SKY_RUN, "exposure": "affine", "exposure_lr": "1e-2"}
    metrics = train(sfm, tmp_path / "out", TrainConfig.from_preset("quick", run))
    assert metrics["exposure"]["mode"] == "affine" and "no correction" in metrics["exposure"]["held_out"]
    saved = torch.load(tmp_path / "out" / "checkpoints" / "checkpoint.pt", weights_only=False)
    learned = torch.diagonal(saved["extras"]["exposure_matrix"], dim1=1, dim2=2).mean(dim=1).numpy()
    scene = load_scene(sfm, eval_every_nth_image=8)
    truth = {camera.name: camera.exposure_gain for camera in capture.truth.cameras}
    wanted = np.array([truth[scene.views[i].name] for i in scene.train_ids])
    # A bright shot needs its render brightened: the learned gains rise with the shots' exposure.
    assert np.corrcoef(np.log(learned), np.log(wanted))[0, 1] > 0.8
