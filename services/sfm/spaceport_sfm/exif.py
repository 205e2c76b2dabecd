"""What a photo's EXIF tells SfM: the focal length (a prior, in pixels) and GPS.

Example::

    with Image.open("DJI_0001.JPG") as image:
        meta = read_exif(image)
    meta.focal_px    # e.g. 2304.0, or None when EXIF has no usable focal length
    meta.gps         # (lat, lon, alt) in degrees/metres, or None

and the other way round, for synthetic captures::

    image.save("photo.jpg", exif=make_exif(focal_35mm=24, gps=(47.37, 8.54, 420.0)))
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _float(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if number == number else None  # NaN from a 0/0 rational


def _degrees(dms, ref) -> float | None:
    try:
        d, m, s = (_float(v) for v in dms)
    except (TypeError, ValueError):
        return None
    if d is None or m is None or s is None:
        return None
    sign = -1.0 if str(ref).strip().upper() in ("S", "W") else 1.0
    return sign * (d + m / 60.0 + s / 3600.0)


def _focal_px(exif_ifd, long_side: int) -> float | None:
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


def read_exif(image: Image.Image) -> PhotoExif:
    """Focal length prior, GPS and orientation of an opened image; missing fields are None."""
    exif = image.getexif()
    orientation = int(_float(exif.get(ExifTags.Base.Orientation)) or 1)
    focal = _focal_px(exif.get_ifd(ExifTags.IFD.Exif), max(image.size))
    gps_ifd = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps = None
    lat = _degrees(gps_ifd.get(ExifTags.GPS.GPSLatitude, ()), gps_ifd.get(ExifTags.GPS.GPSLatitudeRef, "N"))
    lon = _degrees(gps_ifd.get(ExifTags.GPS.GPSLongitude, ()), gps_ifd.get(ExifTags.GPS.GPSLongitudeRef, "E"))
    if lat is not None and lon is not None and abs(lat) <= 90 and abs(lon) <= 180:
        alt = _float(gps_ifd.get(ExifTags.GPS.GPSAltitude)) or 0.0
        below_sea_level = gps_ifd.get(ExifTags.GPS.GPSAltitudeRef) in (1, b"\x01")
        gps = (lat, lon, -alt if below_sea_level else alt)
    return PhotoExif(focal_px=focal, gps=gps, orientation=orientation if 1 <= orientation <= 8 else 1)


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
) -> Image.Exif:
    """EXIF with the fields SfM reads, as a drone camera writes them."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = make
    exif[ExifTags.Base.Model] = model
    if focal_35mm is not None:
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.FocalLengthIn35mmFilm] = int(focal_35mm)
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
