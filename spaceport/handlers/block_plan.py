"""Planning the blocks of a capture: a ground-plane partition with overlap, cameras by what they see.

:func:`make_plan` reads the SfM job's :class:`~spaceport.contracts.blocks.SceneSummary` and a
:class:`~spaceport.contracts.blocks.BlockBudget` and returns the
:class:`~spaceport.contracts.blocks.BlockPlan`. It is plain Python (no numpy): the train
service runs it in its Lambda whenever training starts, so a replay from ``train`` replans.

How it splits:

1. The whole capture is predicted as one job: its Gaussians (from the sparse points) and its
   pixels (every photo at training size). Within the budget, the plan is one block.
2. Otherwise the ground is cut in two, along the longer side of the points' extent at the
   point-weighted median, and each half is predicted again; a half over the budget is cut
   again (a k-d tree). The leaves' *cores* tile the whole plane (the outer cores are unbounded),
   so every place on the ground has exactly one owner when the blocks are merged.
3. A block trains on its *bounds*: its core within the scene, grown by ``budget.margin`` of
   its size on every side, so that neighbours overlap and agree at the seam.
4. A camera trains a block when its frustum sees the block's bounds: rays through a grid of its
   pixels are cut by the slab of heights where most points lie, and a ray sees the ground
   between where it enters and leaves the slab (so an oblique view sees far blocks, a nadir view
   the one below it). A camera is assigned when at least ``budget.min_view_share`` of its rays
   that meet the scene cross the bounds (a camera whose sample rays all miss the scene trains
   the block it stands over; one that looks only at the sky trains none).

A half that splitting does not help (its pixels stay over the budget because every camera sees
all of it) or that is one grid cell wide stays a block and is marked ``over_budget``.

>>> summary = demo_summary()
>>> budget = BlockBudget(max_gaussians=150_000, max_megapixels=100.0, image_size_px=1600, steps=1_000)
>>> plan = make_plan(summary, budget)
>>> len(plan.blocks), [len(block.cameras) for block in plan.blocks]
(2, [10, 10])
>>> [block.core.u_max for block in plan.blocks], plan.blocks[1].core.u_min
([0.0, None], 0.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from spaceport.contracts.blocks import (
    BlockBudget,
    BlockPlan,
    GridCell,
    GroundRect,
    PlannedBlock,
    Prediction,
    SceneSummary,
    ViewSummary,
    predicted_gaussians,
    predicted_gpu_hours,
)

# Rays cast per camera to find what it sees (across x down).
RAYS_ACROSS, RAYS_DOWN = 8, 6
# A k-d tree this deep has up to 2^depth blocks.
MAX_DEPTH = 8

Rect = tuple[float, float, float, float]  # u_min, v_min, u_max, v_max (finite)
Segment = tuple[float, float, float, float]  # u0, v0, u1, v1


@dataclass(frozen=True)
class _Cell:
    u: float  # centre
    v: float
    points: int


@dataclass(frozen=True)
class _Sight:
    """What one camera sees of the ground: a segment per ray that meets the scene."""

    name: str
    megapixels: float
    segments: tuple[Segment, ...]
    box: Rect | None  # around every segment
    # Some ray met the slab of heights, if not within the scene: the camera sees the scene small.
    faces_ground: bool

    def share_on(self, rect: Rect) -> float:
        if self.box is None or not _overlap(self.box, rect):
            return 0.0
        return sum(_crosses(segment, rect) for segment in self.segments) / len(self.segments)


def make_plan(summary: SceneSummary, budget: BlockBudget) -> BlockPlan:
    """The blocks of ``summary``'s capture under ``budget`` (one block when it fits)."""
    cells = _cells(summary)
    if not cells or not summary.views:
        raise ValueError("a scene summary with no points or no cameras cannot be planned")
    extent = _extent(summary, cells)
    sights = [_sight(view, summary, extent, budget.image_size_px) for view in summary.views]
    planner = _Planner(summary, budget, cells, sights, extent)
    whole = planner.predict(extent, [s.name for s in sights])
    if planner.fits(whole):
        blocks = [
            PlannedBlock(index=0, core=GroundRect(), bounds=_rect(extent), cameras=_names(sights), predicted=whole)
        ]
        reason = f"fits one job ({_size(whole)}; budget {_budget(budget)})"
    else:
        leaves = planner.split(GroundRect(), depth=0)
        blocks = [leaf.model_copy(update={"index": index}) for index, leaf in enumerate(leaves)]
        over = sum(block.over_budget for block in blocks)
        reason = f"{len(blocks)} blocks: one job would hold {_size(whole)}, over the budget of {_budget(budget)}"
        if over:
            reason += f"; {over} block(s) stay over it (splitting further does not help)"
    return BlockPlan(
        frame=summary.frame,
        axes=summary.axes,
        heights=summary.heights,
        budget=budget,
        whole=whole,
        blocks=blocks,
        reason=reason,
    )


def _names(sights: Iterable[_Sight]) -> list[str]:
    return sorted(sight.name for sight in sights)


