"""A job that fails, seen in a real browser against `spaceport serve`.

The browser first picks a file that is not a ZIP (refused on the page), then uploads a ZIP
that holds no photos; the real SfM job refuses it, and the job page must end on FAILED with the
stage and the job's own message, not a spinner or a traceback. Then the operator's "reprocess
from stage" starts run r2, which the page follows to its end. Needs only the SfM stage, so it
runs before the whole pipeline exists.
"""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import pytest

from web_browser import console_errors, run_browser, skip_unless_served_as_page

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("spaceport_sfm.cli") is None or importlib.util.find_spec("spaceport.local.commands") is None,
                       reason="needs the SfM job and the local runtime (spaceport serve)"),
]


OWNER = {"email": "failing-pilot@example.com", "password": "a long test password"}


@pytest.fixture(scope="module")
def failed_job(spaceport_serve: str, screenshot_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    files = tmp_path_factory.mktemp("failed-job-files")
    not_photos = files / "notes.zip"
    with zipfile.ZipFile(not_photos, "w") as archive:
        archive.writestr("flight-notes.txt", "no photos in here")
    not_zip = files / "photo.jpg.zip"
    not_zip.write_bytes(b"\xff\xd8\xff\xe0 a JPEG renamed to .zip")
    shots = screenshot_dir / "failed-job"
    shots.mkdir(exist_ok=True)
    return run_browser({"kind": "upload", "url": f"{spaceport_serve}/", "zip": str(not_photos), "notZip": str(not_zip),
                        "signUp": OWNER, "preset": "quick", "screenshotDir": str(shots),
                        "timeoutMs": 180_000, "reprocessFrom": "sfm"}, timeout_s=420)


def test_a_file_that_is_not_a_zip_is_refused_on_the_page(failed_job: dict, spaceport_serve: str) -> None:
    refused = failed_job["notZipMessage"]
    assert refused["text"] == "photo.jpg.zip is not a ZIP file. Put the photos in a .zip and try again."
    assert refused["url"] == f"{spaceport_serve}/"


def test_failed_job_shows_the_reason_in_plain_words(failed_job: dict) -> None:
    assert failed_job["status"] == "FAILED", failed_job
    assert failed_job["seen"][-1]["stage"] == "sfm"
    reason = failed_job["errorText"]
    assert reason.startswith("Structure from motion failed:"), reason
    assert len(reason) > len("Structure from motion failed: ") + 10 and "Traceback" not in reason, reason
    assert failed_job["links"] == [] and failed_job["viewer"] is None
    assert console_errors(failed_job) == []


def test_operator_reprocess_starts_a_new_run(failed_job: dict) -> None:
    # Reprocessing the same photos makes a new run that fails the same way, on the same page.
    reprocess = failed_job["reprocess"]
    assert reprocess["runId"] == "r2" and reprocess["status"] == "FAILED", reprocess
    assert reprocess["notice"] == "A new run from Structure from motion was requested."


def test_a_job_page_loads_directly(failed_job: dict, spaceport_serve: str, screenshot_dir: Path) -> None:
    url = f"{spaceport_serve}/jobs/{failed_job['jobId']}"
    skip_unless_served_as_page(url)
    page = run_browser({"kind": "job", "url": url, "signIn": OWNER,
                        "screenshot": str(screenshot_dir / "failed-job" / "03-direct-load.png")}, timeout_s=120)
    assert page["status"] == "FAILED", page
    assert console_errors(page) == []
