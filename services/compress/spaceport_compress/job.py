"""The compression job: a splat PLY becomes a SOG bundle plus its metrics (:class:`CompressOutputs`).

Phases: read (standard or PlayCanvas compressed PLY; NaN/inf splats dropped and counted),
prepare (invisible splats dropped and counted; each rotation put in its canonical form),
order (PLAS or Morton), encode (codebooks, palette, lossless WebP), write (stored ZIP,
atomically), verify (decode what was written), fidelity (render PSNR against the input).

``compress(Path("in.ply"), Path("out"), CompressConfig(order="morton"))`` writes both and
returns the metrics (``ratio``, ``psnr``, ...).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from spaceport.contracts.layout import CompressOutputs, TrainOutputs
from spaceport.errors import SpaceportError
from spaceport.files import write_json_atomic
from spaceport.progress import ProgressReporter
from spaceport.splats import Splats, read_vertex_table, splats_from_vertex_table
from spaceport_compress.errors import CompressInputError, EmptySplatError, NoFiniteSplatsError
from spaceport_compress.order import PlasSettings, morton_order
from spaceport_compress.sog import SogOptions

logger = logging.getLogger("spaceport.compress")


@dataclass(frozen=True)
class CompressConfig:
    """Everything the job can be told. ``sh_bands`` None keeps the input's SH bands."""

    sh_bands: int | None = None
    order: str = "plas"
    # 14 of the 16 stored bits: the 2 lowest are near-random and cost WebP the most bytes,
    # while a 1/16384 step of the scene's (log) extent is far below a pixel.
    position_bits: int = 14
    # Splats fainter than one 8-bit step of opacity add at most that to any pixel: dropped.
    min_opacity: float = 1 / 255
    seed: int = 0
    sh_palette_size: int = 4096
    kmeans_iterations: int = 10
    # Lossless WebP effort: higher efforts were both larger and slower (docs/BENCHMARKS.md).
    webp_method: int = 2
    # PLAS starts from Morton order; the full coarse-to-fine schedule (None: from half the grid)
    # still pays, since a small start radius breaks Morton's long rows.
    plas_start_radius: float | None = None
    # Half the steps a level of PLAS's own default: half the time for a little more bytes.
    plas_steps_per_level: int = 5
    plas_position_weight: float = 8.0
    plas_improvement_break: float = 1e-4
    # The streamed scene (levels of detail, CompressOutputs.STREAMED) beside the .sog.
    streamed: bool = True
    # The .spz and .glb (CompressOutputs.SPZ, .GLB) beside the .sog, for other tools.
    exports: bool = True
    lod_ratio: float = 0.25  # what each coarser level keeps of the one before
    lod_min_splats: int = 4096  # no coarser level below this many splats
    fidelity_views: int = 4  # 0 skips the render comparison
    fidelity_size: int = 128
    device: str = "cpu"

    def validate(self) -> None:
        from spaceport_compress.order import ORDERS

        if self.order not in ORDERS:
            raise CompressInputError(f"Order {self.order!r} is unknown: use one of {', '.join(ORDERS)}.")
        if self.sh_bands is not None and not 0 <= self.sh_bands <= 3:
            raise CompressInputError(f"SH bands must be 0 to 3, got {self.sh_bands}.")
        if not 8 <= self.position_bits <= 16:
            raise CompressInputError(f"Position bits must be 8 to 16, got {self.position_bits}.")
        if not 0 <= self.min_opacity < 1:
            raise CompressInputError(f"The opacity threshold must be in [0, 1), got {self.min_opacity}.")
        if not 1 <= self.sh_palette_size <= 65536:
            raise CompressInputError(f"The SH palette must hold 1 to 65536 entries, got {self.sh_palette_size}.")
        if not 0 < self.lod_ratio < 1:
            raise CompressInputError(f"The level-of-detail ratio must be between 0 and 1, got {self.lod_ratio}.")


def read_splats(path: Path) -> Splats:
    """A standard 3DGS PLY or a PlayCanvas compressed PLY, as :class:`Splats` (named errors)."""
    from spaceport_compress.compressed_ply import is_compressed_ply, read_compressed_ply

    vertex = read_vertex_table(path)
    if is_compressed_ply(vertex.dtype.names or ()):
        return read_compressed_ply(path)
    return splats_from_vertex_table(vertex, path.name)


def compress(
    input_path: Path, out_dir: Path, config: CompressConfig = CompressConfig(), progress: ProgressReporter | None = None
) -> dict[str, Any]:
    """Compress ``input_path`` into ``out_dir``'s SOG bundle; writes and returns the metrics.

    On an expected failure the metrics record the error, no bundle is written
    (an earlier one is left as it was), and the error is raised again.
    """
    progress = progress or ProgressReporter("compress")
    try:
        metrics = _compress(Path(input_path), Path(out_dir), config, progress)
    except SpaceportError as error:
        write_json_atomic(
            Path(out_dir) / CompressOutputs.METRICS,
            {"status": "failed", "input": str(input_path), "error": error.to_dict()},
        )
        raise
    write_json_atomic(Path(out_dir) / CompressOutputs.METRICS, metrics)
    return metrics


