"""``spaceport export IN OUT``: a splat (``.sog`` or ``.ply``) in the format OUT's extension names.

=========  ===================================================================================
``.spz``   Niantic's SPZ, version 3: gzip of a 16-byte header, then per attribute for every
           splat: 24-bit fixed-point positions (12 fractional bits), 8-bit opacity, 8-bit colour
           (the DC coefficient times 0.15, around 0.5), 8-bit log scales (``(s + 10) * 16``),
           the rotation as smallest-three in 32 bits (2 bits: which of x, y, z, w is largest,
           made positive and left out; 10 bits each for the others, sign and 9-bit magnitude
           of up to sqrt 1/2, the last one in the lowest bits), and 8-bit SH coefficients
           (``128 + 128 c``, degree 1 to 5 bits and higher degrees to 4 bits, as the reference
           packer rounds them). The splat's own frame is kept, as splat-transform does.
``.glb``   binary glTF 2.0, one ``POINTS`` primitive with ``KHR_gaussian_splatting``: float32
           positions, ``xyzw`` rotations, linear scales, opacities after the sigmoid, the SH
           coefficients one ``VEC3`` accessor each, and an 8-bit ``COLOR_0`` for viewers without
           the extension. glTF is y-up: Spaceport's scenes are east-north-up (z up), so the
           splat is turned (x, y, z) -> (x, z, -y), SH coefficients with it.
``.ply``   the standard 3DGS PLY.
``.html``  one self-contained page: the web app's standalone viewer with the scene inlined.
=========  ===================================================================================

Each writer is atomic and has a reader here, so a round trip can be checked:

>>> splats = Splats.empty(3, sh_degree=1)
>>> splats.means[:] = [[0.5, -1.0, 2.0], [0.0, 0.0, 0.0], [3.0, 1.0, -2.0]]
>>> folder = Path(tempfile.mkdtemp())
>>> again = read_spz(write_spz(splats, folder / "out.spz"))
>>> np.abs(again.means - splats.means).max() <= 2**-13
np.True_
>>> again = read_glb(write_glb(splats, folder / "out.glb"))
>>> bool(np.allclose(again.means, splats.means, atol=1e-6))
True
"""

from __future__ import annotations

import argparse
import base64
import gzip
import html
import json
import struct
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from spaceport.files import atomic_path, write_atomic
from spaceport.splats import Splats
from spaceport_compress.canonical import quaternion_product
from spaceport_compress.errors import ExportError

SPZ_MAGIC = 0x5053474E  # "NGSP"
SPZ_VERSION = 3
SPZ_ROTATION_BITS = 9  # magnitude bits of each of the smallest three
SPZ_FRACTIONAL_BITS = 12
SPZ_COLOR_SCALE = 0.15
SPZ_SH_BITS = (5, 4)  # degree 1, degrees 2-3
GLB_MAGIC, GLB_JSON, GLB_BIN = 0x46546C67, 0x4E4F534A, 0x004E4942
GL_FLOAT, GL_UNSIGNED_BYTE, GL_ARRAY_BUFFER = 5126, 5121, 34962
EXTENSION = "KHR_gaussian_splatting"
SH_C0 = 0.28209479177387814
# Spaceport's east-north-up (z up) to glTF's y-up: x stays, y becomes -z, z becomes y.
ENU_TO_GLTF = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
# The standalone viewer page the web build writes (web/standalone.html) and its scene slot.
STANDALONE_PAGE = Path(__file__).resolve().parents[3] / "web" / "dist" / "standalone.html"
SCENE_SLOT = "<!--spaceport-scene-->"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x.astype(np.float64))))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(np.float64), 1e-6, 1 - 1e-6)
    return np.asarray(np.log(p / (1 - p)), np.float32)


def _unit_quats(quats: np.ndarray) -> np.ndarray:
    q = quats.astype(np.float64)
    norms = np.linalg.norm(q, axis=1, keepdims=True)
    return np.asarray(np.where(norms > 0, q / np.where(norms > 0, norms, 1.0), np.array([1.0, 0, 0, 0])))


