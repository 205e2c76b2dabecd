"""Streamed SOG, version 1: levels of detail in spatial chunks, for viewers that stream a scene.

Follows https://developer.playcanvas.com/user-manual/gaussian-splatting/formats/streamed-sog
(the layout splat-transform 3.7 writes for a ``lod-meta.json`` output): a folder holding
``lod-meta.json`` and one unbundled SOG folder per file unit (``{lod}_{unit}/meta.json`` plus
its WebP textures). ``lod-meta.json`` holds the counts per level and a binary tree over space:
an inner node has a ``bound`` and two ``children``; a leaf has a ``bound`` (the box of its
splats' one-sigma ellipsoids) and ``lods``, which say for each level where the leaf's splats
of that level sit: ``{"file": index into filenames, "offset": first pixel, "count": pixels}``.
A viewer loads, per leaf, the level its distance asks for; coarse levels are small, so the
first image needs little of the data.

The tree splits a node at the median of its longest axis while it holds more than
``chunk_gaussians`` splats (all levels together), or is longer than ``chunk_extent`` and holds
more than ``chunk_min`` of them. A level's leaves are appended to its current file unit, which
closes once it holds more than ``chunk_gaussians``. A unit's pixels are ordered by PLAS over its
whole texture with each leaf kept in its own range (:func:`~spaceport_compress.order.plas_order_in_parts`).

>>> chunking = Chunking(gaussians=4096, extent=1.0, min_gaussians=1024)
>>> means = np.random.default_rng(0).uniform(0, 4, (10000, 3))
>>> tree, units = build_tree([means], chunking)
>>> sum(len(part) for lod, parts in units for part in parts)
10000
>>> sorted({lod for lod, _ in units}), all(sum(map(len, parts)) <= 4096 * 2 for _, parts in units)
([0], True)
"""

from __future__ import annotations

import json
import math
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from spaceport.contracts.layout import CompressOutputs
from spaceport.splats import Splats
from spaceport_compress.decimate import covariances, decimate
from spaceport_compress.errors import SogFileError
from spaceport_compress.sog import SogOptions, decode_sog, encode_sog, read_sog_files

LOD_META_VERSION = 1
# The format's own fixed names: loaders recognise a streamed SOG by its index's name.
INDEX_NAME = PurePosixPath(CompressOutputs.STREAMED).name
UNIT_META = "meta.json"
# What a level keeps of the level above it. The engine's default switches a level per tripled
# distance, which shrinks a region's area on screen ninefold; a quarter keeps some of that margin.
LEVEL_RATIO = 0.25
# No coarser level is made once a level holds fewer splats than this: below it, the whole
# level costs less to fetch than the requests for its chunks.
MIN_LEVEL_SPLATS = 4096
MAX_LEVELS = 5
# A file unit holds about this many splats of one level at most, as splat-transform's default;
# the scene's own size lowers it (see chunking_for) so that a scene streams in several units.
MAX_CHUNK_GAUSSIANS = 512 * 1024
MIN_CHUNK_GAUSSIANS = 8 * 1024
UNITS_PER_LEVEL = 16  # the finest level of a large scene is cut into about this many units
EXTENT_DIVISIONS = 4  # a leaf spans at most about a quarter of the scene's longer side
# Where the viewer switches levels (web/src/viewer.js sets the engine so): level 1 from
# LOD_BASE_FACTOR half diagonals of the scene's bound on, where the whole scene takes about
# half of a 60-degree view, and each further level at LOD_MULTIPLIER times the distance.
LOD_BASE_FACTOR = 4.0
LOD_MULTIPLIER = 3.0


def level_distance(bound: dict[str, list[float]], lod: int) -> float:
    """The camera distance from which the viewer shows level ``lod`` >= 1 of a scene in ``bound``.

    >>> level_distance({"min": [0, 0, 0], "max": [2, 2, 1]}, 2)
    18.0
    """
    half_diagonal = float(np.linalg.norm(np.subtract(bound["max"], bound["min"]))) / 2
    return half_diagonal * LOD_BASE_FACTOR * LOD_MULTIPLIER ** (lod - 1)


@dataclass(frozen=True)
class Chunking:
    """How the tree is cut: splats per unit, largest leaf side (scene units), smallest leaf to cut for size."""

    gaussians: int
    extent: float
    min_gaussians: int


def lod_levels(splats: Splats, ratio: float = LEVEL_RATIO, min_splats: int = MIN_LEVEL_SPLATS) -> list[Splats]:
    """``[full, coarser, ...]``: each level merges neighbours of the one before (:func:`decimate`)."""
    levels = [splats]
    while len(levels) < MAX_LEVELS and len(levels[-1]) * ratio >= min_splats:
        levels.append(decimate(levels[-1], ratio))
    return levels


