"""The block plan's contract: what SfM summarises of a capture, the budget of one job, and the plan.

A capture too large for one training job is split into *blocks* on the ground plane (the ENU
east-north plane when the model is georeferenced). Three documents travel between the jobs and
the train service, all defined here:

* :class:`SceneSummary` (:attr:`~spaceport.contracts.layout.SfmOutputs.SCENE_SUMMARY`, written by
  the SfM job): every placed photo's camera and the sparse points counted on a ground grid. It is
  small enough for a Lambda to read, so the train service plans (and replans on a replay) without
  a job of its own;
* :class:`BlockBudget`: what one training job may hold (a deployment setting, sized for the GPU
  instance infra picks) and the run's steps and image size;
* :class:`BlockPlan` (:attr:`~spaceport.contracts.layout.BlockOutputs.PLAN`): the blocks, each with
  its *core* (the part of the ground it owns: the cores tile the whole plane), its *bounds* (the
  core within the scene plus an overlap margin: what it trains), the cameras that see its bounds
  and its predicted size.

Ground coordinates are ``(u, v)`` along the plan's first two axes; heights are along the third.

>>> core = GroundRect(u_max=10.0)
>>> core.contains(-1e9, 3.0), core.contains(10.0, 0.0), core.bounded
(True, False, False)
>>> budget = BlockBudget(max_gaussians=1_000_000, max_megapixels=500.0, image_size_px=1600, steps=30_000)
>>> round(predicted_gpu_hours(budget, megapixels=250.0, images=250, gaussians=1_000_000), 2)
1.2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

Vector = tuple[float, float, float]
# A non-empty cell of the ground grid: column (along u), row (along v), sparse points, lowest and
# highest point height in it.
GridCell = tuple[int, int, int, float, float]

# Training grows the Gaussians from the sparse points by densification; how far is a prior,
# corrected on the job record by the measured counts (docs/BENCHMARKS.md, "Block training").
GAUSSIANS_PER_SFM_POINT: Final = 20.0
# One training step's GPU time on the production GPU, in parts proportional to the pixels of the
# photo it renders and to the Gaussians; the same section gives where these come from.
SECONDS_PER_STEP_PER_MEGAPIXEL: Final = 0.12
SECONDS_PER_STEP_PER_MILLION_GAUSSIANS: Final = 0.024
# The GPU presets' steps and long-side image cap (spaceport_train.config keeps these in step; a test checks).
GPU_PRESET_TRAINING: Final = {"quick": (7_000, 1600), "default": (30_000, 1600), "quality": (30_000, 3200)}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ViewSummary(_Model):
    """One placed photo as the planner sees it: a pinhole camera (the undistorted model's)."""

    name: str
    centre: Vector
    # World-to-camera rotation, row-major, OpenCV axes (x right, y down, z forward).
    rotation: tuple[float, float, float, float, float, float, float, float, float]
    fx: float = Field(gt=0)
    fy: float = Field(gt=0)
    cx: float
    cy: float
    width: int = Field(gt=0)
    height: int = Field(gt=0)

    def ray(self, x: float, y: float) -> Vector:
        """The world direction of the ray through pixel ``(x, y)`` (not normalised)."""
        r = self.rotation
        a, b = (x - self.cx) / self.fx, (y - self.cy) / self.fy
        # R^T @ (a, b, 1)
        return (r[0] * a + r[3] * b + r[6], r[1] * a + r[4] * b + r[7], r[2] * a + r[5] * b + r[8])

    def megapixels(self, image_size_px: int) -> float:
        """The photo's pixels at training size (long side capped at ``image_size_px``), in millions."""
        scale = min(1.0, image_size_px / max(self.width, self.height)) if image_size_px else 1.0
        return self.width * self.height * scale * scale / 1e6


class SceneSummary(_Model):
    """What the SfM job tells the planner about a reconstruction."""

    schema_version: Literal[1] = 1
    # "enu": georeferenced, the axes are east, north, up; "sfm": the model's own frame, up estimated.
    frame: Literal["enu", "sfm"]
    axes: tuple[Vector, Vector, Vector]
    views: list[ViewSummary]
    cell_size: float = Field(gt=0)
    origin: tuple[float, float]  # ground (u, v) of the corner of cell (0, 0)
    cells: list[GridCell]
    points: int = Field(ge=0)
    # Most of the points lie between these heights (a low and a high percentile).
    heights: tuple[float, float]


class GroundRect(_Model):
    """A rectangle on the ground plane, half-open (``min <= x < max``); ``None`` is unbounded."""

    u_min: float | None = None
    v_min: float | None = None
    u_max: float | None = None
    v_max: float | None = None

    def contains(self, u: float, v: float) -> bool:
        return (
            (self.u_min is None or u >= self.u_min)
            and (self.u_max is None or u < self.u_max)
            and (self.v_min is None or v >= self.v_min)
            and (self.v_max is None or v < self.v_max)
        )

    @property
    def bounded(self) -> bool:
        return None not in (self.u_min, self.v_min, self.u_max, self.v_max)

    def finite(self) -> tuple[float, float, float, float]:
        """``(u_min, v_min, u_max, v_max)`` of a bounded rectangle."""
        if self.u_min is None or self.v_min is None or self.u_max is None or self.v_max is None:
            raise ValueError("an unbounded rectangle has no finite corners")
        return self.u_min, self.v_min, self.u_max, self.v_max


class BlockBudget(_Model):
    """What one training job may hold, and how the run trains (for the predictions)."""

    max_gaussians: int = Field(gt=0)
    max_megapixels: float = Field(gt=0)
    image_size_px: int = Field(ge=0)  # the long-side cap of the training photos (0: as they are)
    steps: int = Field(gt=0)
    # Each block's bounds are its core grown by this share of the core's size on every side.
    margin: float = Field(default=0.2, ge=0.0, le=1.0)
    # A camera trains a block when at least this share of its view of the scene falls on the block.
    min_view_share: float = Field(default=0.15, gt=0.0, le=1.0)


class Prediction(_Model):
    """How large a training job over some cameras and points is expected to be."""

    cameras: int
    points: int
    gaussians: int
    megapixels: float
    gpu_hours: float


class PlannedBlock(_Model):
    index: int = Field(ge=0)
    core: GroundRect
    bounds: GroundRect
    cameras: list[str]
    predicted: Prediction
    over_budget: bool = False


class BlockPlan(_Model):
    """The blocks of one run (a single block: the capture fits one job, which trains it whole)."""

    schema_version: Literal[1] = 1
    frame: Literal["enu", "sfm"]
    axes: tuple[Vector, Vector, Vector]
    heights: tuple[float, float]
    budget: BlockBudget
    whole: Prediction
    blocks: list[PlannedBlock]
    reason: str

    def ground(self, point: Sequence[float]) -> tuple[float, float]:
        """``(u, v)`` of a model-frame point."""
        (a, b, c), (d, e, f) = self.axes[0], self.axes[1]
        x, y, z = point[0], point[1], point[2]
        return (a * x + b * y + c * z, d * x + e * y + f * z)

    def block(self, index: int) -> PlannedBlock:
        for block in self.blocks:
            if block.index == index:
                return block
        raise KeyError(f"the plan has no block {index} (it has {len(self.blocks)})")


def predicted_gaussians(points: int) -> int:
    return round(points * GAUSSIANS_PER_SFM_POINT)


def predicted_gpu_hours(budget: BlockBudget, megapixels: float, images: int, gaussians: int) -> float:
    """GPU hours of one job of ``budget.steps`` steps over ``images`` photos (``megapixels`` in all)."""
    per_image = megapixels / max(images, 1)
    trained = min(gaussians, budget.max_gaussians)
    seconds_per_step = (
        SECONDS_PER_STEP_PER_MEGAPIXEL * per_image + SECONDS_PER_STEP_PER_MILLION_GAUSSIANS * trained / 1e6
    )
    return budget.steps * seconds_per_step / 3600.0
