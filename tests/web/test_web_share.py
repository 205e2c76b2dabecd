"""A finished job's page: where the capture is, the exports, an embed snippet, and the scene as one HTML page.

The API is stood in for by static files (``/config.json`` and the job's record, as ``GET
/jobs/{id}`` returns it once the lead's fields are in: ``georeference``, ``flightPath`` and the
``links``); the scene is a real ``.sog`` from our compress stage. The downloaded HTML page is
then opened from disk, with no server, and must show the scene.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from web_browser import CompressedScene, StaticSite, pixel_spread, run_browser

pytestmark = pytest.mark.slow

JOB = "job-share-1"
TOKEN = "S" * 43
FLIGHT_PATH = [[-40.0 + 10 * i, -30.0 + (i % 2) * 60, 80.0] for i in range(9)]  # a lawnmower pass


@pytest.fixture(scope="module")
def shared(static_site: StaticSite, compressed_scene: CompressedScene, screenshot_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> dict:
    files = tmp_path_factory.mktemp("share-api")
    scene = static_site.add(f"/scenes/{JOB}/scene.sog", compressed_scene.sog)
    record = {
        "job_id": JOB, "status": "SUCCEEDED", "stage": "notify", "stage_percent": 100, "run_id": "r1",
        "email": "someone@example.com", "options": {"preset": "quick"},
        "georeference": {"used": True, "frame": "ENU", "origin": {"lat": 47.3769, "lon": 8.5417, "alt": 408.0}},
        "flightPath": FLIGHT_PATH,
        "links": {"sog": scene, "spz": f"{static_site.url}/scenes/{JOB}/scene.spz",
                  "glb": f"{static_site.url}/scenes/{JOB}/scene.glb",
                  "streamed": f"{static_site.url}/scenes/{JOB}/lod/lod-meta.json",
                  "viewer": f"{static_site.url}/view/{JOB}"},
    }
    # The API under /api, so that the page /jobs/<id> and the record do not share a path.
    (files / "config.json").write_text(json.dumps({"apiBaseUrl": f"{static_site.url}/api"}))
    (files / "job.json").write_text(json.dumps(record))
    (files / "share.json").write_text(json.dumps({"jobId": JOB, "shared": True, "token": TOKEN,
                                                  "shareUrl": f"{static_site.url}/view/share/{TOKEN}"}))
    static_site.add("/config.json", files / "config.json")
    static_site.add(f"/api/jobs/{JOB}", files / "job.json")
    static_site.add(f"/api/jobs/{JOB}/share", files / "share.json")
    return run_browser({"kind": "share", "url": f"{static_site.url}/jobs/{JOB}", "download": str(files / f"{JOB}.html"),
                        "screenshot": str(screenshot_dir / "job-share.png"), "timeoutMs": 90_000}, timeout_s=300)


def test_the_job_page_says_where_the_capture_is(shared: dict) -> None:
    assert "47.376900° N, 8.541700° E" in shared["location"]
    assert shared["flightPhotos"] == len(FLIGHT_PATH) and not shared["flightMissing"]


def test_the_job_page_links_the_exports_but_not_the_streamed_index(shared: dict) -> None:
    assert set(shared["links"]) == {"sog", "spz", "glb"}
    assert shared["viewer"] == f"/view/{JOB}"


def test_a_share_link_made_on_the_page_is_shown_with_its_embed_snippet(shared: dict) -> None:
    # The owner's viewer (/view/<job>) needs a sign-in; what is embedded elsewhere is the share link.
    assert shared["shareLink"].endswith(f"/view/share/{TOKEN}")
    assert shared["embed"].startswith("<iframe ") and f"/view/share/{TOKEN}\"" in shared["embed"]


def test_the_html_download_shows_the_scene_from_disk(shared: dict, screenshot_dir: Path,
                                                     compressed_scene: CompressedScene) -> None:
    page = shared["standalone"]
    assert page["state"] == "ready", page
    assert page["splats"] == compressed_scene.splats
    assert pixel_spread(screenshot_dir / "job-share.standalone.canvas.png") > 5
