"""``spaceport train`` (SfM output -> a trained splat, the whole scene or one block) and ``spaceport merge``.

With ``SFM_DIR OUT_DIR`` it runs locally (``spaceport train out/sfm out/train --preset quick``);
with no positional arguments it runs as a SageMaker training job: the ``sfm`` channel in,
hyperparameters as overrides, and everything out into ``/opt/ml/checkpoints``, which SageMaker
syncs to S3 as it changes (so a Spot restart resumes, and each output is an object of its own).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from spaceport.container import ProcessingPaths, TrainingPaths
from spaceport.contracts.jobspec import BLOCK_HYPERPARAMETER, BLOCK_PLAN_INPUT, MERGE_BLOCKS_INPUT
from spaceport.contracts.layout import BlockOutputs, TrainOutputs
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
    parser.add_argument("--block-plan", type=Path, metavar="PLAN", help="a block plan (with --block: train one block)")
    parser.add_argument("--block", type=int, metavar="N", help="the block of --block-plan to train")
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
    if (args.block_plan is None) != (args.block is None):
        parser.error("give both --block-plan and --block, or neither to train the whole scene")

    from spaceport_train.blocks import read_plan
    from spaceport_train.config import TrainConfig
    from spaceport_train.trainer import train

    if args.sfm_dir is None:
        paths = TrainingPaths.from_env()

        def sagemaker_job() -> None:
            hyperparameters = paths.hyperparameters()
            block_index = hyperparameters.pop(BLOCK_HYPERPARAMETER, None)
            config = TrainConfig.from_hyperparameters(hyperparameters)
            block = None
            if block_index is not None:
                block = (read_plan(paths.channel(BLOCK_PLAN_INPUT) / BlockOutputs.PLAN), _block_index(block_index))
            # Into the checkpoint folder, which SageMaker syncs to S3 file by file as it changes:
            # the splat, metrics and progress land as objects of their own, beside the checkpoint.
            train(paths.channel(SFM_CHANNEL), paths.checkpoints, config, checkpoint_dir=paths.checkpoints, block=block)

        return run_job(sagemaker_job, failure_file=paths.failure)

    overrides = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if f.name != "preset" and getattr(args, f.name) is not None
    }

    def local_job() -> None:
        config = TrainConfig.from_preset(args.preset, overrides)
        block = (read_plan(args.block_plan), args.block) if args.block_plan is not None else None
        train(args.sfm_dir, args.out_dir, config, checkpoint_dir=args.checkpoint_dir, block=block)

    return run_job(local_job)


def _block_index(value: object) -> int:
    from spaceport_train.errors import TrainConfigError

    try:
        return int(str(value))
    except ValueError:
        raise TrainConfigError(
            f"The {BLOCK_HYPERPARAMETER} hyperparameter must be a block number, not {value!r}."
        ) from None


def merge_main(argv: list[str] | None = None) -> int:
    """``spaceport merge``: a run's block splats -> one splat (also the SageMaker processing entrypoint)."""
    parser = argparse.ArgumentParser(
        prog="spaceport merge",
        description="Merge the blocks of a block plan into one splat: each Gaussian is kept from the block "
        f"whose core holds its centre. Writes OUT_DIR/{TrainOutputs.SPLAT} and {TrainOutputs.METRICS}. Each "
        f"block's {TrainOutputs.SPLAT} is found under BLOCKS_DIR in a folder named after the block (b0, b1, ...). "
        f"Without arguments it runs as a SageMaker processing job (inputs {BLOCK_PLAN_INPUT} and "
        f"{MERGE_BLOCKS_INPUT}, output /opt/ml/processing/output).",
    )
    parser.add_argument("plan", nargs="?", type=Path, metavar="PLAN", help=f"the run's {BlockOutputs.PLAN}")
    parser.add_argument("blocks_dir", nargs="?", type=Path, metavar="BLOCKS_DIR", help="the blocks' outputs")
    parser.add_argument("out_dir", nargs="?", type=Path, metavar="OUT_DIR")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    given = [args.plan, args.blocks_dir, args.out_dir]
    if any(value is not None for value in given) and None in given:
        parser.error("give PLAN, BLOCKS_DIR and OUT_DIR, or none to run as a SageMaker processing job")

    from spaceport_train.merge import merge_job

    if args.plan is None:
        paths = ProcessingPaths.from_env()
        plan = paths.input / BLOCK_PLAN_INPUT / BlockOutputs.PLAN
        return run_job(
            lambda: _no_result(merge_job(plan, paths.input / MERGE_BLOCKS_INPUT, paths.output)),
            failure_file=paths.failure,
        )
    return run_job(lambda: _no_result(merge_job(args.plan, args.blocks_dir, args.out_dir)))


def _no_result(_: object) -> None:
    return None
