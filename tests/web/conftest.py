"""Fixtures for the browser tests: Debian's Chromium, the built site, a static server, the driver.

The browser is driven by ``browser.mjs`` (playwright-core from ``web/node_modules``); these tests
skip with a reason when Chromium, node or the site's node_modules are missing.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
WEB = REPO / "web"
DRIVER = Path(__file__).with_name("browser.mjs")
CHROMIUM = Path(os.environ.get("SPACEPORT_CHROMIUM", "/usr/bin/chromium"))


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; CI installs it)")
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the browser driver is a node script")
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        pytest.skip("web/node_modules is missing: run `make web` (needs npm)")
    return CHROMIUM


@pytest.fixture(scope="session")
def web_dist(chromium: Path) -> Path:
    """web/dist, rebuilt when any source is newer than the last build."""
    dist = WEB / "dist"
    built = dist / "index.html"
    sources = [p for p in (WEB / "src").rglob("*") if p.is_file()] + [WEB / "index.html", WEB / "vite.config.js"]
    if not built.exists() or max(p.stat().st_mtime for p in sources) > built.stat().st_mtime:
        subprocess.run(["npm", "run", "build", "--silent"], cwd=WEB, check=True, capture_output=True, timeout=180)
    return dist


class _SiteHandler(SimpleHTTPRequestHandler):
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


@pytest.fixture(scope="session")
def static_site(web_dist: Path) -> Iterator[StaticSite]:
    site = StaticSite(web_dist)
    handler = type("Handler", (_SiteHandler,), {"extra_files": site.extra_files, "not_found": site.not_found})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(web_dist)))
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site
    server.shutdown()
    server.server_close()


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


@pytest.fixture(scope="session")
def compressed_scene(tmp_path_factory: pytest.TempPathFactory) -> CompressedScene:
    """A ``scene.sog`` made by our own ``spaceport compress`` from a generated splat."""
    import importlib.util

    if importlib.util.find_spec("spaceport_compress.cli") is None:
        pytest.skip("spaceport compress (spaceport_compress.cli) is not available yet")
    work = tmp_path_factory.mktemp("web-scene")
    count = write_test_splat(work / "splat.ply")
    completed = subprocess.run([sys.executable, "-m", "spaceport.cli", "compress", str(work / "splat.ply"), str(work / "out")],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, f"spaceport compress failed:\n{completed.stderr[-3000:]}"
    return CompressedScene(work / "out" / "scene.sog", count)


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests leave their screenshots for a person to look at:
    ``$SPACEPORT_WEB_SCREENSHOTS`` when set, else ``web-screenshots`` in pytest's session folder."""
    chosen = os.environ.get("SPACEPORT_WEB_SCREENSHOTS")
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        return Path(chosen)
    return tmp_path_factory.mktemp("web-screenshots", numbered=False)


@pytest.fixture(scope="session")
def spaceport_serve(web_dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`spaceport serve` on a free port, with the built site; stopped (Ctrl-C) afterwards."""
    from spaceport.local.aws import free_port

    port = free_port()
    env = {**os.environ, "SPACEPORT_API_KEY": secrets.token_urlsafe(16)}
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "spaceport.cli", "serve", "--port", str(port),
                                "--out", str(tmp_path_factory.mktemp("serve-out"))],
                               cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/config.json", timeout=2).read()
                break
            except (urllib.error.URLError, OSError):
                assert process.poll() is None, f"spaceport serve exited; see {log.name}"
                assert time.monotonic() < deadline, f"spaceport serve did not come up in 90 s; see {log.name}"
                time.sleep(0.5)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


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
