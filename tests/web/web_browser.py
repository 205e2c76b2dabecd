"""Helpers for the browser tests: the browser driver, a static site server, screenshots, a test splat.

The browser is Debian's headless Chromium driven by ``browser.mjs`` (playwright-core from
``web/node_modules``). Fixtures that use these live in this folder's ``conftest.py``.

Example::

    result = run_browser({"kind": "viewer", "timeoutMs": 60_000,
                          "pages": [{"url": f"{site.url}/view?sog=...", "screenshot": "shot.png"}]}, timeout_s=120)
    assert result["pages"][0]["state"] == "ready" and pixel_spread(Path("shot.canvas.png")) > 5
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "web"
DRIVER = Path(__file__).with_name("browser.mjs")
CHROMIUM = Path(os.environ.get("SPACEPORT_CHROMIUM", "/usr/bin/chromium"))


class SiteHandler(SimpleHTTPRequestHandler):
    """Serves the built site like `spaceport serve` does: files, else index.html for the app's routes."""

    extra_files: dict[str, Path] = {}
    not_found: set[str] = set()

    def log_message(self, format: str, *args: object) -> None:  # keep pytest's output clean
        pass

    def send_head(self):  # type: ignore[override]
        route = self.path.split("?", 1)[0]
        if route in self.not_found:
            self.send_error(404)
            return None
        if route in self.extra_files:
            target = self.extra_files[route]
            self.path = "/__extra__"
            self.translate_path = lambda _path: str(target)  # type: ignore[method-assign]
        elif not (Path(self.directory) / route.lstrip("/")).is_file():
            self.path = "/index.html"
        return super().send_head()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()


@dataclass
class StaticSite:
    """The built site on a local port, plus extra files (test scenes) and 404 paths by URL path."""

    root: Path
    extra_files: dict[str, Path] = field(default_factory=dict)
    not_found: set[str] = field(default_factory=set)
    url: str = ""

    def add(self, url_path: str, file: Path) -> str:
        self.extra_files[url_path] = file
        return f"{self.url}{url_path}"


def run_browser(plan: dict, timeout_s: float) -> dict:
    """Runs one plan of ``browser.mjs`` in headless Chromium and returns its JSON result."""
    plan = {"webDir": str(WEB), "chromium": str(CHROMIUM), **plan}
    completed = subprocess.run(["node", str(DRIVER), json.dumps(plan)], capture_output=True, text=True,
                               timeout=timeout_s, cwd=REPO)
    lines = completed.stdout.strip().splitlines()
    assert completed.returncode == 0 and lines, f"browser driver failed:\n{completed.stdout}\n{completed.stderr}"
    result = json.loads(lines[-1])
    assert "failure" not in result, result["failure"]
    return result


def pixel_spread(png: Path) -> float:
    """Standard deviation of the screenshot's grey levels: about 0 for a blank canvas."""
    grey = np.asarray(Image.open(png).convert("L"), dtype=np.float64)
    return float(grey.std())


def console_errors(result: dict) -> list[str]:
    return [m["text"] for m in result["console"] if m["type"] in ("error", "pageerror")]


def write_test_splat(path: Path, n: int = 6000, seed: int = 0) -> int:
    """A colourful torus of ``n`` Gaussians, z up (like the pipeline's east-north-up scenes)."""
    from spaceport.splats import SH_C0, Splats, write_ply

    rng = np.random.default_rng(seed)
    around, tube = rng.uniform(0, 2 * np.pi, n), rng.uniform(0, 2 * np.pi, n)
    ring, thickness = 1.0, 0.35
    means = np.stack([(ring + thickness * np.cos(tube)) * np.cos(around),
                      (ring + thickness * np.cos(tube)) * np.sin(around),
                      thickness * np.sin(tube)], axis=1)
    # Hue runs around the ring, so a rendered frame has colour, not just a silhouette.
    rgb = 0.5 + 0.45 * np.stack([np.cos(around), np.cos(around - 2.1), np.cos(around + 2.1)], axis=1)
    splats = Splats.empty(n)
    splats.means = means.astype(np.float32)
    splats.log_scales[:] = np.log(0.035)
    splats.opacity_logits[:] = 2.5
    splats.sh0 = ((rgb - 0.5) / SH_C0).astype(np.float32)
    write_ply(splats, path)
    return n


@dataclass(frozen=True)
class CompressedScene:
    sog: Path
    splats: int


def skip_unless_served_as_page(url: str) -> None:
    """Skips when the server does not answer a browser's direct load of an app route with the app.

    A reload, a bookmark or the email's link loads ``/jobs/<id>`` or ``/view/<job>`` directly; the
    server must answer with ``index.html`` (web/README.md, "What the server provides").
    """
    request = urllib.request.Request(url, headers={"Accept": "text/html"})
    try:
        content_type = urllib.request.urlopen(request, timeout=10).headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        content_type = f"HTTP {error.code}"
    if "text/html" not in content_type:
        pytest.skip(f"spaceport serve answers a browser's load of {url} with {content_type!r}, not the web "
                    "app's index.html: the gateway must serve index.html for the app's routes "
                    "(/jobs/<id>, /view, /view/<job>) when the request accepts text/html (web/README.md)")
