"""The ``spaceport`` command: one entry point, one subcommand per job or tool.

Each subcommand lives in the package that owns it and is imported only when it runs, so
``spaceport status`` never loads torch or pycolmap. Every subcommand answers ``--help``:
``spaceport sample demo.zip --n 24``, then ``spaceport sfm demo.zip out/sfm``, and so on.
"""

from __future__ import annotations

import importlib
import sys

# name -> ("module:function", one-line summary). The function takes argv and returns an exit code.
COMMANDS: dict[str, tuple[str, str]] = {
    "sample": ("spaceport_sfm.sample:main", "write a synthetic drone capture (JPEGs with GPS) and its ground truth"),
    "sfm": ("spaceport_sfm.cli:main", "photos (.zip or folder) -> COLMAP reconstruction, undistorted images, report"),
    "train": ("spaceport_train.cli:main", "SfM output -> trained 3D Gaussian splat (.ply, metrics, renders)"),
    "merge": (
        "spaceport_train.cli:merge_main",
        "the blocks of a run trained in blocks (its block plan) -> one merged splat",
    ),
    "compress": ("spaceport_compress.cli:compress_main", "splat .ply -> PlayCanvas SOG bundle (.sog)"),
    "decompress": ("spaceport_compress.cli:decompress_main", ".sog -> standard 3DGS .ply"),
    "export": (
        "spaceport_compress.export:main",
        "a .sog or .ply -> .spz, .glb (KHR_gaussian_splatting), .ply or .html",
    ),
    "serve": (
        "spaceport.local.commands:serve_main",
        "run the whole stack locally: moto AWS, gateway on :8000, workers, job runner",
    ),
    "run": (
        "spaceport.local.commands:run_main",
        "photos ZIP -> the whole pipeline on a local stack, with live progress and results",
    ),
    "status": (
        "spaceport.local.commands:status_main",
        "show a job's record (from the running stack or ./spaceport-out)",
    ),
    "replay": (
        "spaceport.local.commands:replay_main",
        "reprocess a job from a stage, or replay archived events (StartReplay)",
    ),
    "token": (
        "spaceport.local.commands:token_main",
        "sign in to the running local stack as EMAIL and print an ID token (local only)",
    ),
    "integration-key": (
        "spaceport.local.commands:integration_key_main",
        "issue an API key bound to a user, for a backend's integration (operators)",
    ),
    "view": (
        "spaceport.local.commands:view_main",
        "serve a saved local run again: its job page, viewer and the saved email's links",
    ),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = ["usage: spaceport COMMAND [options]   (spaceport COMMAND --help for details)", "", "commands:"]
    lines += [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name in ("-V", "--version"):
        from spaceport import __version__

        print(__version__)
        return 0
    if name not in COMMANDS:
        print(f"spaceport: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, function_name = COMMANDS[name][0].split(":")
    command = getattr(importlib.import_module(module_name), function_name)
    return int(command(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
