"""A COLMAP reconstruction and its undistorted photos, as training reads them.

``SFM_DIR`` is what ``spaceport sfm`` writes (``sparse/0`` + ``images/``); a plain COLMAP
layout (model in ``sparse/``, or the model files in ``SFM_DIR`` itself) works too.

Photos are not loaded up front: a :class:`View` knows its file and its training size, and
the scene's :class:`ImageStore` decodes a photo when a step asks for it, resizes it to that
size and keeps it as uint8 while its memory budget lasts (least recently used goes first).
So memory depends on the budget, not on the number of photos; only the one image of the
current step is ever float32.

The training size is chosen per photo: ``resolution_scale`` of the SfM image, with the long
side capped at ``max_image_size`` pixels (:func:`training_scale`).

>>> training_scale(3200, 2400, resolution_scale=1.0, max_image_size=1600)
(0.5, 'long side capped at 1600 px (3200 px photos)')
>>> training_scale(504, 378, resolution_scale=1.0, max_image_size=1600)
(1.0, 'the SfM images as they are (504 px long side, within the 1600 px cap)')
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from spaceport_train.errors import MissingImageError, NoPointsError, NoSparseModelError, TooFewImagesError

PINHOLE_MODELS = ("SIMPLE_PINHOLE", "PINHOLE")


@dataclass(frozen=True)
class View:
    """One registered photo: where its file is, its camera, and the size training uses it at."""

    name: str
    path: Path
    viewmat: Tensor  # [4, 4] world-to-camera, OpenCV axes
    K: Tensor  # [3, 3] for width x height
    width: int
    height: int

    def scaled(self, scale: float) -> View:
        """The same view at ``scale`` times its size (the intrinsics follow)."""
        if scale == 1.0:
            return self
        width, height = max(1, round(self.width * scale)), max(1, round(self.height * scale))
        K = self.K.clone()
        K[0] *= width / self.width
        K[1] *= height / self.height
        return replace(self, K=K, width=width, height=height)


@dataclass
class ImageStore:
    """Photos decoded on demand at a view's size, kept as uint8 up to ``budget_bytes``."""

    budget_bytes: int
    _cache: OrderedDict[tuple[Path, int, int], Tensor] = field(default_factory=OrderedDict)
    cached_bytes: int = 0
    peak_bytes: int = 0
    loads: int = 0

    def image(self, view: View) -> Tensor:
        """[H, W, 3] float32 in [0, 1] at the view's size."""
        key = (view.path, view.width, view.height)
        pixels = self._cache.get(key)
        if pixels is None:
            pixels = self._load(view)
            self.loads += 1
            size = pixels.numel()
            if size <= self.budget_bytes:
                while self.cached_bytes + size > self.budget_bytes:
                    _, evicted = self._cache.popitem(last=False)
                    self.cached_bytes -= evicted.numel()
                self._cache[key] = pixels
                self.cached_bytes += size
                self.peak_bytes = max(self.peak_bytes, self.cached_bytes)
        else:
            self._cache.move_to_end(key)
        return pixels.to(torch.float32) / 255.0

    @staticmethod
    def _load(view: View) -> Tensor:
        from PIL import Image

        try:
            with Image.open(view.path) as photo:
                rgb = photo.convert("RGB")
                if rgb.size != (view.width, view.height):
                    # Box filtering is area averaging: what a downscaled sensor would have seen.
                    rgb = rgb.resize((view.width, view.height), Image.Resampling.BOX)
                return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy())
        except (OSError, ValueError) as error:
            raise MissingImageError(f"The photo {view.name} cannot be read from {view.path} ({error}).") from None


@dataclass
class Scene:
    views: list[View]  # sorted by image name, at training size
    train_ids: list[int]
    eval_ids: list[int]
    points: Tensor  # [P, 3] SfM points
    point_colors: Tensor  # [P, 3] in [0, 1]
    scene_scale: float  # 1.1 x the largest camera distance from their mean (gsplat's convention)
    images: ImageStore
    resolution: dict[str, Any]  # the training size and why it was chosen

    def image(self, view: View) -> Tensor:
        return self.images.image(view)

    def fingerprint(self) -> str:
        """Identifies the image set, so a checkpoint is never resumed on another scene."""
        names = "\n".join(f"{v.name}:{v.width}x{v.height}" for v in self.views)
        return hashlib.sha256(names.encode()).hexdigest()[:16]


def find_sparse_model(sfm_dir: Path) -> Path:
    """The folder holding ``cameras.bin|txt``: ``sparse/0``, ``sparse`` or ``sfm_dir`` itself."""
    for candidate in (sfm_dir / "sparse" / "0", sfm_dir / "sparse", sfm_dir):
        if any((candidate / f"cameras.{ext}").is_file() for ext in ("bin", "txt")):
            return candidate
    raise NoSparseModelError(
        f"{sfm_dir} holds no COLMAP model (sparse/0/cameras.bin): run `spaceport sfm` on the photos first."
    )


