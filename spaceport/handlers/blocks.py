"""A run too large for one training job: planned, fanned out to one job per block, fanned in, merged.

The train service does all of it, over the event bus, with the guarantees every stage has:

* **plan** (:func:`plan_run`, when training starts): the SfM job's scene summary and the
  deployment's budget (:func:`budget_for`) make the :class:`~spaceport.contracts.blocks.BlockPlan`
  (:mod:`spaceport.handlers.block_plan`). One block: the run trains whole, as ever. More: the plan is
  written beside the run, the job record gets the run's blocks (a conditional write with the
  stage's start), and one ``BlockRequested`` is published per block. A reprocess that names
  ``options.blocks`` keeps the latest plan and every other block that was done, and requests
  only those. A replay from ``train`` plans again.
* **fan out** (:func:`on_block_requested`): each block's training job, named by
  ``(job, run, block, attempt)``, so a duplicate request starts nothing; the block's part of the
  record moves forward only (:func:`~spaceport.contracts.job.part_position`).
* **follow** (:func:`on_part_state_change`): a block that completed publishes ``BlockCompleted``;
  one that failed for a transient reason is retried alone, as a new attempt of that block; one
  that failed for good fails the job and stops the other blocks. The merge job is followed the
  same way; its completion is the stage's ``TrainingCompleted``, with the merged splat.
* **fan in** (:func:`on_block_completed`): each completion is counted once by a conditional
  write; the write that counts the last block launches the merge, and a redelivery of it that
  finds every block done launches it again, which the merge job's deterministic name makes a no-op.
* **cancel** (:func:`stop_parts`): every running block (and the merge) is stopped.
"""

from __future__ import annotations

import json
import logging

from pydantic import ValidationError

from spaceport.config import PipelineConfig
from spaceport.contracts.blocks import GPU_PRESET_TRAINING, BlockBudget, SceneSummary
from spaceport.contracts.events import (
    BlockCompleted,
    BlockRequested,
    InvalidEventError,
    JobFailed,
    JobOptions,
    StageStarted,
)
from spaceport.contracts.job import (
    BlockPart,
    BlockRun,
    JobRecord,
    JobStatus,
    PartStatus,
    Phase,
    part_position,
    position,
)
from spaceport.contracts.jobspec import StageJobSpec
from spaceport.contracts.layout import SfmOutputs, block_index, block_name
from spaceport.contracts.stages import Stage
from spaceport.contracts.topology import MERGE_PART, SageMakerJobKey, completion_event
from spaceport.handlers.block_plan import make_plan
from spaceport.handlers.stage import (
    LAUNCH_REFUSED,
    JobStateChange,
    about_job,
    diagnose,
    is_live,
    record_failure,
)
from spaceport.handlers.stage_jobs import (
    block_job_spec,
    collect_outputs,
    merge_job_spec,
    merge_manifest,
    read_block_report,
    read_stage_report,
    stage_input,
)
from spaceport.ports import LaunchError, Ports

logger = logging.getLogger("spaceport.handlers")

# The job record's artifact naming the plan of the latest run trained in blocks.
PLAN_ARTIFACT = "block_plan"
BAD_BLOCKS = "bad_blocks"


def budget_for(config: PipelineConfig, options: JobOptions) -> BlockBudget:
    """What one training job may hold in this deployment, and how the run's options train."""
    steps, image_size = GPU_PRESET_TRAINING[options.preset]
    settings = options.hyperparameters
    return BlockBudget(
        max_gaussians=config.block_max_gaussians,
        max_megapixels=config.block_max_megapixels,
        image_size_px=int(settings.get("max_image_size") or image_size),
        steps=int(settings.get("steps") or options.steps or steps),
    )


