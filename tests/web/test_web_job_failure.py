"""A job that fails shows its reason in plain words on the job page (real browser, `spaceport serve`).

The browser uploads a ZIP that holds no photos; the real SfM job refuses it, and the job page
must end on FAILED with the stage and the job's own message, not a spinner or a traceback. Then
the operator's "reprocess from stage" starts run r2, which the page follows to its end.
Needs only the SfM stage, so it runs before the whole pipeline exists.
"""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import pytest

from conftest import console_errors, run_browser

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("spaceport_sfm.cli") is None or importlib.util.find_spec("spaceport.local.cli") is None,
                       reason="needs the SfM job and the local runtime (spaceport serve)"),
]


def test_failed_job_shows_the_reason_in_plain_words(spaceport_serve: str, screenshot_dir: Path, tmp_path: Path) -> None:
    not_photos = tmp_path / "notes.zip"
    with zipfile.ZipFile(not_photos, "w") as archive:
        archive.writestr("flight-notes.txt", "no photos in here")
    shots = screenshot_dir / "failed-job"
    shots.mkdir(exist_ok=True)
    result = run_browser({"kind": "upload", "url": f"{spaceport_serve}/", "zip": str(not_photos),
                          "email": "pilot@example.com", "preset": "quick", "screenshotDir": str(shots),
                          "timeoutMs": 180_000, "reprocessFrom": "sfm"}, timeout_s=420)
    assert result["status"] == "FAILED", result
    assert result["seen"][-1]["stage"] == "sfm"
    reason = result["errorText"]
    assert reason.startswith("Structure from motion failed:"), reason
    assert len(reason) > len("Structure from motion failed: ") + 10 and "Traceback" not in reason, reason
    assert result["links"] == [] and result["viewer"] is None
    # Reprocessing the same photos makes a new run that fails the same way, on the same page.
    assert result["reprocess"]["runId"] == "r2" and result["reprocess"]["status"] == "FAILED", result["reprocess"]
    assert result["reprocess"]["notice"] == "A new run from Structure from motion was requested."
    assert console_errors(result) == []