def training_scale(width: int, height: int, resolution_scale: float, max_image_size: int) -> tuple[float, str]:
    """The scale a ``width`` x ``height`` SfM image trains at, and the reason, in words."""
    long_side = max(width, height)
    scale = resolution_scale
    if max_image_size and long_side * scale > max_image_size:
        return max_image_size / long_side, f"long side capped at {max_image_size} px ({long_side} px photos)"
    if scale != 1.0:
        return scale, f"resolution_scale {scale:g} of the {long_side} px SfM images"
    within = f", within the {max_image_size} px cap" if max_image_size else ""
    return 1.0, f"the SfM images as they are ({long_side} px long side{within})"


def load_scene(
    sfm_dir: Path,
    resolution_scale: float = 1.0,
    eval_every_nth_image: int = 8,
    max_image_size: int = 0,
    image_cache_mb: float = 1024.0,
) -> Scene:
    """The registered views (photos checked, not decoded), the SfM points and the image store."""
    import pycolmap
    from PIL import Image

    sfm_dir = Path(sfm_dir)
    if not sfm_dir.is_dir():
        raise NoSparseModelError(f"{sfm_dir} does not exist: pass the output folder of `spaceport sfm`.")
    model_dir = find_sparse_model(sfm_dir)
    try:
        reconstruction = pycolmap.Reconstruction(str(model_dir))
    except Exception as error:  # pycolmap raises plain RuntimeErrors for damaged files
        raise NoSparseModelError(f"The COLMAP model in {model_dir} cannot be read ({error}).") from None
    image_dir = sfm_dir / "images"
    if not image_dir.is_dir():
        raise MissingImageError(f"{sfm_dir} has no images/ folder with the undistorted photos.")

    views: list[View] = []
    reasons: dict[str, int] = {}
    for image in sorted(reconstruction.images.values(), key=lambda im: im.name):
        if not image.has_pose:
            continue
        camera = reconstruction.cameras[image.camera_id]
        if camera.model.name not in PINHOLE_MODELS:
            raise MissingImageError(
                f"{image.name} uses the {camera.model.name} camera model; training needs "
                "undistorted (PINHOLE) images, as `spaceport sfm` writes them."
            )
        path = image_dir / image.name
        try:
            with Image.open(path) as photo:  # reads the header only
                size = photo.size
        except (OSError, ValueError) as error:
            raise MissingImageError(
                f"The photo {image.name} is missing or unreadable in {image_dir} ({error})."
            ) from None
        if size != (camera.width, camera.height):
            raise MissingImageError(
                f"{image.name} is {size[0]}x{size[1]} px but its camera is "
                f"{camera.width}x{camera.height}: the images are not the model's."
            )
        viewmat = np.eye(4)
        viewmat[:3] = image.cam_from_world().matrix()
        view = View(
            image.name,
            path,
            torch.tensor(viewmat, dtype=torch.float32),
            torch.tensor(camera.calibration_matrix(), dtype=torch.float32),
            int(camera.width),
            int(camera.height),
        )
        scale, reason = training_scale(view.width, view.height, resolution_scale, max_image_size)
        reasons[reason] = reasons.get(reason, 0) + 1
        views.append(view.scaled(scale))

    eval_ids = [i for i in range(len(views)) if i % eval_every_nth_image == 0]
    train_ids = [i for i in range(len(views)) if i % eval_every_nth_image != 0]
    if len(train_ids) < 2:
        raise TooFewImagesError(
            f"The model registers {len(views)} image(s), which leaves {len(train_ids)} for "
            "training after holding out every "
            f"{eval_every_nth_image}th: at least 2 are needed."
        )
    points = np.array([p.xyz for p in reconstruction.points3D.values()], dtype=np.float32).reshape(-1, 3)
    colors = np.array([p.color for p in reconstruction.points3D.values()], dtype=np.float32).reshape(-1, 3)
    if len(points) == 0:
        raise NoPointsError(f"The COLMAP model in {model_dir} has no 3D points to start the Gaussians from.")

    centres = torch.stack([torch.linalg.inv(v.viewmat)[:3, 3] for v in views])
    scene_scale = 1.1 * float((centres - centres.mean(0)).norm(dim=1).max())
    largest = max(views, key=lambda v: v.width * v.height)
    resolution = {
        "width": largest.width,
        "height": largest.height,
        "reason": "; ".join(
            f"{reason} ({count} photos)" if len(reasons) > 1 else reason for reason, count in reasons.items()
        ),
        "max_image_size": max_image_size,
        "resolution_scale": resolution_scale,
    }
    return Scene(
        views,
        train_ids,
        eval_ids,
        torch.from_numpy(points),
        torch.from_numpy(colors / 255.0),
        max(scene_scale, 1e-6),
        ImageStore(int(image_cache_mb * 2**20)),
        resolution,
    )