def chunking_for(finest: np.ndarray) -> Chunking:
    """Chunk sizes matched to a scene whose finest level has the positions ``finest`` ``[N, 3]``.

    Units of about ``N / 16`` splats (a power of two, between 8 Ki and 512 Ki), and leaves no
    longer than a quarter of the longer side of the box that holds the central 98% of the
    splats (strays do not stretch it).
    """
    units = 2 ** round(math.log2(max(1, len(finest) / UNITS_PER_LEVEL)))
    gaussians = int(min(MAX_CHUNK_GAUSSIANS, max(MIN_CHUNK_GAUSSIANS, units)))
    lo, hi = np.quantile(finest, [0.01, 0.99], axis=0) if len(finest) else (np.zeros(3), np.ones(3))
    extent = float(max((hi - lo).max(), 1e-6)) / EXTENT_DIVISIONS
    return Chunking(gaussians=gaussians, extent=extent, min_gaussians=gaussians // 8)


def build_tree(
    level_means: list[np.ndarray], chunking: Chunking
) -> tuple[dict[str, Any], list[tuple[int, list[np.ndarray]]]]:
    """The tree (leaves' ``lods`` filled in, bounds left to the caller) and the file units.

    ``units`` lists ``(lod, parts)`` in file order: ``parts`` are the leaves' index arrays into
    that level, in the order the unit stores them. Leaf ``lods[L]["file"]`` indexes ``units``.
    """
    flat = np.concatenate(level_means)
    lod_of = np.concatenate([np.full(len(m), lod, np.int64) for lod, m in enumerate(level_means)])
    base = np.cumsum([0] + [len(m) for m in level_means])
    open_unit: dict[int, int] = {}  # lod -> index in units of the unit being filled
    units: list[tuple[int, list[np.ndarray]]] = []

    def leaf(indices: np.ndarray) -> dict[str, Any]:
        lods: dict[str, Any] = {}
        for lod in np.unique(lod_of[indices]):
            lod = int(lod)
            part = np.sort(indices[lod_of[indices] == lod]) - base[lod]
            if lod not in open_unit:
                open_unit[lod] = len(units)
                units.append((lod, []))
            file = open_unit[lod]
            parts = units[file][1]
            offset = sum(len(p) for p in parts)
            parts.append(part)
            lods[str(lod)] = {"file": file, "offset": offset, "count": len(part)}
            if offset + len(part) > chunking.gaussians:
                del open_unit[lod]
        return {"lods": lods, "indices": indices}

    def build(indices: np.ndarray) -> dict[str, Any]:
        points = flat[indices]
        sides = points.max(0) - points.min(0) if len(points) else np.zeros(3)
        count = len(indices)
        if count > chunking.gaussians or (sides.max() > chunking.extent and count > chunking.min_gaussians):
            axis = int(sides.argmax())
            middle = count // 2
            split = np.argpartition(points[:, axis], middle)
            return {"children": [build(indices[split[:middle]]), build(indices[split[middle:]])]}
        return leaf(indices)

    return build(np.arange(len(flat))), units


def _ellipsoid_boxes(splats: Splats) -> tuple[np.ndarray, np.ndarray]:
    """``(min [N, 3], max [N, 3])``: the boxes of the splats' one-sigma ellipsoids."""
    half = np.sqrt(np.maximum(np.diagonal(covariances(splats), axis1=1, axis2=2), 0))
    return splats.means - half, splats.means + half


def _fill_bounds(
    node: dict[str, Any],
    boxes: list[tuple[np.ndarray, np.ndarray]],
    lod_of_flat: Callable[[np.ndarray], list[tuple[int, np.ndarray]]],
) -> None:
    """Give every node its ``bound`` (leaves from their splats' boxes, inner nodes the union)."""
    if "children" in node:
        for child in node["children"]:
            _fill_bounds(child, boxes, lod_of_flat)
        lows = [child["bound"]["min"] for child in node["children"]]
        highs = [child["bound"]["max"] for child in node["children"]]
        node["bound"] = {"min": np.min(lows, 0).tolist(), "max": np.max(highs, 0).tolist()}
        return
    lows, highs = [], []
    for lod, local in lod_of_flat(node.pop("indices")):
        lows.append(boxes[lod][0][local].min(0))
        highs.append(boxes[lod][1][local].max(0))
    node["bound"] = {"min": np.min(lows, 0).tolist(), "max": np.max(highs, 0).tolist()}


def _rounded(value: Any) -> Any:
    """Floats to 7 significant digits (what a float32 holds) for a compact ``lod-meta.json``."""
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    if isinstance(value, float):
        return float(f"{value:.7g}")
    return value


# (a unit's splats, the sizes of its consecutive leaves) -> the unit's pixel order, each leaf in its range
OrderFunction = Callable[[Splats, list[int]], np.ndarray]


def write_streamed_sog(
    levels: list[Splats],
    folder: Path,
    options: SogOptions,
    order_unit: OrderFunction,
    chunking: Chunking | None = None,
    progress: Callable[[float], None] | None = None,
) -> dict[str, Any]:
    """Write ``levels`` (finest first) as a streamed SOG in ``folder``, whole or not at all.

    ``order_unit(splats, sizes)`` orders a unit's splats, which hold its leaves one after the
    other (``sizes``), keeping every leaf in its own range of pixels. Returns the
    ``lod-meta.json`` written.
    """
    chunking = chunking or chunking_for(levels[0].means)
    tree, units = build_tree([level.means for level in levels], chunking)
    base = np.cumsum([0] + [len(level) for level in levels])

    def lod_of_flat(indices: np.ndarray) -> list[tuple[int, np.ndarray]]:
        lod = np.searchsorted(base, indices, side="right") - 1
        return [(int(level), indices[lod == level] - base[level]) for level in np.unique(lod)]

    _fill_bounds(tree, [_ellipsoid_boxes(level) for level in levels], lod_of_flat)
    serial = {lod: 0 for lod in range(len(levels))}
    filenames = []
    for lod, _ in units:
        filenames.append(f"{lod}_{serial[lod]}/{UNIT_META}")
        serial[lod] += 1
    meta = {
        "version": LOD_META_VERSION,
        "asset": {
            "generator": "spaceport-compress",
            "chunkGaussians": chunking.gaussians,
            "chunkExtent": chunking.extent,
            "chunkMinGaussians": chunking.min_gaussians,
        },
        "count": int(sum(len(level) for level in levels)),
        "counts": [len(level) for level in levels],
        "lodLevels": len(levels),
        "lodErrors": False,
        "filenames": filenames,
        "tree": tree,
    }
    folder = Path(folder)
    staging = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        for number, ((lod, parts), name) in enumerate(zip(units, filenames, strict=True)):
            unit = levels[lod].subset(np.concatenate(parts))
            files = encode_sog(unit, order_unit(unit, [len(part) for part in parts]), options)
            unit_folder = staging / Path(name).parent
            unit_folder.mkdir(parents=True)
            for file_name, data in files.items():
                (unit_folder / file_name).write_bytes(data)
            if progress:
                progress((number + 1) / len(units))
        (staging / INDEX_NAME).write_text(json.dumps(_rounded(meta), separators=(",", ":")))
        if folder.exists():
            trash = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.old")
            folder.rename(trash)
            staging.rename(folder)
            shutil.rmtree(trash)
        else:
            staging.rename(folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return meta


def _leaves(node: dict[str, Any]) -> list[dict[str, Any]]:
    if "children" in node:
        return [leaf for child in node["children"] for leaf in _leaves(child)]
    return [node]


def read_streamed_sog(index: str | Path) -> list[Splats]:
    """Every level of the streamed SOG whose ``lod-meta.json`` is ``index``, finest first.

    A level's splats come in tree order, leaf by leaf. Anything that does not add up (counts,
    ranges past a unit's end, missing units) is a :class:`SogFileError`.
    """
    index = Path(index)
    try:
        meta = json.loads(index.read_text())
    except FileNotFoundError:
        raise SogFileError(f"{index} does not exist.") from None
    except (OSError, ValueError) as error:
        raise SogFileError(f"{index.name} is not readable JSON ({error}).") from None
    if not isinstance(meta, dict) or meta.get("version") != LOD_META_VERSION:
        raise SogFileError(f"{index.name} is not a streamed SOG of version {LOD_META_VERSION}.")
    try:
        levels, filenames, counts = int(meta["lodLevels"]), list(meta["filenames"]), list(meta["counts"])
        leaves = _leaves(meta["tree"])
    except (KeyError, TypeError, ValueError) as error:
        raise SogFileError(f"{index.name} lacks a required field ({error}).") from None
    units: dict[int, Splats] = {}
    parts: list[list[Splats]] = [[] for _ in range(levels)]
    try:
        for leaf in leaves:
            for lod, entry in sorted(leaf["lods"].items(), key=lambda item: int(item[0])):
                file, offset, count = int(entry["file"]), int(entry["offset"]), int(entry["count"])
                if file not in units:
                    unit_meta = index.parent / filenames[file]
                    units[file] = decode_sog(read_sog_files(unit_meta.parent), filenames[file])
                if offset < 0 or offset + count > len(units[file]):
                    raise SogFileError(f"{index.name}: a leaf's range runs past the end of {filenames[file]}.")
                parts[int(lod)].append(units[file].subset(np.arange(offset, offset + count)))
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise SogFileError(f"{index.name}: a leaf's LOD entry is malformed ({error}).") from None
    result = [_concatenate(level_parts) for level_parts in parts]
    found = [len(level) for level in result]
    if found != counts:
        raise SogFileError(f"{index.name} counts {counts} splats per level, but its leaves hold {found}.")
    return result


def _concatenate(parts: list[Splats]) -> Splats:
    if not parts:
        return Splats.empty(0)
    names = ("means", "quats", "log_scales", "opacity_logits", "sh0", "shN")
    return Splats(**{name: np.concatenate([getattr(part, name) for part in parts]) for name in names})
