"""PlayCanvas SOG version 2: splats as lossless WebP textures plus ``meta.json`` in a stored ZIP.

Follows https://developer.playcanvas.com/user-manual/gaussian-splatting/formats/sog :

=====================  ===========================================================
texture                per-pixel content
=====================  ===========================================================
``means_l``/``means_u``  low/high byte of a 16-bit position per axis, after
                       ``sign(v) * log(|v| + 1)`` and a per-axis min/max
``quats``              smallest-three: RGB the three other components of the unit
                       quaternion (times sqrt 2, in [-1, 1]), A = 252 + largest index
``scales``             indices into a 256-entry codebook of log scales
``sh0``                RGB indices into a 256-entry codebook of DC coefficients,
                       A = round(255 * opacity)
``shN_labels``         16-bit palette index (R low byte, G high byte)
``shN_centroids``      the palette, 64 entries a row, one pixel per coefficient,
                       RGB indices into a 256-entry codebook
=====================  ===========================================================

Pixel ``i`` (row-major) holds splat ``order[i]``; ``meta.count`` says how many pixels are real,
the rest of the last row is padding. :func:`encode_sog` gives the bundle's files,
:func:`write_sog` stores them, :func:`read_sog` reads them back:

>>> width, height = grid_shape(1000)
>>> width, height, width * height - 1000
(32, 32, 24)
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from spaceport.files import atomic_path
from spaceport.splats import Splats
from spaceport_compress.errors import SogFileError
from spaceport_compress.kmeans import kmeans, kmeans_1d

SOG_VERSION = 2
CODEBOOK_SIZE = 256
PALETTE_ROW = 64  # palette entries per row of shN_centroids
MAX_PALETTE = 65536  # labels are 16 bit
SCALE_DENSITY_POWER = 0.7  # weight of a scale value in its codebook: (opacity * scale) ** this
OPACITY_EPS = 1e-6  # decoded opacity is clamped to [eps, 1 - eps] so that its logit is finite
# Lossless WebP (the effort ``method`` comes from the options); ``exact`` keeps RGB under alpha 0.
WEBP_OPTIONS: dict[str, Any] = {"format": "WEBP", "lossless": True, "quality": 100, "exact": True}


@dataclass(frozen=True)
class SogOptions:
    """How to encode. ``sh_bands`` None keeps the input's bands; 0 drops shN."""

    sh_bands: int | None = None
    position_bits: int = 16
    sh_palette_size: int = 4096
    kmeans_iterations: int = 10
    webp_method: int = 2
    seed: int = 0
    device: str = "cpu"


def grid_shape(count: int) -> tuple[int, int]:
    """``(width, height)`` of the textures: near square, fewer than ``width`` pixels of padding."""
    width = max(1, math.ceil(math.sqrt(count)))
    return width, max(1, math.ceil(count / width))


def log_transform(values: np.ndarray) -> np.ndarray:
    return np.asarray(np.sign(values) * np.log1p(np.abs(values)))


def inverse_log_transform(values: np.ndarray) -> np.ndarray:
    return np.asarray(np.sign(values) * np.expm1(np.abs(values)))


def encode_means(means: np.ndarray, bits: int = 16) -> tuple[np.ndarray, np.ndarray, list[float], list[float]]:
    """``means`` ``[N, 3]`` -> low bytes ``[N, 3]``, high bytes ``[N, 3]``, mins, maxs (log domain).

    ``bits`` below 16 rounds to a coarser grid of 16-bit values (the low bits become zero), which
    lossless WebP stores far more cheaply than the near-random low bits of full precision.
    """
    logged = log_transform(means.astype(np.float64))
    mins, maxs = logged.min(0), logged.max(0)
    span = np.where(maxs > mins, maxs - mins, 1.0)
    step = 2 ** (16 - bits)
    quantised = np.clip(np.round((logged - mins) / span * 65535 / step) * step, 0, 65535).astype(np.uint16)
    return (quantised & 0xFF).astype(np.uint8), (quantised >> 8).astype(np.uint8), mins.tolist(), maxs.tolist()


def decode_means(low: np.ndarray, high: np.ndarray, mins: list[float], maxs: list[float]) -> np.ndarray:
    quantised = low.astype(np.float64) + 256.0 * high.astype(np.float64)
    low_end, high_end = np.asarray(mins, np.float64), np.asarray(maxs, np.float64)
    return inverse_log_transform(low_end + (high_end - low_end) * quantised / 65535).astype(np.float32)