class _Planner:
    def __init__(
        self,
        summary: SceneSummary,
        budget: BlockBudget,
        cells: list[_Cell],
        sights: list[_Sight],
        extent: Rect,
    ) -> None:
        self.summary, self.budget, self.cells, self.sights, self.extent = summary, budget, cells, sights, extent
        self.megapixels = {sight.name: sight.megapixels for sight in sights}
        centres = {view.name: summary_ground(summary, view.centre) for view in summary.views}
        self.centres = centres

    def fits(self, prediction: Prediction) -> bool:
        return prediction.gaussians <= self.budget.max_gaussians and prediction.megapixels <= self.budget.max_megapixels

    def predict(self, bounds: Rect, cameras: Sequence[str]) -> Prediction:
        points = sum(cell.points for cell in self.cells if _inside(cell.u, cell.v, bounds))
        megapixels = sum(self.megapixels[name] for name in cameras)
        gaussians = predicted_gaussians(points)
        return Prediction(
            cameras=len(cameras),
            points=points,
            gaussians=gaussians,
            megapixels=round(megapixels, 3),
            gpu_hours=round(predicted_gpu_hours(self.budget, megapixels, len(cameras), gaussians), 6),
        )

    def block(self, core: GroundRect) -> PlannedBlock | None:
        """The block owning ``core``: its bounds, the cameras that see them and its size."""
        owned = [cell for cell in self.cells if core.contains(cell.u, cell.v)]
        if not owned:
            return None
        half = self.summary.cell_size / 2
        u_min, u_max = min(c.u for c in owned) - half, max(c.u for c in owned) + half
        v_min, v_max = min(c.v for c in owned) - half, max(c.v for c in owned) + half
        grow_u = max(self.budget.margin * (u_max - u_min), half)
        grow_v = max(self.budget.margin * (v_max - v_min), half)
        bounds = (u_min - grow_u, v_min - grow_v, u_max + grow_u, v_max + grow_v)
        seeing = [s.name for s in self.sights if s.share_on(bounds) >= self.budget.min_view_share]
        # A camera whose sample rays all miss the scene (it sees it small) trains the block it stands over.
        seeing += [
            s.name for s in self.sights if not s.segments and s.faces_ground and core.contains(*self.centres[s.name])
        ]
        cameras = sorted(seeing)
        return PlannedBlock(
            index=0, core=core, bounds=_rect(bounds), cameras=cameras, predicted=self.predict(bounds, cameras)
        )

    def split(self, core: GroundRect, depth: int) -> list[PlannedBlock]:
        block = self.block(core)
        if block is None:
            return []
        if self.fits(block.predicted):
            return [block]
        halves = self._halves(core) if depth < MAX_DEPTH else None
        if halves is not None:
            children = [self.block(half) for half in halves]
            pixels_only = block.predicted.gaussians <= self.budget.max_gaussians
            helps = all(
                child is not None and child.predicted.megapixels < block.predicted.megapixels for child in children
            )
            if not pixels_only or helps:
                return [leaf for half in halves for leaf in self.split(half, depth + 1)]
        return [block.model_copy(update={"over_budget": True})]

    def _halves(self, core: GroundRect) -> tuple[GroundRect, GroundRect] | None:
        """``core`` cut in two at the point-weighted median across its longer side; ``None``: one cell wide."""
        owned = [cell for cell in self.cells if core.contains(cell.u, cell.v)]
        spans = {axis: max(_at(c, axis) for c in owned) - min(_at(c, axis) for c in owned) for axis in (0, 1)}
        for axis in sorted(spans, key=lambda a: -spans[a]):
            cut = _weighted_cut(owned, axis, self.summary.cell_size)
            if cut is None:
                continue
            low, high = ("u_max", "u_min") if axis == 0 else ("v_max", "v_min")
            return core.model_copy(update={low: cut}), core.model_copy(update={high: cut})
        return None


def summary_ground(summary: SceneSummary, point: Sequence[float]) -> tuple[float, float]:
    """``(u, v)`` of a model-frame point in the summary's ground axes."""
    e, n = summary.axes[0], summary.axes[1]
    return (_dot(e, point), _dot(n, point))


def _at(cell: _Cell, axis: int) -> float:
    return cell.u if axis == 0 else cell.v


def _weighted_cut(cells: list[_Cell], axis: int, cell_size: float) -> float | None:
    """A cell edge near the point-weighted median along ``axis`` with cells on both sides."""
    columns: dict[float, int] = {}
    for cell in cells:
        columns[_at(cell, axis)] = columns.get(_at(cell, axis), 0) + cell.points
    centres = sorted(columns)
    if len(centres) < 2:
        return None
    total, running = sum(columns.values()), 0
    for low, high in zip(centres, centres[1:], strict=False):
        running += columns[low]
        if running * 2 >= total:
            return (low + high) / 2 if high - low > cell_size else low + cell_size / 2
    return (centres[-2] + centres[-1]) / 2


def _cells(summary: SceneSummary) -> list[_Cell]:
    size, (u0, v0) = summary.cell_size, summary.origin
    return [_Cell(u0 + (i + 0.5) * size, v0 + (j + 0.5) * size, count) for i, j, count, _, _ in summary.cells if count]


