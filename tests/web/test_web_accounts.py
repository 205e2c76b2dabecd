"""Accounts in a real browser against ``spaceport serve``: sign up, sign in, upload, "my jobs", and
one user cannot open another's job page.

The job itself (a ZIP with no photos) is left to fail in SfM: what matters here is whose it is.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from web_browser import console_errors, run_browser

pytestmark = pytest.mark.slow

OWNER = {"email": "owner@example.com", "password": "correct horse battery"}
STRANGER = {"email": "stranger@example.com", "password": "another long password"}


@pytest.fixture(scope="module")
def accounts(spaceport_serve: str, screenshot_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    files = tmp_path_factory.mktemp("accounts-files")
    photos = files / "photos.zip"
    with zipfile.ZipFile(photos, "w") as archive:
        archive.writestr("flight-notes.txt", "not a photo, so SfM ends the job early")
    shots = screenshot_dir / "accounts"
    shots.mkdir(exist_ok=True)
    result = run_browser({"kind": "accounts", "url": f"{spaceport_serve}/", "zip": str(photos), "owner": OWNER,
                          "stranger": STRANGER, "screenshotDir": str(shots)}, timeout_s=300)
    assert "failure" not in result, result.get("failure")
    return result


def test_sign_up_then_upload_as_the_signed_in_user(accounts: dict) -> None:
    assert accounts["account"] == OWNER["email"]
    assert accounts["resultAddress"] == f"The result is emailed to {OWNER['email']}."
    assert accounts["ownerView"]["status"] in ("QUEUED", "RUNNING", "FAILED"), accounts["ownerView"]


def test_my_jobs_lists_the_users_own_jobs(accounts: dict) -> None:
    assert accounts["myJobs"] == [accounts["jobId"]]
    assert accounts["strangerJobs"] == []


def test_sign_in_takes_the_right_password_only(accounts: dict) -> None:
    assert accounts["wrongPassword"], "a wrong password says why"
    assert accounts["signedInAgain"] == OWNER["email"]


def test_another_user_cannot_open_the_job_page(accounts: dict) -> None:
    stranger = accounts["strangerView"]
    assert stranger["status"] is None and stranger["statusLine"].startswith("There is no job"), stranger
    signed_out = accounts["signedOutView"]
    assert signed_out["status"] is None and signed_out["signInLink"], signed_out


def test_no_console_errors_but_the_refusals(accounts: dict) -> None:
    # The browser logs each refused API call (401 signed out, 404 for the stranger); nothing else.
    errors = [e for e in console_errors(accounts) if "401" not in e and "404" not in e and "400" not in e]
    assert errors == []