def encode_quats(quats: np.ndarray) -> np.ndarray:
    """``quats`` ``[N, 4]`` (w, x, y, z) -> RGBA ``[N, 4]`` uint8, smallest-three."""
    q = quats.astype(np.float64)
    norms = np.linalg.norm(q, axis=1, keepdims=True)
    q = np.where(norms > 0, q / np.where(norms > 0, norms, 1), np.array([1.0, 0, 0, 0]))
    largest = np.abs(q).argmax(1)
    rows = np.arange(len(q))
    q = q * np.where(q[rows, largest] < 0, -1.0, 1.0)[:, None]  # q and -q are the same rotation
    keep = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]  # [N, 3]
    kept = np.take_along_axis(q, keep, axis=1) * math.sqrt(2)  # in [-1, 1]
    rgba = np.empty((len(q), 4), np.uint8)
    rgba[:, :3] = np.clip(np.round((kept * 0.5 + 0.5) * 255), 0, 255)
    rgba[:, 3] = 252 + largest
    return rgba


def decode_quats(rgba: np.ndarray) -> np.ndarray:
    mode = rgba[:, 3].astype(np.int64) - 252
    if ((mode < 0) | (mode > 3)).any():
        raise SogFileError("quats.webp holds an alpha value outside 252-255, so it is not a SOG quaternion texture.")
    kept = (rgba[:, :3].astype(np.float64) / 255 - 0.5) * 2 / math.sqrt(2)
    largest = np.sqrt(np.maximum(0.0, 1 - (kept**2).sum(1)))
    q = np.empty((len(rgba), 4), np.float64)
    keep = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[mode]
    np.put_along_axis(q, keep, kept, axis=1)
    q[np.arange(len(q)), mode] = largest
    return q.astype(np.float32)


def _json_floats(values: np.ndarray) -> list[float]:
    """float32 ``values`` as the shortest decimals that read back to the same float32s.

    Python would write each as its float64 expansion (17 digits); a 256-entry codebook
    then costs 2 kB more of ``meta.json`` for no information.
    """
    return [float(str(value)) for value in np.asarray(values, np.float32)]


def _codebook(
    values: np.ndarray, device: str, importance: np.ndarray | None = None, density_power: float = 0.3
) -> tuple[np.ndarray, np.ndarray]:
    def as_tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, np.float32)).to(device)

    codebook, labels = kmeans_1d(
        as_tensor(values),
        CODEBOOK_SIZE,
        density_power=density_power,
        importance=None if importance is None else as_tensor(importance),
    )
    return codebook.cpu().numpy(), labels.cpu().numpy().astype(np.uint8).reshape(values.shape)


