"""The viewer measures a georeferenced scene in metres and streams a streamed scene, in a real browser.

The scene is generated with known geometry (``write_measured_scene``: a 40 x 30 m ground and a
10 x 8 x 6 m block), compressed by our own ``spaceport compress`` (scene.sog and the streamed
lod/), and served statically. The test clicks known scene points where the viewer draws them,
and compares what the tools report with the truth: distances within 1%, latitude and longitude
within 0.5 m (the truth from pycolmap's WGS84 transform, not the viewer's geodesy library).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from web_browser import (
    BLOCK_CORNER,
    BLOCK_SIZE,
    StaticSite,
    console_errors,
    pixel_spread,
    run_browser,
    write_measured_scene,
)

pytestmark = pytest.mark.slow

ORIGIN = {"lat": 47.3769, "lon": 8.5417, "alt": 408.0}
GEO_QUERY = f"lat={ORIGIN['lat']}&lon={ORIGIN['lon']}&alt={ORIGIN['alt']}"
# A slow mobile link: 2 Mbit/s down, 60 ms round trips.
THROTTLE = {"latencyMs": 60, "downloadKbps": 2000}
CX, CY = BLOCK_CORNER
BX, BY, BZ = BLOCK_SIZE
DISTANCE = [[-15.0, -10.0, 0.0], [15.0, -4.0, 0.0]]  # in front of the block, seen from the south
HEIGHT = [[CX - 1.5, CY + BY / 2, 0.0], [CX + BX / 2, CY + BY / 2, BZ]]
AREA = [[-15.0, -12.0, 0.0], [-5.0, -12.0, 0.0], [-5.0, -4.0, 0.0], [-15.0, -4.0, 0.0]]
POINT = [[12.0, -8.0, 0.0]]


@pytest.fixture(scope="module")
def measured_site(static_site: StaticSite, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    work = tmp_path_factory.mktemp("measured-scene")
    write_measured_scene(work / "splat.ply")
    completed = subprocess.run(
        [sys.executable, "-m", "spaceport.cli", "compress", "--fidelity-views", "0", "--lod-min-splats", "500",
         "--no-exports", str(work / "splat.ply"), str(work / "out")],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, f"spaceport compress failed:\n{completed.stderr[-3000:]}"
    out = work / "out"
    for file in out.rglob("*"):
        if file.is_file():
            static_site.add(f"/scenes/measured/{file.relative_to(out).as_posix()}", file)
    base = f"{static_site.url}/scenes/measured"
    streamed_bytes = sum(f.stat().st_size for f in (out / "lod").rglob("*") if f.is_file())
    return {"sog": f"{base}/scene.sog", "lod": f"{base}/lod/lod-meta.json", "streamed_bytes": str(streamed_bytes)}


@pytest.fixture(scope="module")
def measured(static_site: StaticSite, measured_site: dict[str, str], screenshot_dir: Path) -> dict:
    actions = [{"tool": "distance", "points": DISTANCE}, {"tool": "height", "points": HEIGHT},
               {"tool": "area", "points": AREA}, {"tool": "point", "points": POINT}]
    return run_browser({"kind": "measure", "url": f"{static_site.url}/view?sog={measured_site['sog']}&{GEO_QUERY}",
                        "screenshot": str(screenshot_dir / "measure-geo.png"), "timeoutMs": 90_000,
                        "actions": actions}, timeout_s=400)


def by_tool(result: dict) -> dict[str, dict]:
    return {m["tool"]: m for m in result["measurements"]}


def test_distances_heights_and_areas_are_metres_within_one_percent(measured: dict) -> None:
    assert measured["state"] == "ready", measured
    tools = by_tool(measured)
    truth = float(np.linalg.norm(np.subtract(*DISTANCE)))
    assert tools["distance"]["result"]["value"] == pytest.approx(truth, rel=0.01), tools["distance"]
    assert tools["height"]["result"]["value"] == pytest.approx(BZ, rel=0.01), tools["height"]
    # An area's relative error is about twice a length's.
    assert tools["area"]["result"]["value"] == pytest.approx(10 * 8, rel=0.02), tools["area"]
    assert " m" in tools["distance"]["text"] and "relative" not in tools["distance"]["text"]
    assert not console_errors(measured)


def test_a_picked_point_is_on_earth_within_half_a_metre(measured: dict) -> None:
    from spaceport_sfm.geo import GeoOrigin

    geo = by_tool(measured)["point"]["result"]["geo"]
    origin = GeoOrigin(ORIGIN["lat"], ORIGIN["lon"], ORIGIN["alt"])
    found = origin.to_enu(np.array([[geo["lat"], geo["lon"], geo["alt"]]]))[0]
    assert float(np.hypot(*(found[:2] - np.array(POINT[0][:2])))) < 0.5, (geo, found)
    assert abs(found[2] - POINT[0][2]) < 0.5


def test_the_georeferenced_view_is_north_up_with_a_scale_bar(measured: dict) -> None:
    # Opened from the south looking north: north points up the screen.
    assert measured["northVisible"] and abs(measured["northAngle"]) < 0.05, measured["northAngle"]
    assert measured["scaleBar"].endswith(" m") and measured["metresPerPixel"] > 0


def test_without_a_georeference_units_are_relative(static_site: StaticSite, measured_site: dict[str, str],
                                                   screenshot_dir: Path) -> None:
    result = run_browser({"kind": "measure", "url": f"{static_site.url}/view?sog={measured_site['sog']}",
                          "screenshot": str(screenshot_dir / "measure-relative.png"), "timeoutMs": 90_000,
                          "actions": [{"tool": "distance", "points": DISTANCE}]}, timeout_s=300)
    distance = by_tool(result)["distance"]
    assert "relative" in distance["text"] and not result["northVisible"]
    # Still the scene's own units, just not called metres.
    assert distance["result"]["value"] == pytest.approx(float(np.linalg.norm(np.subtract(*DISTANCE))), rel=0.01)


def test_a_streamed_scene_shows_a_first_image_before_it_has_all_arrived(
    static_site: StaticSite, measured_site: dict[str, str], screenshot_dir: Path
) -> None:
    shot = screenshot_dir / "stream-throttled.png"
    result = run_browser({"kind": "stream", "url": f"{static_site.url}/view?lod={measured_site['lod']}&{GEO_QUERY}",
                          "scenePrefix": measured_site["lod"].removesuffix("lod-meta.json"),
                          "screenshot": str(shot), "timeoutMs": 120_000, "throttle": THROTTLE}, timeout_s=400)
    assert result["state"] == "ready" and result["streamed"], result
    assert 1 <= result["chunksAtFirstImage"] < result["chunksAtRest"] and result["firstImageMs"] > 0, result
    # The first image needed only part of the streamed scene (the coarsest level), then it refined.
    assert 0 < result["bytesAtFirstImage"] < result["bytesAtRest"] <= int(measured_site["streamed_bytes"]), result
    assert result["splatBudget"] == 4_000_000  # a desktop browser
    assert pixel_spread(shot.with_name(shot.stem + ".canvas.png")) > 5
    print(f"\nstreamed, throttled {THROTTLE}: first image at {result['firstImageMs']:.0f} ms after "
          f"{result['bytesAtFirstImage']} scene bytes ({result['chunksAtFirstImage']} chunks, page "
          f"{result['pageBytesAtFirstImage']} bytes); at rest {result['bytesAtRest']} scene bytes "
          f"({result['chunksAtRest']} chunks, page {result['pageBytesAtRest']})")


def test_a_streamed_scene_measures_too_and_takes_a_budget(static_site: StaticSite, measured_site: dict[str, str],
                                                           screenshot_dir: Path) -> None:
    result = run_browser({"kind": "measure",
                          "url": f"{static_site.url}/view?lod={measured_site['lod']}&{GEO_QUERY}&budget=200000",
                          "screenshot": str(screenshot_dir / "measure-streamed.png"), "timeoutMs": 90_000,
                          "actions": [{"tool": "distance", "points": DISTANCE}]}, timeout_s=300)
    assert result["state"] == "ready", result
    truth = float(np.linalg.norm(np.subtract(*DISTANCE)))
    assert by_tool(result)["distance"]["result"]["value"] == pytest.approx(truth, rel=0.01)
