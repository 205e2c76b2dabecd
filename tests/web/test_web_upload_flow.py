"""Upload -> progress -> rendered splat, in a real browser against ``spaceport serve``.

One pipeline run: the browser signs up, uploads the generated sample with the quick preset,
watches the job page until the job ends, opens the viewer from the job page, makes a share link,
then opens that link as a fresh page load, signed in as no one. Screenshots of every step are
left in the session's ``web-screenshots/upload-flow`` folder.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from web_browser import console_errors, pixel_spread, run_browser, skip_unless_served_as_page

# The modules a job needs to go from photos to a .sog (checked before any fixture does work).
PIPELINE_MODULES = ("spaceport_sfm.cli", "spaceport_train.cli", "spaceport_compress.cli", "spaceport.local.commands")
MISSING = [module for module in PIPELINE_MODULES if importlib.util.find_spec(module) is None]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"the pipeline is not complete: {', '.join(MISSING)} missing, so no job can finish"),
]

JOB_STAGES = ["sfm", "train", "compress"]
# The whole pipeline on the generated sample with the quick preset; CPU training dominates, and
# on a machine shared with other work it can take many minutes.
PIPELINE_TIMEOUT_S = int(os.environ.get("SPACEPORT_WEB_PIPELINE_TIMEOUT_S", "1500"))
MIN_PIXEL_SPREAD = 5.0


@pytest.fixture(scope="module")
def small_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated drone sample, small (12 photos, 320x240): CPU training time follows pixels."""
    from spaceport_sfm.sample import make_sample

    return make_sample(tmp_path_factory.mktemp("upload-sample") / "sample.zip", n=12, seed=0, width=320, height=240).zip_path


@pytest.fixture(scope="module")
def upload_flow(spaceport_serve: str, small_capture: Path, screenshot_dir: Path) -> dict:
    shots = screenshot_dir / "upload-flow"
    shots.mkdir(exist_ok=True)
    return run_browser({
        "kind": "upload", "url": f"{spaceport_serve}/", "zip": str(small_capture),
        "signUp": {"email": "pilot@example.com", "password": "a long test password"}, "share": True,
        "preset": "quick", "screenshotDir": str(shots),
        "timeoutMs": PIPELINE_TIMEOUT_S * 1000,
    }, timeout_s=PIPELINE_TIMEOUT_S + 180)


def test_upload_shows_the_stages_advance_to_a_finished_job(upload_flow: dict) -> None:
    assert upload_flow["status"] == "SUCCEEDED", upload_flow
    assert upload_flow["errorText"] == ""
    stages = [JOB_STAGES.index(seen["stage"]) for seen in upload_flow["seen"] if seen["stage"] in JOB_STAGES]
    assert stages == sorted(stages), f"the job page went backwards: {upload_flow['seen']}"
    assert len(set(stages)) >= 2, f"the job page showed no stage change: {upload_flow['seen']}"
    # Live progress: some stage was shown part-way, between its start and its end.
    partway = {stage: [p for p in shown if 0 < p < 100] for stage, shown in upload_flow["percentsShown"].items()}
    assert any(partway.values()), f"the job page never showed a stage part-way: {upload_flow['percentsShown']}"
    assert {"sog", "ply"} <= {link["name"] for link in upload_flow["links"]}
    # The headline figures, as the email gives them.
    facts = upload_flow["facts"]
    assert facts["Photos used"].endswith(" of 12") and facts["Held-out PSNR"].endswith(" dB"), facts
    assert facts["Scene size (.sog)"].split()[-1] in ("B", "kB", "MB"), facts
    assert console_errors(upload_flow) == []


def test_viewer_opened_from_the_job_renders_the_splat(upload_flow: dict, screenshot_dir: Path) -> None:
    viewer = upload_flow["viewer"]
    assert viewer is not None, "the finished job page had no 'Open viewer'"
    assert viewer["state"] == "ready", viewer
    canvas = screenshot_dir / "upload-flow" / "03-viewer.canvas.png"
    spread = pixel_spread(canvas)
    assert spread > MIN_PIXEL_SPREAD, f"the canvas looks blank (grey-level spread {spread:.2f}); see {canvas}"
    assert console_errors(viewer) == []


def test_a_share_link_opens_the_viewer_for_anyone(spaceport_serve: str, upload_flow: dict, screenshot_dir: Path) -> None:
    assert upload_flow["status"] == "SUCCEEDED", f"the job did not finish ({upload_flow['status']}), so it has no scene"
    link = upload_flow["shareLink"]
    assert link and link.startswith(f"{spaceport_serve}/view/share/"), upload_flow
    skip_unless_served_as_page(link)
    result = run_browser({"kind": "viewer", "timeoutMs": 60_000,
                          "pages": [{"url": link, "screenshot": str(screenshot_dir / "upload-flow" / "04-share-link.png")}]},
                         timeout_s=120)
    page = result["pages"][0]
    assert page["state"] == "ready", page
    assert console_errors(page) == []
