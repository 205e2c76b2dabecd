"""``spaceport compress`` (also the SageMaker processing entrypoint) and ``spaceport decompress``."""

from __future__ import annotations

import argparse
from pathlib import Path

from spaceport.container import ProcessingPaths
from spaceport.contracts.layout import CompressOutputs
from spaceport.entrypoint import configure_logging, run_job


def _compress_parser() -> argparse.ArgumentParser:
    from spaceport_compress.job import CompressConfig

    defaults = CompressConfig()
    parser = argparse.ArgumentParser(
        prog="spaceport compress",
        description="Turn a 3DGS splat PLY (standard, SH degree 0-3, or PlayCanvas compressed) into a "
        f"PlayCanvas SOG bundle OUT_DIR/{CompressOutputs.SCENE} plus OUT_DIR/{CompressOutputs.METRICS}. With no "
        "arguments it runs as a SageMaker processing job (/opt/ml/processing/input -> output).",
    )
    parser.add_argument("splat", nargs="?", type=Path, help="input splat .ply")
    parser.add_argument("out_dir", nargs="?", type=Path, help="output folder")
    parser.add_argument(
        "--sh-bands", type=int, choices=range(4), default=None, help="SH bands to keep (default: all the input has)"
    )
    parser.add_argument(
        "--order", choices=("plas", "morton"), default=defaults.order, help="texture order (default: %(default)s)"
    )
    parser.add_argument(
        "--position-bits",
        type=int,
        default=defaults.position_bits,
        help="significant bits of the 16 stored per position axis, 8-16 (default: %(default)s)",
    )
    parser.add_argument(
        "--min-opacity",
        type=float,
        default=defaults.min_opacity,
        help="drop splats fainter than this opacity; 0 keeps all (default: 1/255)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--sh-palette",
        type=int,
        default=defaults.sh_palette_size,
        help="shN palette entries, 1-65536 (default: %(default)s)",
    )
    parser.add_argument(
        "--streamed",
        action=argparse.BooleanOptionalAction,
        default=defaults.streamed,
        help=f"also write the streamed scene with levels of detail, OUT_DIR/{CompressOutputs.STREAMED} "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--lod-min-splats",
        type=int,
        default=defaults.lod_min_splats,
        help="no coarser level of detail below this many splats (default: %(default)s)",
    )
    parser.add_argument(
        "--exports",
        action=argparse.BooleanOptionalAction,
        default=defaults.exports,
        help=f"also write OUT_DIR/{CompressOutputs.SPZ} and OUT_DIR/{CompressOutputs.GLB} (default: %(default)s)",
    )
    parser.add_argument(
        "--fidelity-views",
        type=int,
        default=defaults.fidelity_views,
        help="views rendered to measure PSNR; 0 skips it (default: %(default)s)",
    )
    parser.add_argument(
        "--fidelity-size",
        type=int,
        default=defaults.fidelity_size,
        help="side of the rendered views in pixels (default: %(default)s)",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cuda", "cpu"),
        default="auto",
        help="auto: CUDA when present, else every CPU core (default: %(default)s)",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    return parser


def compress_main(argv: list[str] | None = None) -> int:
    parser = _compress_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if (args.splat is None) != (args.out_dir is None):
        parser.error("give both SPLAT and OUT_DIR, or neither (SageMaker mode)")

    def body() -> int:
        from spaceport.compute import torch_device
        from spaceport_compress.job import CompressConfig, compress, find_input_splat

        config = CompressConfig(
            sh_bands=args.sh_bands,
            order=args.order,
            seed=args.seed,
            position_bits=args.position_bits,
            min_opacity=args.min_opacity,
            sh_palette_size=args.sh_palette,
            streamed=args.streamed,
            lod_min_splats=args.lod_min_splats,
            exports=args.exports,
            fidelity_views=args.fidelity_views,
            fidelity_size=args.fidelity_size,
            device=torch_device(args.device),
        )
        if args.splat is None:
            paths = ProcessingPaths.from_env()
            compress(find_input_splat(paths.input), paths.output, config)
        else:
            compress(args.splat, args.out_dir, config)
        return 0

    failure_file = ProcessingPaths.from_env().failure if args.splat is None else None
    return run_job(body, failure_file=failure_file)


def decompress_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="spaceport decompress",
        description="Decode a PlayCanvas SOG bundle (.sog ZIP or a folder with meta.json) into a standard 3DGS PLY.",
    )
    parser.add_argument("sog", type=Path, help="input .sog bundle")
    parser.add_argument("out_ply", type=Path, help="output .ply")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    configure_logging(args.verbose)

    def body() -> int:
        from spaceport_compress.job import decompress

        splats = decompress(args.sog, args.out_ply)
        print(f"wrote {len(splats)} splats to {args.out_ply}")
        return 0

    return run_job(body)
