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

    def do_POST(self) -> None:
        """A POST to one of the extra files answers with that file (a stand-in for an API call)."""
        route = self.path.split("?", 1)[0]
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if route not in self.extra_files:
            self.send_error(404)
            return
        body = self.extra_files[route].read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


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


# The measured scene (east-north-up metres): a ground of GROUND_SIZE around the origin and a
# block of BLOCK_SIZE (east, north, up) with its south-west foot at BLOCK_CORNER.
GROUND_SIZE = (40.0, 30.0)
BLOCK_SIZE = (10.0, 8.0, 6.0)
BLOCK_CORNER = (4.0, 2.0)
SURFACE_SPACING = 0.4  # metres between the Gaussians of a surface


def write_measured_scene(path: Path) -> int:
    """A georeferenced scene of known size: a chequered ground and a block standing on it.

    Each surface is a grid of flat, opaque Gaussians (sigma half the spacing), so it renders and
    picks as a closed surface at its exact height. Returns the number of Gaussians.
    """
    from spaceport.splats import SH_C0, Splats, write_ply

    def sheet(u: np.ndarray, v: np.ndarray, place) -> np.ndarray:
        uu, vv = np.meshgrid(u, v, indexing="ij")
        return place(uu.ravel(), vv.ravel())

    step = SURFACE_SPACING
    (gx, gy), (bx, by, bz), (cx, cy) = GROUND_SIZE, BLOCK_SIZE, BLOCK_CORNER
    grid = lambda lo, hi: np.arange(lo + step / 2, hi, step)  # noqa: E731
    parts = [  # (points [M, 3], normal axis)
        (sheet(grid(-gx / 2, gx / 2), grid(-gy / 2, gy / 2), lambda u, v: np.stack([u, v, 0 * u], 1)), 2),
        (sheet(grid(cx, cx + bx), grid(cy, cy + by), lambda u, v: np.stack([u, v, 0 * u + bz], 1)), 2),
        (sheet(grid(cx, cx + bx), grid(0, bz), lambda u, v: np.stack([u, 0 * u + cy, v], 1)), 1),
        (sheet(grid(cx, cx + bx), grid(0, bz), lambda u, v: np.stack([u, 0 * u + cy + by, v], 1)), 1),
        (sheet(grid(cy, cy + by), grid(0, bz), lambda u, v: np.stack([0 * u + cx, u, v], 1)), 0),
        (sheet(grid(cy, cy + by), grid(0, bz), lambda u, v: np.stack([0 * u + cx + bx, u, v], 1)), 0),
    ]
    means = np.concatenate([points for points, _ in parts])
    splats = Splats.empty(len(means))
    splats.means = means.astype(np.float32)
    splats.log_scales[:] = np.log(step / 2)
    offset = 0
    for points, normal in parts:  # thin along the surface's normal
        splats.log_scales[offset : offset + len(points), normal] = np.log(step / 20)
        offset += len(points)
    splats.opacity_logits[:] = 6.0
    checker = ((np.floor(means[:, 0] / 2) + np.floor(means[:, 1] / 2) + np.floor(means[:, 2] / 2)) % 2)[:, None]
    rgb = np.where(checker > 0, [0.75, 0.7, 0.55], [0.35, 0.45, 0.3])
    rgb[offset - sum(len(p) for p, _ in parts[1:]) :] = np.where(checker[len(parts[0][0]) :] > 0, [0.8, 0.3, 0.25], [0.6, 0.2, 0.2])
    splats.sh0 = ((rgb - 0.5) / SH_C0).astype(np.float32)
    write_ply(splats, path)
    return len(splats)


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