def _extent(summary: SceneSummary, cells: list[_Cell]) -> Rect:
    half = summary.cell_size / 2
    return (
        min(c.u for c in cells) - half,
        min(c.v for c in cells) - half,
        max(c.u for c in cells) + half,
        max(c.v for c in cells) + half,
    )


def _sight(view: ViewSummary, summary: SceneSummary, extent: Rect, image_size_px: int) -> _Sight:
    """The ground each of a camera's sample rays may see: its run through the slab of heights, in the scene."""
    east, north, up = summary.axes
    low, high = summary.heights
    centre = view.centre
    cu, cv, ch = _dot(east, centre), _dot(north, centre), _dot(up, centre)
    # Nothing in the scene lies further away than its farthest corner, at the farther end of the slab.
    farthest = max(math.hypot(u - cu, v - cv) for u in (extent[0], extent[2]) for v in (extent[1], extent[3]))
    reach = math.hypot(farthest, max(abs(ch - low), abs(ch - high)))
    segments = []
    faces_ground = False
    for row in range(RAYS_DOWN):
        for column in range(RAYS_ACROSS):
            x = (column + 0.5) * view.width / RAYS_ACROSS
            y = (row + 0.5) * view.height / RAYS_DOWN
            d = view.ray(x, y)
            length = math.sqrt(_dot(d, d))
            du, dv, dh = _dot(east, d) / length, _dot(north, d) / length, _dot(up, d) / length
            span = _slab(ch, dh, low, high, reach)
            if span is None:
                continue
            faces_ground = True
            t0, t1 = span
            clipped = _clip((cu + t0 * du, cv + t0 * dv, cu + t1 * du, cv + t1 * dv), extent)
            if clipped is not None:
                segments.append(clipped)
    box = None
    if segments:
        box = (
            min(min(s[0], s[2]) for s in segments),
            min(min(s[1], s[3]) for s in segments),
            max(max(s[0], s[2]) for s in segments),
            max(max(s[1], s[3]) for s in segments),
        )
    return _Sight(view.name, view.megapixels(image_size_px), tuple(segments), box, faces_ground)


def _slab(height: float, rise: float, low: float, high: float, reach: float) -> tuple[float, float] | None:
    """The distances along a ray (from ``height``, rising ``rise`` per unit) within [low, high], up to ``reach``."""
    if abs(rise) < 1e-9:
        return (0.0, reach) if low <= height <= high else None
    t_low, t_high = (low - height) / rise, (high - height) / rise
    start, end = max(min(t_low, t_high), 0.0), min(max(t_low, t_high), reach)
    return (start, end) if end > start else None


def _clip(segment: Segment, rect: Rect) -> Segment | None:
    """The part of ``segment`` inside ``rect`` (Liang-Barsky), or ``None``."""
    u0, v0, u1, v1 = segment
    du, dv = u1 - u0, v1 - v0
    t0, t1 = 0.0, 1.0
    for p, q in ((-du, u0 - rect[0]), (du, rect[2] - u0), (-dv, v0 - rect[1]), (dv, rect[3] - v0)):
        if p == 0:
            if q < 0:
                return None
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return None
    return (u0 + t0 * du, v0 + t0 * dv, u0 + t1 * du, v0 + t1 * dv)


def _crosses(segment: Segment, rect: Rect) -> bool:
    return _clip(segment, rect) is not None


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _inside(u: float, v: float, rect: Rect) -> bool:
    return rect[0] <= u < rect[2] and rect[1] <= v < rect[3]


def _rect(rect: Rect) -> GroundRect:
    return GroundRect(u_min=rect[0], v_min=rect[1], u_max=rect[2], v_max=rect[3])


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _size(prediction: Prediction) -> str:
    return f"{prediction.gaussians:,} Gaussians, {prediction.megapixels:,.0f} megapixels"


def _budget(budget: BlockBudget) -> str:
    return f"{budget.max_gaussians:,} Gaussians and {budget.max_megapixels:,.0f} megapixels per job"


def demo_summary() -> SceneSummary:
    """A small georeferenced scene for examples: 12 nadir cameras 20 m up over two 20 m fields of points."""
    down = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0)  # camera x east, y south, looking down
    views = [
        ViewSummary(
            name=f"img_{i:02d}.jpg",
            centre=(-15.0 + 6.0 * (i % 6), -5.0 + 10.0 * (i // 6), 20.0),
            rotation=down,
            fx=100.0,
            fy=100.0,
            cx=50.0,
            cy=40.0,
            width=100,
            height=80,
        )
        for i in range(12)
    ]
    cells: list[GridCell] = [(i, j, 50, 0.0, 2.0) for i in range(20) for j in range(10)]
    return SceneSummary(
        frame="enu",
        axes=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)),
        views=views,
        cell_size=2.0,
        origin=(-20.0, -10.0),
        cells=cells,
        points=sum(cell[2] for cell in cells),
        heights=(0.0, 2.0),
    )
