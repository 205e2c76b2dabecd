"""What a photo's EXIF tells SfM: the focal length (a prior, in pixels), GPS and when it was taken.

:func:`make_exif` writes the fields as a drone camera does (for synthetic captures) and
:func:`read_exif` reads them back:

>>> import io
>>> from datetime import datetime
>>> buffer = io.BytesIO()
>>> exif = make_exif(focal_35mm=24, gps=(47.37, 8.54, 420.0), taken_at=datetime(2026, 6, 1, 10, 0, 2, 500000))
>>> Image.new("RGB", (360, 240)).save(buffer, "JPEG", exif=exif)
>>> meta = read_exif(Image.open(buffer))
>>> meta.focal_px, [round(value, 6) for value in meta.gps], meta.taken_at.isoformat()
(240.0, [47.37, 8.54, 420.0], '2026-06-01T10:00:02.500000')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

# A 35 mm film frame is 36 mm wide: f_px = f_35mm / 36 * long side in pixels.
FILM_35MM_WIDTH_MM = 36.0
# FocalPlaneResolutionUnit: 2 = inch, 3 = cm, 4 = mm.
_MM_PER_UNIT = {2: 25.4, 3: 10.0, 4: 1.0}


@dataclass(frozen=True)
class PhotoExif:
    focal_px: float | None  # in pixels of the image as stored (orientation does not change it)
    gps: tuple[float, float, float] | None  # lat, lon (degrees), alt (metres; 0 when absent)
    orientation: int  # EXIF orientation tag, 1 = upright
    taken_at: datetime | None = None  # DateTimeOriginal (+ sub-seconds; aware when EXIF gives the offset)


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if number == number else None  # NaN from a 0/0 rational


def _degrees(dms: Any, ref: Any) -> float | None:
    try:
        d, m, s = (_float(v) for v in dms)
    except (TypeError, ValueError):
        return None
    if d is None or m is None or s is None:
        return None
    sign = -1.0 if str(ref).strip().upper() in ("S", "W") else 1.0
    return sign * (d + m / 60.0 + s / 3600.0)


def _focal_px(exif_ifd: Mapping[int, Any], long_side: int) -> float | None:
    f35 = _float(exif_ifd.get(ExifTags.Base.FocalLengthIn35mmFilm))
    if f35 and f35 > 0:
        return f35 / FILM_35MM_WIDTH_MM * long_side
    focal_mm = _float(exif_ifd.get(ExifTags.Base.FocalLength))
    x_res = _float(exif_ifd.get(ExifTags.Base.FocalPlaneXResolution))
    unit_mm = _MM_PER_UNIT.get(int(_float(exif_ifd.get(ExifTags.Base.FocalPlaneResolutionUnit)) or 2))
    if focal_mm and focal_mm > 0 and x_res and x_res > 0 and unit_mm:
        # FocalPlaneXResolution is pixels per unit on the sensor at the stored resolution.
        return focal_mm * x_res / unit_mm
    return None


EXIF_TIME_FORMAT = "%Y:%m:%d %H:%M:%S"


def _taken_at(exif_ifd: Mapping[int, Any]) -> datetime | None:
    """DateTimeOriginal with its sub-seconds and, when EXIF states it, its UTC offset."""
    text = exif_ifd.get(ExifTags.Base.DateTimeOriginal)
    try:
        taken = datetime.strptime(str(text).strip().rstrip("\x00"), EXIF_TIME_FORMAT)
    except ValueError:
        return None
    subsec = str(exif_ifd.get(ExifTags.Base.SubsecTimeOriginal, "")).strip().rstrip("\x00")
    if subsec.isdigit():
        taken += timedelta(seconds=float("0." + subsec))
    offset = str(exif_ifd.get(ExifTags.Base.OffsetTimeOriginal, "")).strip().rstrip("\x00")
    try:
        zone = datetime.strptime(offset, "%z").tzinfo if offset else None
    except ValueError:
        zone = None
    return taken.replace(tzinfo=zone) if zone else taken


def read_exif(image: Image.Image) -> PhotoExif:
    """Focal length prior, GPS, orientation and capture time of an opened image; missing fields are None."""
    exif = image.getexif()
    orientation = int(_float(exif.get(ExifTags.Base.Orientation)) or 1)
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    focal = _focal_px(exif_ifd, max(image.size))
    gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps = None
    lat = _degrees(gps_ifd.get(ExifTags.GPS.GPSLatitude, ()), gps_ifd.get(ExifTags.GPS.GPSLatitudeRef, "N"))
    lon = _degrees(gps_ifd.get(ExifTags.GPS.GPSLongitude, ()), gps_ifd.get(ExifTags.GPS.GPSLongitudeRef, "E"))
    if lat is not None and lon is not None and abs(lat) <= 90 and abs(lon) <= 180:
        alt = _float(gps_ifd.get(ExifTags.GPS.GPSAltitude)) or 0.0
        below_sea_level = gps_ifd.get(ExifTags.GPS.GPSAltitudeRef) in (1, b"\x01")
        gps = (lat, lon, -alt if below_sea_level else alt)
    return PhotoExif(
        focal_px=focal,
        gps=gps,
        orientation=orientation if 1 <= orientation <= 8 else 1,
        taken_at=_taken_at(exif_ifd),
    )


def _rational(value: float, denominator: int) -> IFDRational:
    return IFDRational(round(value * denominator), denominator)


def _dms(degrees: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    degrees = abs(degrees)
    d = int(degrees)
    m = int((degrees - d) * 60)
    s = (degrees - d - m / 60.0) * 3600.0
    # 1e-5 arc seconds is 0.3 mm on the ground: far below anything SfM resolves.
    return IFDRational(d, 1), IFDRational(m, 1), _rational(s, 100_000)


def make_exif(
    focal_35mm: int | None = None,
    gps: tuple[float, float, float] | None = None,
    make: str = "Spaceport",
    model: str = "Synthetic drone",
    taken_at: datetime | None = None,
) -> Image.Exif:
    """EXIF with the fields SfM reads, as a drone camera writes them."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = make
    exif[ExifTags.Base.Model] = model
    if focal_35mm is not None:
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.FocalLengthIn35mmFilm] = int(focal_35mm)
    if taken_at is not None:
        exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
        exif_ifd[ExifTags.Base.DateTimeOriginal] = taken_at.strftime(EXIF_TIME_FORMAT)
        exif_ifd[ExifTags.Base.SubsecTimeOriginal] = f"{taken_at.microsecond // 1000:03d}"
        if taken_at.utcoffset() is not None:
            exif_ifd[ExifTags.Base.OffsetTimeOriginal] = taken_at.strftime("%z")[:3] + ":" + taken_at.strftime("%z")[3:]
    if gps is not None:
        lat, lon, alt = gps
        gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
        gps_ifd[ExifTags.GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
        gps_ifd[ExifTags.GPS.GPSLatitude] = _dms(lat)
        gps_ifd[ExifTags.GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
        gps_ifd[ExifTags.GPS.GPSLongitude] = _dms(lon)
        gps_ifd[ExifTags.GPS.GPSAltitudeRef] = 0 if alt >= 0 else 1
        gps_ifd[ExifTags.GPS.GPSAltitude] = _rational(abs(alt), 1000)
    return exif
