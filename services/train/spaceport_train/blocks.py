"""One block's training inputs: the reconstruction cut down to the block's cameras and region.

A block trains on the cameras the plan gave it (those whose frusta see its bounds) and starts
its Gaussians from the sparse points within its bounds, plus a thin sample of the points
outside them (at most :data:`CONTEXT_SHARE` as many), so the part of each photo beyond the
block has something to explain it instead of pulling floaters into the block. The merge keeps
only what lies in the block's core.

Held-out photos stay those of the whole capture (every ``eval_every_nth_image``-th by name), so
no block ever trains on a photo that the merged scene is judged on; a block that holds none of
them holds out its own.

>>> import torch
>>> from spaceport.contracts.blocks import GroundRect
>>> inside = points_within(torch.tensor([[0.0, 0.0, 1.0], [5.0, 0.0, 1.0]]), ((1.0, 0, 0), (0, 1.0, 0), (0, 0, 1.0)),
...                        GroundRect(u_min=-1.0, v_min=-1.0, u_max=1.0, v_max=1.0))
>>> inside.tolist()
[True, False]
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

from spaceport.contracts.blocks import BlockPlan, GroundRect, Vector
from spaceport_train.data import Scene
from spaceport_train.errors import BlockPlanError, TooFewImagesError

# Points outside the bounds kept as context, as a share of those inside.
CONTEXT_SHARE = 0.25


def read_plan(path: Path) -> BlockPlan:
    """The block plan at ``path``, or a plain error."""
    try:
        return BlockPlan.model_validate_json(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise BlockPlanError(f"The block plan {path} cannot be read ({error}).") from None


def points_within(points: Tensor, axes: tuple[Vector, Vector, Vector], rect: GroundRect) -> Tensor:
    """[P] bool: the points [P, 3] whose ground position lies in ``rect`` (half-open; ``None`` unbounded)."""
    ground = points.to(torch.float64) @ torch.tensor(axes[:2], dtype=torch.float64).T
    inside = torch.ones(len(points), dtype=torch.bool)
    for column, low, high in ((0, rect.u_min, rect.u_max), (1, rect.v_min, rect.v_max)):
        if low is not None:
            inside &= ground[:, column] >= low
        if high is not None:
            inside &= ground[:, column] < high
    return inside


def block_scene(scene: Scene, plan: BlockPlan, index: int, eval_every_nth_image: int, seed: int = 0) -> Scene:
    """``scene`` (the whole capture, as :func:`~spaceport_train.data.load_scene` read it) cut to block ``index``."""
    try:
        block = plan.block(index)
    except KeyError as error:
        raise BlockPlanError(str(error.args[0])) from None
    wanted = set(block.cameras)
    keep = [i for i, view in enumerate(scene.views) if view.name in wanted]
    missing = wanted - {scene.views[i].name for i in keep}
    if missing:
        raise BlockPlanError(
            f"Block {index}'s cameras {sorted(missing)[:3]} are not in this reconstruction: the plan belongs to another."
        )
    held_out = set(scene.eval_ids)
    eval_ids = [k for k, i in enumerate(keep) if i in held_out]
    train_ids = [k for k, i in enumerate(keep) if i not in held_out]
    if not eval_ids:  # none of the capture's held-out photos: hold out some of the block's own
        eval_ids = train_ids[::eval_every_nth_image]
        train_ids = [k for k in train_ids if k not in set(eval_ids)]
    if len(train_ids) < 2:
        raise TooFewImagesError(
            f"Block {index} of the plan has {len(train_ids)} photo(s) to train on; at least 2 are needed."
        )
    inside = points_within(scene.points, plan.axes, block.bounds)
    outside = torch.nonzero(~inside).flatten()
    room = int(CONTEXT_SHARE * int(inside.sum()))
    if len(outside) > room:
        generator = torch.Generator().manual_seed(seed)
        outside = outside[torch.randperm(len(outside), generator=generator)[:room]]
    chosen = torch.cat([torch.nonzero(inside).flatten(), outside.sort().values])
    if len(chosen) == 0:
        raise BlockPlanError(f"Block {index} of the plan holds none of the reconstruction's points.")
    views = [scene.views[i] for i in keep]
    centres = torch.stack([torch.linalg.inv(view.viewmat)[:3, 3] for view in views])
    scale = 1.1 * float((centres - centres.mean(0)).norm(dim=1).max())
    return replace(
        scene,
        views=views,
        train_ids=train_ids,
        eval_ids=eval_ids,
        points=scene.points[chosen],
        point_colors=scene.point_colors[chosen],
        scene_scale=max(scale, 1e-6),
    )