def plan_run(record: JobRecord, run_id: str, sfm_uri: str, options: JobOptions, ports: Ports) -> str | None:
    """Plan the run's training; ``None`` when it fits one job (the caller launches that as ever)."""
    chosen = (
        _retrain_some(record, run_id, options, ports)
        if options.blocks
        else _plan(record.job_id, run_id, sfm_uri, options, ports)
    )
    if chosen is None or isinstance(chosen, str):
        return chosen
    blocks = chosen
    moved = ports.store.transition(
        record.job_id,
        position(run_id, Stage.TRAIN, 1, Phase.STARTED),
        status=JobStatus.RUNNING,
        stage=Stage.TRAIN,
        attempt=1,
        stage_percent=0.0,
        run_status=(run_id, JobStatus.RUNNING),
        blocks=blocks,
        artifacts={PLAN_ARTIFACT: blocks.plan_uri},
    )
    if not moved:
        return "stale"  # cancelled, or another delivery planned it first (and requests the blocks)
    logger.info("job %s %s: %s", record.job_id, run_id, blocks.reason)
    return request_pending(record.model_copy(update={"blocks": blocks, "options": options}), ports)


def _plan(job_id: str, run_id: str, sfm_uri: str, options: JobOptions, ports: Ports) -> BlockRun | None:
    layout = ports.config.layout
    raw = ports.objects.read_json(sfm_uri.rstrip("/") + "/" + SfmOutputs.SCENE_SUMMARY)
    if raw is None:
        logger.info("job %s: the SfM output has no scene summary; training it whole", job_id)
        return None
    try:
        plan = make_plan(SceneSummary.model_validate(raw), budget_for(ports.config, options))
    except (ValidationError, ValueError) as error:
        logger.warning("job %s: the scene summary cannot be planned (%s); training it whole", job_id, error)
        return None
    if len(plan.blocks) < 2:
        return None
    plan_uri = layout.block_plan(job_id, run_id)
    ports.objects.put_bytes(plan_uri, plan.model_dump_json().encode(), "application/json")
    parts = {
        block_name(block.index): BlockPart(
            run_id=run_id,
            core=block.core,
            cameras=len(block.cameras),
            predicted_gaussians=block.predicted.gaussians,
            predicted_gpu_hours=block.predicted.gpu_hours,
        )
        for block in plan.blocks
    }
    return BlockRun(
        run_id=run_id,
        plan_uri=plan_uri,
        count=len(parts),
        reason=plan.reason,
        parts=parts,
        merge=BlockPart(run_id=run_id),
    )


def _retrain_some(record: JobRecord, run_id: str, options: JobOptions, ports: Ports) -> BlockRun | str:
    """The latest plan again, its blocks in ``options.blocks`` (and any not done) to train, the rest kept."""
    earlier = record.blocks
    wanted = sorted(set(options.blocks))
    problem = None
    if earlier is None:
        problem = f"Job {record.job_id} was never trained in blocks: reprocess it from train without naming blocks."
    elif unknown := [i for i in wanted if block_name(i) not in earlier.parts]:
        problem = f"Blocks {unknown} are not in job {record.job_id}'s plan, which has blocks 0 to {earlier.count - 1}."
    if earlier is None or problem is not None:
        key = SageMakerJobKey(ports.config.deployment, Stage.TRAIN, record.job_id, run_id)
        _fail_job(key, record, BAD_BLOCKS, problem or "", ports)
        return "refused"
    parts: dict[str, BlockPart] = {}
    for name, part in earlier.parts.items():
        keep = part.status is PartStatus.DONE and block_index(name) not in wanted
        parts[name] = (
            part
            if keep
            else BlockPart(
                run_id=run_id,
                cameras=part.cameras,
                predicted_gaussians=part.predicted_gaussians,
                predicted_gpu_hours=part.predicted_gpu_hours,
            )
        )
    kept = sum(part.run_id != run_id for part in parts.values())
    return BlockRun(
        run_id=run_id,
        plan_uri=earlier.plan_uri,
        count=earlier.count,
        done=kept,
        reason=f"the plan of {earlier.run_id} again: {earlier.count - kept} block(s) retrained, {kept} kept",
        parts=parts,
        merge=BlockPart(run_id=run_id),
    )


