"""Time to the first image in the viewer, and bytes fetched by then: streamed scene against scene.sog.

One splat (default the guitar) is compressed by the job (scene.sog and the streamed lod/), the
built site and those files are served on loopback, and headless Chromium (the browser tests'
driver, SwiftShader WebGL) opens ``/view?lod=...`` and ``/view?sog=...`` on a throttled network
(Chromium's own emulation: ``--kbps`` down, ``--latency-ms`` per request). For each: the time from
navigation to the first drawn image of the scene, the scene's bytes fetched by then, and the
scene's bytes once the streaming has come to rest. Medians of ``--repeats``.

    .venv/bin/python bench/viewer_stream.py [--repeats 3] [--kbps 2000] [--latency-ms 60] [--splat PLY]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "web"))

from web_browser import WEB, SiteHandler, StaticSite, run_browser  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kbps", type=float, default=2000)
    parser.add_argument("--latency-ms", type=float, default=60)
    datasets = Path(os.environ.get("SPACEPORT_DATASETS", "../shared/datasets"))
    parser.add_argument("--splat", type=Path, default=datasets / "splats" / "playcanvas_guitar.ply")
    args = parser.parse_args()
    if not (WEB / "dist" / "index.html").is_file():
        raise SystemExit("the web app is not built: run make web")
    print(f"load average {os.getloadavg()[0]:.1f} at the start")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        subprocess.run(
            [sys.executable, "-m", "spaceport.cli", "compress", "--fidelity-views", "0", "--no-exports",
             str(args.splat), str(out)],
            check=True, capture_output=True,
        )  # fmt: skip
        site = StaticSite(WEB / "dist")
        handler = type("Handler", (SiteHandler,), {"extra_files": site.extra_files, "not_found": site.not_found})
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(WEB / "dist")))
        site.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        for file in out.rglob("*"):
            if file.is_file():
                site.add(f"/scene/{file.relative_to(out).as_posix()}", file)
        throttle = {"latencyMs": args.latency_ms, "downloadKbps": args.kbps}
        variants = {
            "streamed (lod-meta.json)": (f"/view?lod={site.url}/scene/lod/lod-meta.json", f"{site.url}/scene/lod/"),
            "single file (scene.sog)": (f"/view?sog={site.url}/scene/scene.sog", f"{site.url}/scene/scene.sog"),
        }
        print(
            f"{args.splat.name}, throttled to {args.kbps:.0f} kbit/s and {args.latency_ms:.0f} ms, medians of {args.repeats}"
        )
        print("| scene | first image (s from navigation) | scene MB by then | chunks by then | scene MB at rest |")
        print("|---|---|---|---|---|")
        for name, (path, prefix) in variants.items():
            runs = []
            for repeat in range(args.repeats):
                runs.append(
                    run_browser(
                        {
                            "kind": "stream",
                            "url": f"{site.url}{path}",
                            "scenePrefix": prefix,
                            "screenshot": str(Path(tmp) / f"{repeat}.png"),
                            "timeoutMs": 300_000,
                            "throttle": throttle,
                        },
                        timeout_s=900,
                    )  # fmt: skip
                )
            assert all(run["state"] == "ready" for run in runs), runs
            print(
                f"| {name} | {median(runs, 'firstImageAt') / 1000:.2f} | {median(runs, 'bytesAtFirstImage') / 1e6:.3f} "
                f"| {median(runs, 'chunksAtFirstImage'):.0f} | {median(runs, 'bytesAtRest') / 1e6:.3f} |",
                flush=True,
            )
        server.shutdown()


def median(runs: list[dict], key: str) -> float:
    return float(statistics.median(run[key] or 0 for run in runs))


if __name__ == "__main__":
    main()