def _bytes(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def write_spz(splats: Splats, path: Path) -> Path:
    """``splats`` as SPZ version 3 at ``path`` (atomically)."""
    n, degree = len(splats), splats.sh_degree
    fixed = np.round(splats.means.astype(np.float64) * 2**SPZ_FRACTIONAL_BITS).astype(np.int64)
    if np.abs(fixed).max(initial=0) >= 2**23:
        raise ExportError(f"{path.name}: positions beyond +-{2**23 / 2**SPZ_FRACTIONAL_BITS:.0f} do not fit SPZ.")
    positions = np.stack([(fixed >> shift) & 0xFF for shift in (0, 8, 16)], -1).astype(np.uint8)  # [N, 3, 3]
    rotations = _pack_rotations(_unit_quats(splats.quats)[:, [1, 2, 3, 0]])
    sh = np.zeros((n, 0), np.uint8)
    if degree:
        values = np.round(splats.shN.astype(np.float64) * 128) + 128  # [N, K, 3]
        bucket = np.full(splats.shN.shape[1], 2 ** (8 - SPZ_SH_BITS[1]))
        bucket[:3] = 2 ** (8 - SPZ_SH_BITS[0])
        values = np.floor((values + bucket[None, :, None] / 2) / bucket[None, :, None]) * bucket[None, :, None]
        sh = np.clip(values, 0, 255).astype(np.uint8).reshape(n, -1)
    header = struct.pack("<IIIBBBB", SPZ_MAGIC, SPZ_VERSION, n, degree, SPZ_FRACTIONAL_BITS, 0, 0)
    body = b"".join(
        [
            header,
            positions.tobytes(),
            _bytes(_sigmoid(splats.opacity_logits) * 255).tobytes(),
            _bytes(splats.sh0.astype(np.float64) * (SPZ_COLOR_SCALE * 255) + 0.5 * 255).tobytes(),
            _bytes((splats.log_scales.astype(np.float64) + 10) * 16).tobytes(),
            rotations.astype("<u4").tobytes(),
            sh.tobytes(),
        ]
    )
    write_atomic(path, gzip.compress(body, mtime=0))
    return path


def _pack_rotations(xyzw: np.ndarray) -> np.ndarray:
    """Unit quaternions ``[N, 4]`` (x, y, z, w) -> SPZ's smallest-three words ``[N]`` (uint32)."""
    largest = np.abs(xyzw).argmax(1)
    rows = np.arange(len(xyzw))
    q = xyzw * np.where(xyzw[rows, largest] < 0, -1.0, 1.0)[:, None]
    top = (1 << SPZ_ROTATION_BITS) - 1
    words = np.zeros(len(q), np.uint64)
    for j in range(4):
        keep = largest != j
        magnitude = np.clip(np.round(np.abs(q[:, j]) / np.sqrt(0.5) * top), 0, top).astype(np.uint64)
        field = magnitude | (q[:, j] < 0).astype(np.uint64) << np.uint64(SPZ_ROTATION_BITS)
        words[keep] = (words[keep] << np.uint64(SPZ_ROTATION_BITS + 1)) | field[keep]
    return np.asarray(words | largest.astype(np.uint64) << np.uint64(30))


def _unpack_rotations(words: np.ndarray) -> np.ndarray:
    """SPZ's smallest-three words ``[N]`` -> quaternions ``[N, 4]`` (w, x, y, z)."""
    words = words.astype(np.uint64)
    largest = (words >> np.uint64(30)).astype(np.int64)
    top = (1 << SPZ_ROTATION_BITS) - 1
    xyzw = np.zeros((len(words), 4))
    for j in (3, 2, 1, 0):
        keep = largest != j
        magnitude = (words & np.uint64(top)).astype(np.float64) * np.sqrt(0.5) / top
        negative = (words >> np.uint64(SPZ_ROTATION_BITS)) & np.uint64(1)
        xyzw[keep, j] = np.where(negative == 1, -magnitude, magnitude)[keep]
        words = np.where(keep, words >> np.uint64(SPZ_ROTATION_BITS + 1), words)
    rows = np.arange(len(words))
    xyzw[rows, largest] = np.sqrt(np.maximum(0.0, 1 - (xyzw**2).sum(1)))
    return xyzw[:, [3, 0, 1, 2]]


def read_spz(path: Path) -> Splats:
    """An SPZ version 3 file (gzip) back into :class:`Splats`."""
    try:
        data = gzip.decompress(Path(path).read_bytes())
        magic, version, n, degree, fractional, _, _ = struct.unpack_from("<IIIBBBB", data)
    except (OSError, EOFError, struct.error) as error:
        raise ExportError(f"{Path(path).name} is not a readable SPZ file ({error}).") from None
    if magic != SPZ_MAGIC or version != SPZ_VERSION or degree > 3:
        raise ExportError(f"{Path(path).name}: only SPZ version {SPZ_VERSION} of SH degree 0-3 is read here.")
    k = (degree + 1) ** 2 - 1
    sizes = [n * 9, n, n * 3, n * 3, n * 4, n * k * 3]
    if len(data) != 16 + sum(sizes):
        raise ExportError(f"{Path(path).name}: {len(data)} bytes do not hold {n} splats of SH degree {degree}.")
    parts, offset = [], 16
    for size in sizes:
        parts.append(np.frombuffer(data, np.uint8, size, offset))
        offset += size
    raw = parts[0].reshape(n, 3, 3).astype(np.int64)
    fixed = raw[..., 0] | (raw[..., 1] << 8) | (raw[..., 2] << 16)
    fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
    return Splats(
        means=(fixed / 2.0**fractional).astype(np.float32),
        quats=_unpack_rotations(parts[4].view("<u4")).astype(np.float32),
        log_scales=(parts[3].reshape(n, 3) / 16.0 - 10).astype(np.float32),
        opacity_logits=_logit(parts[1] / 255.0),
        sh0=((parts[2].reshape(n, 3) / 255.0 - 0.5) / SPZ_COLOR_SCALE).astype(np.float32),
        shN=((parts[5].reshape(n, k, 3).astype(np.float32) - 128) / 128),
    )


@cache
def sh_rotation(rotation: tuple[tuple[float, ...], ...]) -> np.ndarray:
    """``[15, 15]``: the higher-band SH coefficients (degrees 1-3) of a splat turned by ``rotation``.

    Found numerically: the rotated coefficients must give, in direction ``d``, what the old ones
    gave in ``R^T d``, for many directions; gsplat's SH bases are the functions.

    >>> turn = sh_rotation(((-1.0, 0, 0), (0, -1.0, 0), (0, 0, 1.0)))  # half turn about z
    >>> np.round(np.diag(turn)[:3], 6).tolist()  # degree 1 (y, z, x): y and x change sign
    [-1.0, 1.0, -1.0]
    """
    import torch
    from gsplat.cuda._torch_impl import _eval_sh_bases_fast

    matrix = np.asarray(rotation, np.float64)
    directions = np.random.default_rng(0).normal(size=(512, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)

    def bases(d: np.ndarray) -> np.ndarray:
        return np.asarray(_eval_sh_bases_fast(16, torch.from_numpy(d)).numpy(), np.float64)

    solved = np.linalg.lstsq(bases(directions), bases(directions @ matrix), rcond=None)[0]
    mixing = solved[1:, 1:]
    # Bands do not mix under a rotation: zero what least squares left as round-off.
    band = np.repeat([1, 2, 3], [3, 5, 7])
    return np.asarray(np.where(band[:, None] == band[None, :], mixing, 0.0))


def rotate_splats(splats: Splats, rotation: np.ndarray) -> Splats:
    """``splats`` turned by the rotation matrix ``rotation`` ``[3, 3]`` about the origin."""
    from spaceport_compress.canonical import quaternions_from_matrices

    turn = quaternions_from_matrices(rotation[None])[0]
    k = splats.shN.shape[1]
    mixing = sh_rotation(tuple(map(tuple, rotation.tolist())))[:k, :k]
    return Splats(
        means=(splats.means.astype(np.float64) @ rotation.T).astype(np.float32),
        quats=quaternion_product(np.broadcast_to(turn, (len(splats), 4)), _unit_quats(splats.quats)).astype(np.float32),
        log_scales=splats.log_scales.copy(),
        opacity_logits=splats.opacity_logits.copy(),
        sh0=splats.sh0.copy(),
        shN=np.einsum("ij,njc->nic", mixing, splats.shN.astype(np.float64)).astype(np.float32),
    )


def _sh_names(degree: int) -> list[str]:
    return [f"{EXTENSION}:SH_DEGREE_{d}_COEF_{c}" for d in range(1, degree + 1) for c in range(2 * d + 1)]


def write_glb(splats: Splats, path: Path) -> Path:
    """``splats`` (east-north-up) as a binary glTF with ``KHR_gaussian_splatting`` (y-up), atomically."""
    s = rotate_splats(splats, ENU_TO_GLTF)
    quats = _unit_quats(s.quats)
    opacity = _sigmoid(s.opacity_logits)
    colour = np.concatenate([np.clip(s.sh0 * SH_C0 + 0.5, 0, 1), opacity[:, None]], 1)
    columns: list[tuple[str, np.ndarray, str]] = [
        ("POSITION", s.means.astype(np.float32), "VEC3"),
        ("COLOR_0", _bytes(colour * 255), "VEC4"),
        (f"{EXTENSION}:ROTATION", quats[:, [1, 2, 3, 0]].astype(np.float32), "VEC4"),
        (f"{EXTENSION}:SCALE", np.exp(s.log_scales.astype(np.float64)).astype(np.float32), "VEC3"),
        (f"{EXTENSION}:OPACITY", opacity.astype(np.float32), "SCALAR"),
        (f"{EXTENSION}:SH_DEGREE_0_COEF_0", s.sh0.astype(np.float32), "VEC3"),
    ]
    columns += [(name, s.shN[:, i].astype(np.float32), "VEC3") for i, name in enumerate(_sh_names(s.sh_degree))]
    binary, views, accessors, attributes = bytearray(), [], [], {}
    for index, (name, values, kind) in enumerate(columns):
        data = np.ascontiguousarray(values).tobytes()
        views.append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(data), "target": GL_ARRAY_BUFFER})
        accessor = {
            "bufferView": index,
            "componentType": GL_UNSIGNED_BYTE if values.dtype == np.uint8 else GL_FLOAT,
            "count": len(s),
            "type": kind,
        }
        if values.dtype == np.uint8:
            accessor["normalized"] = True
        if name == "POSITION":
            accessor["min"], accessor["max"] = values.min(0).tolist(), values.max(0).tolist()
        accessors.append(accessor)
        attributes[name] = index
        binary += data + b"\0" * (-len(data) % 4)
    gltf = {
        "asset": {"version": "2.0", "generator": "spaceport-compress"},
        "extensionsUsed": [EXTENSION],
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0}],
        "meshes": [
            {
                "primitives": [
                    {
                        "attributes": attributes,
                        "mode": 0,
                        "extensions": {EXTENSION: {"kernel": "ellipse", "colorSpace": "srgb_rec709_display"}},
                    }
                ]
            }
        ],
        "buffers": [{"byteLength": len(binary)}],
        "bufferViews": views,
        "accessors": accessors,
    }
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    with atomic_path(Path(path)) as partial:
        partial.write_bytes(
            struct.pack("<III", GLB_MAGIC, 2, total)
            + struct.pack("<II", len(text), GLB_JSON)
            + text
            + struct.pack("<II", len(binary), GLB_BIN)
            + bytes(binary)
        )
    return Path(path)


