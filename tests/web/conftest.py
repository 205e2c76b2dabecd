"""Fixtures for the browser tests: Debian's Chromium, the built site, a static server, a compressed
scene, `spaceport serve`. They skip with a reason when Chromium, node or the site's node_modules
are missing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from web_browser import CHROMIUM, REPO, WEB, CompressedScene, StaticSite, SiteHandler, write_test_splat


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
    sources = [p for p in (WEB / "src").rglob("*") if p.is_file()] + [WEB / "index.html", WEB / "vite.config.js",
                                                                     WEB / "standalone.html", WEB / "vite.standalone.config.js"]
    if not built.exists() or max(p.stat().st_mtime for p in sources) > built.stat().st_mtime:
        subprocess.run(["npm", "run", "build", "--silent"], cwd=WEB, check=True, capture_output=True, timeout=180)
    return dist

@pytest.fixture(scope="session")
def static_site(web_dist: Path) -> Iterator[StaticSite]:
    site = StaticSite(web_dist)
    handler = type("Handler", (SiteHandler,), {"extra_files": site.extra_files, "not_found": site.not_found})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(web_dist)))
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site
    server.shutdown()
    server.server_close()

@pytest.fixture(scope="session")
def compressed_scene(tmp_path_factory: pytest.TempPathFactory) -> CompressedScene:
    """A ``scene.sog`` made by our own ``spaceport compress`` from a generated splat."""
    import importlib.util

    if importlib.util.find_spec("spaceport_compress.cli") is None:
        pytest.skip("spaceport compress (spaceport_compress.cli) is not available yet")
    work = tmp_path_factory.mktemp("web-scene")
    count = write_test_splat(work / "splat.ply")
    # No fidelity renders: the viewer needs the bundle, not the compression's PSNR (half the time).
    completed = subprocess.run([sys.executable, "-m", "spaceport.cli", "compress", "--fidelity-views", "0",
                                str(work / "splat.ply"), str(work / "out")],
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
    env = dict(os.environ)
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