def _compress(input_path: Path, out_dir: Path, config: CompressConfig, progress: ProgressReporter) -> dict[str, Any]:
    import torch

    from spaceport_compress.order import plas_order
    from spaceport_compress.sog import decode_sog, encode_sog, grid_shape, read_sog_files, write_sog

    config.validate()
    started = time.monotonic()
    timings: dict[str, float] = {}

    def phase(name: str, since: float) -> float:
        now = time.monotonic()
        timings[name] = round(now - since, 3)
        return now

    progress.update(0.0, f"reading {input_path.name}")
    splats = read_splats(input_path)
    splats_in = len(splats)
    if splats_in == 0:
        raise EmptySplatError(f"{input_path.name} holds no splats, so there is nothing to compress.")
    finite = splats.finite_mask()
    if not finite.any():
        raise NoFiniteSplatsError(
            f"Every one of the {splats_in} splats in {input_path.name} has a NaN or "
            "infinite value, so none is left to compress."
        )
    splats = splats.subset(finite) if not finite.all() else splats
    dropped = splats_in - len(splats)
    if dropped:
        logger.warning("dropped %d splats with NaN or infinite values", dropped)
    mark = phase("read", started)

    source = splats
    splats = prepare_splats(splats, config.min_opacity)
    invisible = len(source) - len(splats)
    mark = phase("prepare", mark)

    progress.update(0.1, f"ordering {len(splats)} splats ({config.order})", splats=len(splats))
    if config.order == "plas":
        order = plas_order(splats, plas_settings(config))
    else:
        order = morton_order(splats.means)
    mark = phase("order", mark)

    progress.update(0.4, "encoding textures and codebooks")
    options = SogOptions(
        sh_bands=config.sh_bands,
        position_bits=config.position_bits,
        sh_palette_size=config.sh_palette_size,
        kmeans_iterations=config.kmeans_iterations,
        webp_method=config.webp_method,
        seed=config.seed,
        device=config.device,
    )
    files = encode_sog(splats, order, options)
    mark = phase("encode", mark)

    scene = write_sog(files, out_dir / CompressOutputs.SCENE)
    mark = phase("write", mark)

    progress.update(0.6, "decoding the bundle to check it")
    decoded = decode_sog(read_sog_files(scene), scene.name)
    mark = phase("verify", mark)

    exports: dict[str, int] = {}
    if config.exports:
        from spaceport_compress.export import write_glb, write_spz

        progress.update(0.62, f"writing {CompressOutputs.SPZ} and {CompressOutputs.GLB}")
        for name, writer in ((CompressOutputs.SPZ, write_spz), (CompressOutputs.GLB, write_glb)):
            exports[name] = writer(splats, out_dir / name).stat().st_size
        mark = phase("exports", mark)

    streamed: dict[str, Any] | None = None
    if config.streamed:
        progress.update(0.65, "writing the streamed scene (levels of detail)")
        streamed = write_levels(splats, out_dir / CompressOutputs.STREAMED, options, config)
        mark = phase("streamed", mark)

    fidelity: dict[str, Any] = {"psnr": None}
    if config.fidelity_views > 0:
        progress.update(0.8, f"rendering {config.fidelity_views} views of the original and the decoded splat")
        from spaceport_compress.fidelity import render_psnr

        backend = "cpu" if config.device == "cpu" else "auto"
        # Against the finite input, so that dropping invisible splats is measured too.
        reference = source
        if config.sh_bands is not None and config.sh_bands < reference.sh_degree:
            # Dropping bands is a choice, not a loss: compare against the same bands.
            reference = replace(reference, shN=reference.shN[:, : (config.sh_bands + 1) ** 2 - 1])
        with torch.no_grad():
            fidelity = render_psnr(reference, decoded, config.fidelity_views, config.fidelity_size, backend)
            if streamed is not None:
                streamed["fidelity"] = level_fidelity(reference, out_dir / CompressOutputs.STREAMED, config, backend)
        mark = phase("fidelity", mark)

    input_bytes = input_path.stat().st_size
    output_bytes = scene.stat().st_size
    meta = json.loads(files["meta.json"])
    width, height = grid_shape(len(splats))
    metrics = {
        "status": "succeeded",
        "input": str(input_path),
        "output": str(scene),
        "input_bytes": input_bytes,
        "output_bytes": output_bytes,
        "ratio": round(input_bytes / output_bytes, 4),
        "splats_in": splats_in,
        "splats_out": len(decoded),
        "splats_dropped_nonfinite": dropped,
        "splats_dropped_invisible": invisible,
        "sh_degree_in": splats.sh_degree,
        "sh_bands_out": meta.get("shN", {}).get("bands", 0),
        "order": config.order,
        "grid": [width, height],
        "texture_bytes": {name: len(data) for name, data in files.items()},
        "streamed": streamed,
        "exports": exports,
        **fidelity,
        "timings_s": timings,
        "wall_time_s": round(time.monotonic() - started, 3),
        "config": asdict(config),
    }
    fidelity_note = f", render PSNR {fidelity['psnr']:.1f} dB" if fidelity["psnr"] is not None else ""
    progress.update(
        1.0,
        f"{input_bytes / 1e6:.2f} MB -> {output_bytes / 1e6:.3f} MB ({metrics['ratio']:.1f}x){fidelity_note}",
        ratio=metrics["ratio"],
        psnr=fidelity["psnr"],
    )
    return metrics