def read_glb(path: Path) -> Splats:
    """A ``KHR_gaussian_splatting`` GLB of float attributes back into :class:`Splats` (east-north-up)."""
    name = Path(path).name
    try:
        data = Path(path).read_bytes()
        magic, _, _ = struct.unpack_from("<III", data)
        json_length, _ = struct.unpack_from("<II", data, 12)
        gltf = json.loads(data[20 : 20 + json_length])
        binary = data[20 + json_length + 8 :]
        primitive = gltf["meshes"][0]["primitives"][0]
        attributes = primitive["attributes"]
    except (OSError, struct.error, ValueError, KeyError, IndexError) as error:
        raise ExportError(f"{name} is not a readable glTF binary ({error}).") from None
    if magic != GLB_MAGIC or EXTENSION not in primitive.get("extensions", {}):
        raise ExportError(f"{name} holds no {EXTENSION} primitive.")

    def column(attribute: str, width: int) -> np.ndarray:
        accessor = gltf["accessors"][attributes[attribute]]
        view = gltf["bufferViews"][accessor["bufferView"]]
        start = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
        if accessor["componentType"] != GL_FLOAT:
            raise ExportError(f"{name}: {attribute} is not float32; only float attributes are read here.")
        return np.frombuffer(binary, np.float32, accessor["count"] * width, start).reshape(-1, width)

    degree = max((d for d in range(1, 4) if f"{EXTENSION}:SH_DEGREE_{d}_COEF_0" in attributes), default=0)
    shN = np.stack([column(sh, 3) for sh in _sh_names(degree)], 1) if degree else None
    rotation = column(f"{EXTENSION}:ROTATION", 4)
    means = column("POSITION", 3)
    splats = Splats(
        means=means.copy(),
        quats=rotation[:, [3, 0, 1, 2]].copy(),
        log_scales=np.log(np.maximum(column(f"{EXTENSION}:SCALE", 3), 1e-30)).astype(np.float32),
        opacity_logits=_logit(column(f"{EXTENSION}:OPACITY", 1)[:, 0]),
        sh0=column(f"{EXTENSION}:SH_DEGREE_0_COEF_0", 3).copy(),
        shN=shN if shN is not None else np.zeros((len(means), 0, 3), np.float32),
    )
    return rotate_splats(splats, ENU_TO_GLTF.T)