def request_pending(record: JobRecord, ports: Ports) -> str:
    """Publish ``BlockRequested`` for every block of the run not launched yet (each is idempotent)."""
    blocks = record.blocks
    assert blocks is not None, "only a run trained in blocks has blocks to request"
    pending = [name for name, part in blocks.parts.items() if part.run_id == blocks.run_id and part.position == 0]
    sfm_uri = stage_input(Stage.TRAIN, record.input_uri, record.artifacts)
    for name in pending:
        index = block_index(name)
        assert index is not None, name
        ports.publisher.publish(
            BlockRequested(
                job_id=record.job_id,
                run_id=blocks.run_id,
                stage=Stage.TRAIN,
                input_uri=sfm_uri,
                options=record.options,
                block=index,
                blocks=blocks.count,
            )
        )
    return f"requested {len(pending)} of {blocks.count} blocks" if pending else "duplicate"


def _run_blocks(record: JobRecord | None, run_id: str) -> BlockRun | None:
    """The record's blocks when they are the live run's."""
    if not is_live(record, run_id) or record.blocks is None or record.blocks.run_id != run_id:
        return None
    return record.blocks


def on_block_requested(event: BlockRequested, ports: Ports) -> str:
    """Launch attempt 1 of one block's training job, unless it was launched."""
    record = ports.store.get(event.job_id)
    blocks = _run_blocks(record, event.run_id)
    if record is None or blocks is None:
        return "stale"
    part = blocks.parts.get(block_name(event.block))
    if part is None:
        raise InvalidEventError(f"Block {event.block} is not in the plan of job {event.job_id} {event.run_id}.")
    if part.position >= part_position(1, Phase.STARTED):
        return "duplicate"
    key = SageMakerJobKey(ports.config.deployment, Stage.TRAIN, event.job_id, event.run_id, 1, block_name(event.block))
    return _launch_part(key, _block_spec(key, record, blocks, ports), record, ports)


def _block_spec(key: SageMakerJobKey, record: JobRecord, blocks: BlockRun, ports: Ports) -> StageJobSpec:
    sfm_uri = stage_input(Stage.TRAIN, record.input_uri, record.artifacts)
    return block_job_spec(ports.config, key, sfm_uri, blocks.plan_uri, record.options)


def _launch_part(key: SageMakerJobKey, spec: StageJobSpec, record: JobRecord, ports: Ports) -> str:
    if ports.launcher is None:
        raise RuntimeError("The train service needs a JobLauncher in its ports.")
    try:
        launched = ports.launcher.start(spec)
    except LaunchError as refused:
        if refused.retryable:
            raise  # throttled: the message comes back later and tries again
        _fail_job(key, record, LAUNCH_REFUSED, refused.message, ports)
        return "refused"
    moved = ports.store.move_part(
        key.job_id,
        key.run_id,
        key.part,
        part_position(key.attempt, Phase.STARTED),
        {"status": PartStatus.RUNNING, "attempt": key.attempt},
    )
    if moved is None:
        now = ports.store.get(key.job_id)
        if now is not None and now.run_id == key.run_id and now.status.is_final:
            # Cancelled (or failed) while this one was starting: nothing else will stop it.
            ports.launcher.stop(spec.name)
            return "cancelled"
        return "already running"
    ports.publisher.publish(
        StageStarted(
            job_id=key.job_id,
            run_id=key.run_id,
            stage=Stage.TRAIN,
            attempt=key.attempt,
            input_uri=next(iter(spec.inputs.values())),
            output_uri=spec.output_uri,
            options=record.options,
            sagemaker_job_name=spec.name,
        )
    )
    return "launched" if launched else "already running"


