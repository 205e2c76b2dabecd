"""``spaceport train``: SfM output -> trained 3D Gaussian splat; also the SageMaker training entrypoint.

With ``SFM_DIR OUT_DIR`` it runs locally (``spaceport train out/sfm out/train --preset quick``);
with no positional arguments it runs as a SageMaker training job: the ``sfm`` channel in,
hyperparameters as overrides, and everything out into ``/opt/ml/checkpoints``, which SageMaker
syncs to S3 as it changes (so a Spot restart resumes, and each output is an object of its own).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from spaceport.container import TrainingPaths
from spaceport.contracts.layout import TrainOutputs
from spaceport.entrypoint import configure_logging, run_job

SFM_CHANNEL = "sfm"


def _parser() -> argparse.ArgumentParser:
    from spaceport.contracts.training import PRESETS
    from spaceport_train.config import TrainConfig

    parser = argparse.ArgumentParser(
        prog="spaceport train",
        description="Train a 3D Gaussian splat from a COLMAP reconstruction (the output of `spaceport sfm`). "
        f"Writes OUT_DIR/{TrainOutputs.SPLAT}, {TrainOutputs.METRICS}, {TrainOutputs.CONFIG} and "
        f"{TrainOutputs.RENDERS}/. Restarting with the same "
        "OUT_DIR (or --checkpoint-dir) resumes from the last checkpoint. Without positional "
        "arguments it runs as a SageMaker training job (channel 'sfm', hyperparameters as settings).",
    )
    parser.add_argument(
        "sfm_dir", nargs="?", type=Path, metavar="SFM_DIR", help="sparse/0 + images/ from spaceport sfm"
    )
    parser.add_argument("out_dir", nargs="?", type=Path, metavar="OUT_DIR")
    parser.add_argument("--checkpoint-dir", type=Path, help="checkpoint folder (default OUT_DIR/checkpoints)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    settings = parser.add_argument_group("training settings (override the preset)")
    settings.add_argument(
        "--preset", choices=PRESETS, default="default", help="named starting point (default: default)"
    )
    for field in dataclasses.fields(TrainConfig):
        if field.name == "preset":
            continue
        settings.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            metavar=field.type.upper(),
            help=f"{field.metadata['help']}",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    if (args.sfm_dir is None) != (args.out_dir is None):
        parser.error("give both SFM_DIR and OUT_DIR, or neither to run as a SageMaker training job")

    from spaceport_train.config import TrainConfig
    from spaceport_train.trainer import train

    if args.sfm_dir is None:
        paths = TrainingPaths.from_env()

        def sagemaker_job() -> None:
            config = TrainConfig.from_hyperparameters(paths.hyperparameters())
            # Into the checkpoint folder, which SageMaker syncs to S3 file by file as it changes:
            # the splat, metrics and progress land as objects of their own, beside the checkpoint.
            train(paths.channel(SFM_CHANNEL), paths.checkpoints, config, checkpoint_dir=paths.checkpoints)

        return run_job(sagemaker_job, failure_file=paths.failure)

    overrides = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if f.name != "preset" and getattr(args, f.name) is not None
    }

    def local_job() -> None:
        config = TrainConfig.from_preset(args.preset, overrides)
        train(args.sfm_dir, args.out_dir, config, checkpoint_dir=args.checkpoint_dir)

    return run_job(local_job)
