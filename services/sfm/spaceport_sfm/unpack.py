"""Safe unpacking: a ZIP (or a folder) of photos becomes a folder of image files we own.

Only image entries are written, each under ``dest`` and nowhere else. A ZIP that tries to
escape (``../``, absolute paths, symlinks) is refused as a whole; one that would expand to
too many files or bytes, or compresses like a zip bomb, is refused before anything is
written. ``__MACOSX``, hidden files and non-images are skipped and listed. The input is only
ever read.

Example::

    staged = stage_photos(Path("flight.zip"), Path("out/.work/images"))
    staged.names      # ["DJI_0001.JPG", "survey/DJI_0002.JPG", ...] relative to dest
    staged.skipped    # [{"name": "__MACOSX/._DJI_0001.JPG", "reason": "macOS metadata"}]
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from spaceport_sfm.errors import (
    CorruptZipError,
    NoImagesError,
    NotAZipError,
    PhotosNotFoundError,
    UnsafeZipError,
    ZipTooLargeError,
)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff"})
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_CHUNK = 1 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class UnpackLimits:
    """Caps that stop a zip bomb before it fills the disk."""

    max_total_bytes: int = 32 * 2**30  # 32 GiB uncompressed: a few thousand 48 MP photos
    max_files: int = 20_000
    max_ratio: float = 100.0  # photos barely compress; a bomb compresses 1000:1 and more
    ratio_min_bytes: int = 1 << 20  # small files (text, thumbnails) may compress well


@dataclass
class StagedPhotos:
    names: list[str] = field(default_factory=list)  # image paths relative to the destination
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"name", "reason"}


def _skip_reason(parts: tuple[str, ...]) -> str | None:
    """Why an entry is not a photo for SfM; None when it is one."""
    if any(part == "__MACOSX" for part in parts):
        return "macOS metadata"
    if any(part.startswith(".") for part in parts):
        return "hidden file"
    if PurePosixPath(parts[-1]).suffix.lower() not in IMAGE_EXTENSIONS:
        return "not a JPEG, PNG or TIFF image"
    return None


def _safe_parts(name: str) -> tuple[str, ...]:
    """The path components of a ZIP entry name, refusing anything that could escape."""
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise UnsafeZipError(
            "The ZIP contains a file with an absolute path, which is not allowed: "
            "zip the photos from inside their folder.",
            entry=name,
        )
    parts = tuple(part for part in re.split(r"[\\/]+", name) if part not in ("", "."))
    if ".." in parts:
        raise UnsafeZipError(
            "The ZIP contains a file that points outside the folder ('..' in its path), "
            "which is not allowed: zip the photos again from their folder.",
            entry=name,
        )
    return parts


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _check_limits(entries: list[zipfile.ZipInfo], limits: UnpackLimits) -> None:
    if len(entries) > limits.max_files:
        raise ZipTooLargeError(
            f"The ZIP holds {len(entries)} files; the most this service takes is {limits.max_files}.",
            files=len(entries),
        )
    total = sum(info.file_size for info in entries)
    if total > limits.max_total_bytes:
        raise ZipTooLargeError(
            f"The ZIP expands to {total / 2**30:.1f} GiB; the most this service takes is "
            f"{limits.max_total_bytes / 2**30:.1f} GiB.",
            uncompressed_bytes=total,
        )
    for info in entries:
        if info.file_size >= limits.ratio_min_bytes:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_ratio:
                raise ZipTooLargeError(
                    "The ZIP looks like a zip bomb (a file compressed more than "
                    f"{limits.max_ratio:.0f} to 1), so it was not unpacked.",
                    entry=info.filename,
                    ratio=round(ratio, 1),
                )


def _copy_limited(source: IO[bytes], target: Path, declared: int, name: str) -> None:
    """Copy one entry, refusing to write more than its header declared (a lying header)."""
    written = 0
    with open(target, "wb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > declared:
                raise ZipTooLargeError(
                    "The ZIP looks like a zip bomb (a file expands beyond its declared size), so it was not unpacked.",
                    entry=name,
                )
            out.write(chunk)


def looks_like_zip(path: Path) -> bool:
    """Whether a file starts like a ZIP archive (its extension does not matter)."""
    with open(path, "rb") as handle:
        return handle.read(4) in ZIP_MAGIC


def _open_zip(path: Path) -> zipfile.ZipFile:
    if not looks_like_zip(path):
        raise NotAZipError(
            f"{path.name} is not a ZIP file: upload the photos as a .zip archive (or a folder).",
            file=path.name,
        )
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError) as error:
        raise CorruptZipError(
            f"{path.name} is damaged and cannot be opened: create the ZIP again and re-upload it.",
            file=path.name,
            detail=str(error),
        ) from None


def _unzip(path: Path, dest: Path, limits: UnpackLimits) -> StagedPhotos:
    staged = StagedPhotos()
    with _open_zip(path) as archive:
        entries = [info for info in archive.infolist() if not info.is_dir()]
        photos: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
        seen: set[str] = set()  # lower-case: two names differing only in case collide on some disks
        for info in entries:  # validate every entry before writing anything
            parts = _safe_parts(info.filename)
            if _is_symlink(info):
                raise UnsafeZipError(
                    "The ZIP contains a symbolic link, which is not allowed: zip the photo files themselves.",
                    entry=info.filename,
                )
            if info.flag_bits & 0x1:
                raise CorruptZipError(
                    "The ZIP is password-protected: create it again without a password.", entry=info.filename
                )
            reason = _skip_reason(parts) if parts else "empty name"
            if not reason and "/".join(parts).lower() in seen:
                reason = "duplicate name"
            if reason:
                staged.skipped.append({"name": info.filename, "reason": reason})
            else:
                seen.add("/".join(parts).lower())
                photos.append((info, parts))
        _check_limits(entries, limits)
        for info, parts in photos:
            target = dest.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(info) as source:
                    _copy_limited(source, target, info.file_size, info.filename)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
                raise CorruptZipError(
                    f"The ZIP is damaged ({info.filename} cannot be read): create it again and re-upload it.",
                    entry=info.filename,
                    detail=str(error),
                ) from None
            staged.names.append("/".join(parts))
    return staged


def _copy_folder(folder: Path, dest: Path) -> StagedPhotos:
    staged = StagedPhotos()
    dest = dest.resolve()
    for path in sorted(folder.rglob("*")):
        if path.resolve() == dest or dest in path.resolve().parents:
            continue  # the output folder may sit inside the photo folder
        relative = path.relative_to(folder)
        if path.is_symlink():
            staged.skipped.append({"name": relative.as_posix(), "reason": "symbolic link"})
            continue
        if not path.is_file():
            continue
        reason = _skip_reason(relative.parts)
        if reason:
            staged.skipped.append({"name": relative.as_posix(), "reason": reason})
            continue
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        staged.names.append(relative.as_posix())
    return staged


def stage_photos(photos: Path, dest: Path, limits: UnpackLimits = UnpackLimits()) -> StagedPhotos:
    """Copy the images of a ZIP or folder into ``dest``; raise an SfM error on bad input."""
    photos = Path(photos)
    if not photos.exists():
        raise PhotosNotFoundError(f"No photos were found at {photos}.", path=str(photos))
    dest.mkdir(parents=True, exist_ok=True)
    staged = _copy_folder(photos, dest) if photos.is_dir() else _unzip(photos, dest, limits)
    if not staged.names:
        raise NoImagesError(
            "No photos were found: the upload must contain JPEG, PNG or TIFF images.",
            skipped=len(staged.skipped),
        )
    staged.names.sort()
    return staged
