"""Read a COLMAP reconstruction and its undistorted photos into tensors for training.

``SFM_DIR`` is what ``spaceport sfm`` writes (``sparse/0`` + ``images/``); a plain COLMAP
layout (model in ``sparse/``, or the model files in ``SFM_DIR`` itself) works too.

Example::

    scene = load_scene(Path("out/sfm"), resolution_scale=0.5, eval_every_nth_image=8)
    scene.views[scene.train_ids[0]].image.shape  # [H, W, 3], float in [0, 1]
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from spaceport_train.errors import MissingImageError, NoPointsError, NoSparseModelError, TooFewImagesError

PINHOLE_MODELS = ("SIMPLE_PINHOLE", "PINHOLE")


@dataclass
class View:
    name: str
    image: Tensor  # [H, W, 3] float32 in [0, 1]
    viewmat: Tensor  # [4, 4] world-to-camera, OpenCV axes
    K: Tensor  # [3, 3]

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    def scaled(self, scale: float) -> View:
        """The same view with the photo and intrinsics resized by ``scale`` (area averaging)."""
        if scale == 1.0:
            return self
        height, width = max(1, round(self.height * scale)), max(1, round(self.width * scale))
        image = (
            torch.nn.functional.interpolate(self.image.permute(2, 0, 1)[None], size=(height, width), mode="area")[0]
            .permute(1, 2, 0)
            .contiguous()
        )
        K = self.K.clone()
        K[0] *= width / self.width
        K[1] *= height / self.height
        return View(self.name, image, self.viewmat, K)


@dataclass
class Scene:
    views: list[View]  # sorted by image name
    train_ids: list[int]
    eval_ids: list[int]
    points: Tensor  # [P, 3] SfM points
    point_colors: Tensor  # [P, 3] in [0, 1]
    scene_scale: float  # 1.1 x the largest camera distance from their mean (gsplat's convention)

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


def load_scene(sfm_dir: Path, resolution_scale: float = 1.0, eval_every_nth_image: int = 8) -> Scene:
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

    views = []
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
            with Image.open(path) as photo:
                pixels = np.asarray(photo.convert("RGB"), dtype=np.float32) / 255.0
        except (OSError, ValueError) as error:
            raise MissingImageError(
                f"The photo {image.name} is missing or unreadable in {image_dir} ({error})."
            ) from None
        if pixels.shape[:2] != (camera.height, camera.width):
            raise MissingImageError(
                f"{image.name} is {pixels.shape[1]}x{pixels.shape[0]} px but its camera is "
                f"{camera.width}x{camera.height}: the images are not the model's."
            )
        viewmat = np.eye(4)
        viewmat[:3] = image.cam_from_world().matrix()
        view = View(
            image.name,
            torch.from_numpy(pixels),
            torch.tensor(viewmat, dtype=torch.float32),
            torch.tensor(camera.calibration_matrix(), dtype=torch.float32),
        )
        views.append(view.scaled(resolution_scale))

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
    return Scene(
        views, train_ids, eval_ids, torch.from_numpy(points), torch.from_numpy(colors / 255.0), max(scene_scale, 1e-6)
    )