def on_part_state_change(change: JobStateChange, record: JobRecord, ports: Ports) -> str:
    """A block's (or the merge's) job reached a final state: report it, retry it, or fail the job."""
    key = change.key
    if record.run_id == key.run_id and record.status is JobStatus.CANCELLED:
        return "cancelled"
    blocks = _run_blocks(record, key.run_id)
    part = None if blocks is None else (blocks.merge if key.part == MERGE_PART else blocks.parts.get(key.part))
    if blocks is None or part is None or part.attempt != key.attempt:
        return "stale"  # another run's, or an attempt that was already retried
    if change.status == "Completed":
        if key.part == MERGE_PART:
            return _on_merged(key, record, blocks, ports)
        if part.position >= part_position(key.attempt, Phase.COMPLETED):
            return "duplicate"
        index = block_index(key.part)
        assert index is not None, key.part
        report = read_block_report(ports.config, ports.objects, key.job_id, key.run_id, index)
        ports.publisher.publish(
            BlockCompleted(
                **about_job(key, record),
                output_uri=ports.config.layout.block_outputs_prefix(key.job_id, key.run_id, index),
                block=index,
                blocks=blocks.count,
                summary=_figures(report),
            )
        )
        return "completed"
    if change.status not in ("Failed", "Stopped"):
        return "ignored"
    if part.position > part_position(key.attempt, Phase.STARTED):
        return "duplicate"
    index = block_index(key.part)
    if index is None:
        report = read_stage_report(ports.config, ports.objects, key)
        what = "merging the blocks"
    else:
        report = read_block_report(ports.config, ports.objects, key.job_id, key.run_id, index)
        what = f"block {index} of {blocks.count}"
    diagnosis = diagnose(Stage.TRAIN, change.status, change.failure_reason, report, change.time_limit_s)
    if diagnosis.transient and key.attempt < ports.config.max_attempts:
        logger.warning(
            "%s failed (%s); retrying %s alone as attempt %d", key.name, diagnosis.reason, what, key.attempt + 1
        )
        retry = key.retry()
        spec = _block_spec(retry, record, blocks, ports) if index is not None else _merge_spec(retry, blocks, ports)
        _launch_part(retry, spec, record, ports)
        return "retried"
    _fail_job(key, record, diagnosis.code, f"Training {what} failed: {diagnosis.reason}", ports)
    return "failed"


def _figures(report: dict[str, object] | None) -> dict[str, object]:
    """What a block's metrics say of it, for its part of the job record."""
    if not report or "error" in report:
        return {}
    wall = report.get("total_wall_s")
    figures: dict[str, object] = {
        name: report[name] for name in ("psnr", "num_gaussians", "steps", "device") if name in report
    }
    if isinstance(wall, (int, float)):
        # One job per machine, and in AWS one GPU per machine: its hours are GPU-hours.
        figures["gpu_hours"] = round(float(wall) / 3600.0, 5)
    return figures


def on_block_completed(event: BlockCompleted, ports: Ports) -> str:
    """Count a finished block once; the count that reaches every block launches the merge."""
    record = ports.store.get(event.job_id)
    blocks = _run_blocks(record, event.run_id)
    name = block_name(event.block)
    if record is None or blocks is None or name not in blocks.parts:
        return "stale"
    figures = event.summary
    changes = {
        "status": PartStatus.DONE,
        "measured_gpu_hours": figures.get("gpu_hours"),
        "num_gaussians": figures.get("num_gaussians"),
        "psnr": figures.get("psnr"),
        "device": figures.get("device"),
    }
    done = ports.store.move_part(
        event.job_id, event.run_id, name, part_position(event.attempt, Phase.COMPLETED), changes, count_done=True
    )
    if done is not None and done < blocks.count:
        return f"block {event.block} done ({done} of {blocks.count})"
    record = ports.store.get(event.job_id)
    blocks = _run_blocks(record, event.run_id)
    if record is None or blocks is None:
        return "stale"
    if done is None and blocks.done < blocks.count:
        return "duplicate"
    return _start_merge(record, blocks, ports)