def _texture(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """``pixels`` ``[N, ch]`` -> ``[height, width, ch]``; padding repeats the pixel above (cheap for WebP)."""
    channels = pixels.shape[1]
    flat = np.zeros((width * height, channels), np.uint8)
    flat[: len(pixels)] = pixels
    for i in range(len(pixels), width * height):
        flat[i] = flat[i - width] if i >= width else 0
    return flat.reshape(height, width, channels)


def _webp(image: np.ndarray, method: int) -> bytes:
    mode = {3: "RGB", 4: "RGBA"}[image.shape[2]]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image), mode).save(buffer, method=method, **WEBP_OPTIONS)
    return buffer.getvalue()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def encode_sog(splats: Splats, order: np.ndarray, options: SogOptions = SogOptions()) -> dict[str, bytes]:
    """The files of a SOG bundle (name -> bytes) for finite ``splats``, pixel ``i`` = splat ``order[i]``."""
    s = splats.subset(np.asarray(order))
    n = len(s)
    width, height = grid_shape(n)
    method = options.webp_method
    low, high, mins, maxs = encode_means(s.means, options.position_bits)
    # A log-scale error of d grows or shrinks a splat by d times its size: how much that shows
    # scales with the size and the opacity, so the codebook spends its entries there (what it
    # gained is in docs/BENCHMARKS.md). Relative to the largest scale, so that no weight overflows float32.
    relative_scales = np.exp(s.log_scales.astype(np.float64) - s.log_scales.max())
    scale_codebook, scale_labels = _codebook(
        s.log_scales, options.device, s.opacities[:, None] * relative_scales, SCALE_DENSITY_POWER
    )
    dc_codebook, dc_labels = _codebook(s.sh0, options.device)
    alpha = np.clip(np.round(_sigmoid(s.opacity_logits) * 255), 0, 255).astype(np.uint8)
    files = {
        "means_l.webp": _webp(_texture(low, width, height), method),
        "means_u.webp": _webp(_texture(high, width, height), method),
        "quats.webp": _webp(_texture(encode_quats(s.quats), width, height), method),
        "scales.webp": _webp(_texture(scale_labels, width, height), method),
        "sh0.webp": _webp(_texture(np.concatenate([dc_labels, alpha[:, None]], 1), width, height), method),
    }
    meta = {
        "version": SOG_VERSION,
        "asset": {"generator": "spaceport-compress"},
        "count": n,
        "antialias": False,
        "means": {"mins": mins, "maxs": maxs, "files": ["means_l.webp", "means_u.webp"]},
        "scales": {"codebook": _json_floats(scale_codebook), "files": ["scales.webp"]},
        "quats": {"files": ["quats.webp"]},
        "sh0": {"codebook": _json_floats(dc_codebook), "files": ["sh0.webp"]},
    }
    bands = s.sh_degree if options.sh_bands is None else min(options.sh_bands, s.sh_degree)
    if bands > 0:
        coeffs = (bands + 1) ** 2 - 1
        sh = torch.from_numpy(np.ascontiguousarray(s.shN[:, :coeffs, :].reshape(n, -1))).to(options.device)
        palette_size = min(options.sh_palette_size, MAX_PALETTE)
        centroids, labels = kmeans(sh, palette_size, options.kmeans_iterations, options.seed)
        sh_codebook, centroid_labels = _codebook(centroids.cpu().numpy(), options.device)
        entries = centroids.shape[0]
        rows = math.ceil(entries / PALETTE_ROW)
        # [entries, coeffs, 3] codebook indices -> PALETTE_ROW entries of `coeffs` pixels a row.
        palette = np.zeros((rows * PALETTE_ROW, coeffs, 3), np.uint8)
        palette[:entries] = centroid_labels.reshape(entries, coeffs, 3)
        label_values = labels.cpu().numpy().astype(np.uint16)
        label_pixels = np.stack([label_values & 0xFF, label_values >> 8, np.zeros_like(label_values)], 1)
        files["shN_centroids.webp"] = _webp(palette.reshape(rows, PALETTE_ROW * coeffs, 3), method)
        files["shN_labels.webp"] = _webp(_texture(label_pixels.astype(np.uint8), width, height), method)
        meta["shN"] = {
            "count": entries,
            "bands": bands,
            "codebook": _json_floats(sh_codebook),
            "files": ["shN_centroids.webp", "shN_labels.webp"],
        }
    files["meta.json"] = json.dumps(meta, separators=(",", ":")).encode()
    return files


def write_sog(files: dict[str, bytes], path: str | Path) -> Path:
    """Write the bundle as an uncompressed (stored) ZIP, atomically; ``meta.json`` first."""
    path = Path(path)
    with atomic_path(path) as partial, zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in sorted(files, key=lambda name: name != "meta.json"):
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), files[name])
    return path


def _rgba(files: dict[str, bytes], name: str, count: int, source: str) -> np.ndarray:
    """Texture ``name`` as ``[W*H, 4]`` uint8 rows, checked to hold at least ``count`` pixels."""
    if name not in files:
        raise SogFileError(f"{source} names {name} in meta.json but does not contain it.")
    try:
        with Image.open(io.BytesIO(files[name])) as image:
            pixels = np.asarray(image.convert("RGBA")).reshape(-1, 4)
    except (OSError, ValueError) as error:
        raise SogFileError(f"{source}: {name} is not a readable image ({error}).") from None
    if len(pixels) < count:
        raise SogFileError(
            f"{source}: {name} has {len(pixels)} pixels, fewer than the {count} splats meta.json counts."
        )
    return pixels