def plas_settings(config: CompressConfig) -> PlasSettings:
    """The job's PLAS settings, from its configuration."""
    return PlasSettings(
        seed=config.seed,
        improvement_break=config.plas_improvement_break,
        start_radius=config.plas_start_radius,
        steps_per_level=config.plas_steps_per_level,
        position_weight=config.plas_position_weight,
        device=config.device,
    )


def write_levels(splats: Splats, index: Path, options: SogOptions, config: CompressConfig) -> dict[str, Any]:
    """Write the streamed scene of ``splats`` (its levels merged by :mod:`.decimate`, PLAS within
    each chunk) with ``index`` as its ``lod-meta.json``; returns what the metrics say of it."""
    from spaceport_compress.order import morton_order_in_parts, plas_order_in_parts
    from spaceport_compress.streamed import lod_levels, write_streamed_sog

    settings = plas_settings(config)

    def order_unit(unit: Splats, sizes: list[int]) -> np.ndarray:
        if config.order != "plas":
            return morton_order_in_parts(unit.means, sizes)
        return plas_order_in_parts(unit, sizes, settings)

    levels = lod_levels(splats, config.lod_ratio, config.lod_min_splats)
    meta = write_streamed_sog(levels, index.parent, options, order_unit)
    files = [path for path in index.parent.rglob("*") if path.is_file()]
    return {
        "index": CompressOutputs.STREAMED,
        "levels": meta["counts"],
        "units": len(meta["filenames"]),
        "bytes": sum(path.stat().st_size for path in files),
        "chunk_gaussians": meta["asset"]["chunkGaussians"],
        "chunk_extent": meta["asset"]["chunkExtent"],
    }


def level_fidelity(reference: Splats, index: Path, config: CompressConfig, backend: str) -> list[dict[str, Any]]:
    """Render PSNR of each decoded level against ``reference``, from where the viewer first shows it.

    Level ``L >= 1`` is shown from :func:`~spaceport_compress.streamed.level_distance` on, so
    it is judged there (its closest, hardest view); level 0 at the usual framing distance.
    """
    from spaceport_compress.fidelity import framing_distance, render_psnr
    from spaceport_compress.streamed import level_distance, read_streamed_sog

    levels = read_streamed_sog(index)
    meta = json.loads(index.read_text())
    _, framing = framing_distance(reference.means)
    report = []
    for lod, level in enumerate(levels):
        distance = level_distance(meta["tree"]["bound"], lod) if lod else framing
        measured = render_psnr(
            reference, level, config.fidelity_views, config.fidelity_size, backend, distance / framing
        )
        report.append({"level": lod, "splats": len(level), "distance": round(distance, 4), "psnr": measured["psnr"]})
    return report


def prepare_splats(splats: Splats, min_opacity: float = 1 / 255) -> Splats:
    """``splats`` without those fainter than ``min_opacity``, each rotation in its canonical form.

    Both leave the rendered image as it was (the first to within ``min_opacity`` per splat):
    what is left is cheaper to store. A scene with no splat that bright is kept whole.
    """
    from spaceport_compress.canonical import canonical_orientation

    visible = splats.opacities >= min_opacity
    if visible.any() and not visible.all():
        splats = splats.subset(np.flatnonzero(visible))
        logger.info("dropped %d splats fainter than opacity %.4f", int((~visible).sum()), min_opacity)
    quats, log_scales = canonical_orientation(splats.quats, splats.log_scales)
    return replace(splats, quats=quats, log_scales=log_scales)


def find_input_splat(folder: Path) -> Path:
    """The splat in a SageMaker input folder: the training stage's splat if present, else the only ``.ply``."""
    preferred = folder / TrainOutputs.SPLAT
    if preferred.is_file():
        return preferred
    candidates = sorted(folder.rglob("*.ply"))
    if len(candidates) != 1:
        raise CompressInputError(f"Expected one .ply splat in {folder}, found {len(candidates)}.")
    return candidates[0]


def decompress(sog_path: Path, out_ply: Path) -> Splats:
    """Decode ``sog_path`` and write the standard 3DGS PLY ``out_ply`` (atomically)."""
    from spaceport.splats import write_ply
    from spaceport_compress.sog import read_sog

    splats = read_sog(sog_path)
    write_ply(splats, out_ply)
    return splats