def write_html(
    sog: bytes,
    path: Path,
    title: str = "Spaceport scene",
    georeference: dict[str, Any] | None = None,
    page: Path = STANDALONE_PAGE,
) -> Path:
    """One HTML file that shows the ``.sog`` bundle ``sog`` with no server: the standalone
    viewer page of the web build, the scene inlined as base64. ``georeference`` (the job's
    ``{"used", "frame", "origin": {"lat", "lon", "alt"}}``) lets it measure in metres."""
    if not page.is_file():
        raise ExportError(f"The standalone viewer page {page} is missing: build the web app first (make web).")
    template = page.read_text()
    if SCENE_SLOT not in template:
        raise ExportError(f"{page} has no scene slot {SCENE_SLOT}: it is not Spaceport's standalone viewer page.")
    scene: dict[str, Any] = {"title": title, "sog": base64.b64encode(sog).decode()}
    if georeference:
        scene["georeference"] = georeference
    # JSON inside <script>: "</" must not end the element early.
    text = json.dumps(scene).replace("</", "<\\/")
    script = f'<script type="application/json" id="spaceport-scene">{text}</script>'
    page_text = template.replace(SCENE_SLOT, script)
    write_atomic(path, page_text.replace("<title>Spaceport</title>", f"<title>{html.escape(title)}</title>"))
    return path