def read_sog_files(path: str | Path) -> dict[str, bytes]:
    """The members of a ``.sog`` ZIP, or of a folder holding ``meta.json`` and its textures."""
    path = Path(path)
    if path.is_dir():
        return {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
    if not path.is_file():
        raise SogFileError(f"{path.name} does not exist.")
    try:
        with zipfile.ZipFile(path) as archive:
            return {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise SogFileError(f"{path.name} is not a SOG bundle: it is not a readable ZIP ({error}).") from None


def decode_sog(files: dict[str, bytes], source: str = "the bundle") -> Splats:
    """Decode the files of a SOG version 2 bundle into splats in the standard parameterisation."""
    try:
        meta = json.loads(files["meta.json"])
    except KeyError:
        raise SogFileError(f"{source} has no meta.json, so it is not a SOG bundle.") from None
    except ValueError as error:
        raise SogFileError(f"{source}: meta.json is not valid JSON ({error}).") from None
    if not isinstance(meta, dict) or meta.get("version") != SOG_VERSION:
        version = meta.get("version") if isinstance(meta, dict) else None
        raise SogFileError(f"{source} is SOG version {version!r}; only version {SOG_VERSION} is supported.")
    try:
        count = int(meta["count"])
        means_files, mins, maxs = meta["means"]["files"], meta["means"]["mins"], meta["means"]["maxs"]
        scale_codebook = np.asarray(meta["scales"]["codebook"], np.float32)
        dc_codebook = np.asarray(meta["sh0"]["codebook"], np.float32)
        quat_file, scale_file, sh0_file = meta["quats"]["files"][0], meta["scales"]["files"][0], meta["sh0"]["files"][0]
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise SogFileError(f"{source}: meta.json lacks a required field ({error}).") from None
    if count < 0 or len(scale_codebook) != CODEBOOK_SIZE or len(dc_codebook) != CODEBOOK_SIZE:
        raise SogFileError(f"{source}: meta.json has a negative count or a codebook without {CODEBOOK_SIZE} entries.")
    low = _rgba(files, means_files[0], count, source)[:count]
    high = _rgba(files, means_files[1], count, source)[:count]
    quats = _rgba(files, quat_file, count, source)[:count]
    scales = _rgba(files, scale_file, count, source)[:count]
    sh0 = _rgba(files, sh0_file, count, source)[:count]
    opacity = np.clip(sh0[:, 3].astype(np.float64) / 255, OPACITY_EPS, 1 - OPACITY_EPS)
    shN = np.zeros((count, 0, 3), np.float32)
    if meta.get("shN"):
        shN = _decode_shN(files, meta["shN"], count, source)
    return Splats(
        means=decode_means(low[:, :3], high[:, :3], mins, maxs),
        quats=decode_quats(quats),
        log_scales=scale_codebook[scales[:, :3]],
        opacity_logits=np.log(opacity / (1 - opacity)).astype(np.float32),
        sh0=dc_codebook[sh0[:, :3]],
        shN=shN,
    )


def _decode_shN(files: dict[str, bytes], info: dict[str, Any], count: int, source: str) -> np.ndarray:
    try:
        bands, entries = int(info["bands"]), int(info["count"])
        codebook = np.asarray(info["codebook"], np.float32)
        centroid_file, label_file = info["files"][0], info["files"][1]
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise SogFileError(f"{source}: meta.json's shN lacks a required field ({error}).") from None
    if bands not in (1, 2, 3) or len(codebook) != CODEBOOK_SIZE or not 1 <= entries <= MAX_PALETTE:
        raise SogFileError(f"{source}: meta.json's shN has bands {bands}, count {entries}: out of range.")
    coeffs = (bands + 1) ** 2 - 1
    rows = math.ceil(entries / PALETTE_ROW)
    palette = _rgba(files, centroid_file, rows * PALETTE_ROW * coeffs, source)
    palette = palette[: rows * PALETTE_ROW * coeffs, :3].reshape(rows * PALETTE_ROW, coeffs, 3)
    labels = _rgba(files, label_file, count, source)[:count]
    index = labels[:, 0].astype(np.int64) | (labels[:, 1].astype(np.int64) << 8)
    if (index >= entries).any():
        raise SogFileError(f"{source}: shN_labels.webp points past the {entries}-entry palette.")
    return np.asarray(codebook[palette[index]])


def read_sog(path: str | Path) -> Splats:
    """Read a ``.sog`` bundle (or an unbundled SOG folder) into :class:`Splats`."""
    return decode_sog(read_sog_files(path), Path(path).name)