def _merge_spec(key: SageMakerJobKey, blocks: BlockRun, ports: Ports) -> StageJobSpec:
    return merge_job_spec(ports.config, key, blocks.plan_uri, ports.config.layout.merge_inputs(key.job_id, key.run_id))


def _start_merge(record: JobRecord, blocks: BlockRun, ports: Ports) -> str:
    if blocks.merge.position >= part_position(1, Phase.STARTED):
        return "duplicate"
    sources: dict[int, str] = {}
    for name, part in blocks.parts.items():
        index = block_index(name)
        assert index is not None, name
        sources[index] = part.run_id
    key = SageMakerJobKey(ports.config.deployment, Stage.TRAIN, record.job_id, blocks.run_id, 1, MERGE_PART)
    manifest = merge_manifest(ports.config, record.job_id, sources)
    manifest_uri = ports.config.layout.merge_inputs(record.job_id, blocks.run_id)
    ports.objects.put_bytes(manifest_uri, json.dumps(manifest).encode(), "application/json")
    outcome = _launch_part(key, _merge_spec(key, blocks, ports), record, ports)
    return "merging" if outcome == "launched" else outcome


def _on_merged(key: SageMakerJobKey, record: JobRecord, blocks: BlockRun, ports: Ports) -> str:
    """The merged splat is the stage's output: publish ``TrainingCompleted`` and record it."""
    completed_at = position(key.run_id, Stage.TRAIN, 1, Phase.COMPLETED)
    if record.position >= completed_at:
        return "duplicate"
    outputs = collect_outputs(ports.config, ports.objects, key)
    summary = {**outputs.summary, "train_blocks": blocks.count}
    # Publish before recording, as every stage does: a retry publishes again and compression is idempotent.
    ports.publisher.publish(
        completion_event(Stage.TRAIN)(**about_job(key, record), output_uri=outputs.output_uri, summary=summary)
    )
    ports.store.move_part(
        key.job_id, key.run_id, MERGE_PART, part_position(key.attempt, Phase.COMPLETED), {"status": PartStatus.DONE}
    )
    ports.store.transition(key.job_id, completed_at, stage_percent=100.0, artifacts=outputs.artifacts, summary=summary)
    return "completed"


def _fail_job(key: SageMakerJobKey, record: JobRecord, code: str, reason: str, ports: Ports) -> None:
    """The run fails for good: its part says so, ``JobFailed`` goes out, and the other blocks stop."""
    if key.part:
        ports.store.move_part(
            key.job_id, key.run_id, key.part, part_position(key.attempt, Phase.FAILED), {"status": PartStatus.FAILED}
        )
    ports.publisher.publish(JobFailed(**about_job(key, record), error_code=code, reason=reason))
    record_failure(ports, key.job_id, key.run_id, Stage.TRAIN, key.attempt, code, reason)
    now = ports.store.get(key.job_id)
    if now is not None and now.blocks is not None and now.blocks.run_id == key.run_id:
        stop_parts(now, ports, keep=key.part)


def stop_parts(record: JobRecord, ports: Ports, keep: str = "") -> int:
    """Stop every running block of the record's run trained in blocks, and its merge; returns how many."""
    if ports.launcher is None:
        raise RuntimeError("The train service needs a JobLauncher in its ports.")
    blocks = record.blocks
    if blocks is None:
        return 0
    stopped = 0
    for name, part in [*blocks.parts.items(), (MERGE_PART, blocks.merge)]:
        if name == keep or part.status is not PartStatus.RUNNING or part.run_id != blocks.run_id:
            continue
        key = SageMakerJobKey(ports.config.deployment, Stage.TRAIN, record.job_id, blocks.run_id, part.attempt, name)
        try:
            ports.launcher.stop(key.name)
        except LookupError:
            continue
        stopped += 1
    return stopped