def read_splat(path: Path) -> Splats:
    """A ``.sog`` bundle (or unbundled SOG folder) or a splat ``.ply``."""
    from spaceport_compress.job import read_splats
    from spaceport_compress.sog import read_sog

    if path.suffix.lower() == ".ply":
        return read_splats(path)
    if path.suffix.lower() == ".sog" or path.is_dir():
        return read_sog(path)
    raise ExportError(f"{path.name}: give a .sog or a .ply to export.")


WRITERS = {".spz": write_spz, ".glb": write_glb}
FORMATS = (".spz", ".glb", ".ply", ".html")


def export(source: Path, target: Path, georeference: dict[str, Any] | None = None) -> Path:
    """Write ``source`` (``.sog`` or ``.ply``) as ``target``, its format picked by its extension
    (``georeference``: for an ``.html`` page, so that it measures in metres)."""
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise ExportError(f"{target.name}: the output's extension must be one of {', '.join(FORMATS)}.")
    if source.resolve() == target.resolve():
        raise ExportError(f"{source.name} would be overwritten by its own export: give another output name.")
    if suffix == ".html":
        if source.suffix.lower() == ".sog":
            sog = source.read_bytes()
        else:
            from spaceport_compress.job import CompressConfig, prepare_splats
            from spaceport_compress.order import morton_order
            from spaceport_compress.sog import SogOptions, encode_sog, write_sog

            splats = prepare_splats(read_splat(source), CompressConfig().min_opacity)
            files = encode_sog(splats, morton_order(splats.means), SogOptions(position_bits=14))
            with tempfile.TemporaryDirectory() as folder:
                sog = write_sog(files, Path(folder) / source.with_suffix(".sog").name).read_bytes()
        return write_html(sog, target, title=source.stem, georeference=georeference)
    splats = read_splat(source)
    if suffix == ".ply":
        from spaceport.splats import write_ply

        return write_ply(splats, target)
    return WRITERS[suffix](splats, target)


def main(argv: list[str] | None = None) -> int:
    """``spaceport export IN OUT``."""
    from spaceport.entrypoint import configure_logging, run_job

    parser = argparse.ArgumentParser(
        prog="spaceport export",
        description="Write a splat (.sog or .ply) as another format, picked by OUT's extension: .spz (Niantic), "
        ".glb (glTF with KHR_gaussian_splatting, y up), .ply (standard 3DGS) or .html (one self-contained page).",
    )
    parser.add_argument("source", type=Path, help="input .sog or .ply")
    parser.add_argument("target", type=Path, help="output .spz, .glb, .ply or .html")
    parser.add_argument(
        "--georeference",
        metavar="LAT,LON,ALT",
        help="for .html: the scene's east-north-up origin (WGS84 degrees and metres), so that it measures in metres",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        if not args.source.exists():
            raise ExportError(f"{args.source} does not exist.")
        georeference = None
        if args.georeference:
            try:
                lat, lon, alt = (float(value) for value in args.georeference.split(","))
            except ValueError:
                raise ExportError(f"--georeference takes LAT,LON,ALT in numbers, not {args.georeference!r}.") from None
            georeference = {"used": True, "frame": "ENU", "origin": {"lat": lat, "lon": lon, "alt": alt}}
        written = export(args.source, args.target, georeference)
        print(f"wrote {written} ({written.stat().st_size / 1e6:.2f} MB)")
        return 0

    return run_job(body)
