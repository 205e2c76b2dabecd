"""Per-image reading: decode, apply EXIF orientation, downscale, read focal prior, GPS, time and XMP.

Works in place on the staged copies (never on the input). An image that cannot be decoded
is dropped and named with the reason; the rest are left as files pycolmap can read, upright
and at most ``max_image_size`` pixels on the long side.

Example::

    photos, unreadable = read_images(Path("out/.work/images"), ["a.jpg", "b.png"], 3200)
    photos[0].focal_px, photos[0].gps    # prior in SfM pixels, (lat, lon, alt) or None
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from spaceport_sfm.exif import read_exif
from spaceport_sfm.gps import PhotoMeta
from spaceport_sfm.xmp import DjiXmp, read_dji_xmp

MIN_IMAGE_SIDE = 32  # smaller than this, SIFT finds nothing to match
JPEG_QUALITY = 95


@dataclass(frozen=True)
class Photo:
    """One usable image, as SfM sees it."""

    name: str  # path relative to the image folder
    width: int
    height: int
    original_size: tuple[int, int]  # (width, height) upright, before downscaling
    focal_px: float | None  # EXIF focal length prior in SfM pixels
    gps: tuple[float, float, float] | None  # lat, lon, alt from EXIF
    taken_at: datetime | None = None  # EXIF DateTimeOriginal
    xmp: DjiXmp | None = None  # DJI's XMP fields

    @property
    def scale(self) -> float:
        """SfM pixels per original pixel (1.0 unless downscaled)."""
        return self.width / self.original_size[0]

    def meta(self) -> PhotoMeta:
        """What the photo says about where it was taken."""
        return PhotoMeta(self.name, self.gps, self.xmp, self.taken_at)


def _read_one(path: Path, name: str, max_image_size: int) -> Photo:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            image.load()  # decodes every pixel: a truncated or damaged file fails here
            exif = read_exif(image)
            xmp = read_dji_xmp(image)
            upright = ImageOps.exif_transpose(image) if exif.orientation != 1 else image
            original_size = upright.size
            if min(original_size) < MIN_IMAGE_SIDE:
                raise ValueError(f"too small ({original_size[0]}x{original_size[1]} pixels)")
            changed = upright is not image or upright.mode not in ("RGB", "L")
            long_side = max(original_size)
            if long_side > max_image_size:
                factor = max_image_size / long_side
                size = (max(1, round(original_size[0] * factor)), max(1, round(original_size[1] * factor)))
                upright = upright.resize(size, Image.Resampling.LANCZOS)
                changed = True
            if changed:
                # Saved without EXIF, so nothing downstream rotates the pixels a second time.
                rgb = upright.convert("RGB")
                options: dict[str, Any] = {"quality": JPEG_QUALITY} if path.suffix.lower() in (".jpg", ".jpeg") else {}
                rgb.save(path, **options)
            width, height = upright.size
    # Rotation keeps the long side, so the prior only follows the downscaling.
    focal = exif.focal_px * max(width, height) / long_side if exif.focal_px else None
    return Photo(name, width, height, original_size, focal, exif.gps, exif.taken_at, xmp)


def read_images(
    image_dir: Path, names: list[str], max_image_size: int, on_progress: Callable[[int], None] | None = None
) -> tuple[list[Photo], list[dict[str, str]]]:
    """Read and prepare every staged image; return the usable ones and the unreadable ones.

    ``on_progress(count)`` is called after every tenth of the photos.
    """
    photos: list[Photo] = []
    unreadable: list[dict[str, str]] = []
    step = math.ceil(len(names) / 10)
    for index, name in enumerate(names, start=1):
        path = image_dir / name
        try:
            photos.append(_read_one(path, name, max_image_size))
        except (
            OSError,
            SyntaxError,
            ValueError,
            Image.DecompressionBombError,
            Image.DecompressionBombWarning,
        ) as error:
            unreadable.append({"name": name, "reason": f"cannot be read as an image: {error}"})
            path.unlink(missing_ok=True)
        if on_progress is not None and (index % step == 0 or index == len(names)):
            on_progress(index)
    return photos, unreadable
