"""The viewer in a real browser: a .sog from our compress stage renders; bad files fail readably.

One headless Chromium visits five viewer pages (a good scene, a truncated one, one whose images
are not images, a file that is not a SOG at all, and a missing one); each test checks one of them. Screenshots are left in the
session's ``web-screenshots`` folder.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from web_browser import CompressedScene, StaticSite, console_errors, pixel_spread, run_browser

pytestmark = pytest.mark.slow

# Grey-level standard deviation of the canvas screenshot: 0 for a blank canvas (one clear colour).
MIN_PIXEL_SPREAD = 5.0
# A bad file must end in the error message, not an endless spinner.
ERROR_WITHIN_MS = 20_000


@pytest.fixture(scope="module")
def viewer_pages(static_site: StaticSite, compressed_scene: CompressedScene, screenshot_dir: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    files = tmp_path_factory.mktemp("web-bad-scenes")
    whole = compressed_scene.sog.read_bytes()
    (files / "truncated.sog").write_bytes(whole[: len(whole) // 2])
    (files / "not-a-sog.sog").write_bytes(os.urandom(4096))
    # Intact meta.json, broken images: the engine alone would show an empty scene.
    with zipfile.ZipFile(compressed_scene.sog) as good, zipfile.ZipFile(files / "bad-images.sog", "w") as bad:
        for name in good.namelist():
            bad.writestr(name, good.read(name) if name == "meta.json" else b"RIFF\x00\x00\x00\x00WEBP not an image")
    urls = {
        "good": static_site.add("/scenes/scene.sog", compressed_scene.sog),
        "truncated": static_site.add("/scenes/truncated.sog", files / "truncated.sog"),
        "bad_images": static_site.add("/scenes/bad-images.sog", files / "bad-images.sog"),
        "not_a_sog": static_site.add("/scenes/not-a-sog.sog", files / "not-a-sog.sog"),
        "missing": f"{static_site.url}/scenes/missing.sog",
    }
    # The static site answers unknown paths with index.html, as an SPA host does; a missing
    # scene must still be called missing, so it is served by a path that 404s.
    static_site.not_found.add("/scenes/missing.sog")
    pages = [{"url": f"{static_site.url}/view?sog={url}", "screenshot": str(screenshot_dir / f"viewer-{name}.png"),
              "orbit": name == "good"} for name, url in urls.items()]
    result = run_browser({"kind": "viewer", "pages": pages, "timeoutMs": 60_000}, timeout_s=240)
    return dict(zip(urls, result["pages"]))


def test_viewer_renders_a_compressed_scene(viewer_pages: dict[str, dict], compressed_scene: CompressedScene,
                                           screenshot_dir: Path) -> None:
    page = viewer_pages["good"]
    assert page["state"] == "ready", page
    assert page["splats"] == compressed_scene.splats
    assert not page["spinnerVisible"]
    canvas = screenshot_dir / "viewer-good.canvas.png"
    spread = pixel_spread(canvas)
    assert spread > MIN_PIXEL_SPREAD, f"the canvas looks blank (grey-level spread {spread:.2f}); see {canvas}"
    assert console_errors(page) == []


def test_viewer_orbits_on_drag(viewer_pages: dict[str, dict], screenshot_dir: Path) -> None:
    page = viewer_pages["good"]
    assert page["state"] == "ready", page
    assert page["orbitFrames"] > 0, "dragging drew no new frame"
    first = np.asarray(Image.open(screenshot_dir / "viewer-good.canvas.png").convert("L"), dtype=np.float64)
    orbited_png = screenshot_dir / "viewer-good.orbited.canvas.png"
    orbited = np.asarray(Image.open(orbited_png).convert("L"), dtype=np.float64)
    assert pixel_spread(orbited_png) > MIN_PIXEL_SPREAD, f"the scene vanished after orbiting; see {orbited_png}"
    assert np.abs(first - orbited).mean() > 1.0, f"the view did not change after a drag; see {orbited_png}"


@pytest.mark.parametrize(("name", "words"), [
    ("truncated", "damaged"),
    ("bad_images", "damaged: its image"),
    ("not_a_sog", "not a SOG scene"),
    ("missing", "not found"),
])
def test_viewer_explains_a_bad_scene(viewer_pages: dict[str, dict], name: str, words: str) -> None:
    page = viewer_pages[name]
    assert page["state"] == "error", page
    assert page["errorVisible"] and not page["spinnerVisible"]
    assert words in page["errorText"], page["errorText"]
    assert page["waitedMs"] < ERROR_WITHIN_MS
