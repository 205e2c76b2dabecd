"""What DJI drones write in a photo's XMP: GPS, altitudes and the gimbal's angles.

DJI cameras put a ``drone-dji`` block in the XMP packet of every JPEG: latitude, longitude,
absolute altitude, the altitude above the take-off point (``RelativeAltitude``, barometric:
precise from shot to shot, unlike GPS altitude) and the gimbal's pitch, yaw and roll in
degrees (pitch -90 looks straight down, yaw is the heading clockwise from north, roll is
positive with the right side down). Pillow parses the packet (with ``defusedxml``, which
guards against XML bombs); this module picks DJI's fields out of it.

>>> import io
>>> from PIL import Image
>>> buffer = io.BytesIO()
>>> packet = make_dji_xmp(DjiXmp(47.37, 8.54, 458.0, 30.0, gimbal_pitch=-90.0, gimbal_yaw=12.5, gimbal_roll=0.0))
>>> Image.new("RGB", (64, 48)).save(buffer, "JPEG", xmp=packet)
>>> read_dji_xmp(Image.open(buffer))
DjiXmp(lat=47.37, lon=8.54, absolute_altitude=458.0, relative_altitude=30.0, gimbal_pitch=-90.0, gimbal_yaw=12.5, gimbal_roll=0.0)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image

# DJI's attribute names; older firmware spells the longitude "GpsLongtitude".
_FIELDS = {
    "lat": ("GpsLatitude",),
    "lon": ("GpsLongitude", "GpsLongtitude"),
    "absolute_altitude": ("AbsoluteAltitude",),
    "relative_altitude": ("RelativeAltitude",),
    "gimbal_pitch": ("GimbalPitchDegree",),
    "gimbal_yaw": ("GimbalYawDegree",),
    "gimbal_roll": ("GimbalRollDegree",),
}


@dataclass(frozen=True)
class DjiXmp:
    """DJI's XMP fields of one photo; each is None when the photo does not carry it."""

    lat: float | None = None
    lon: float | None = None
    absolute_altitude: float | None = None  # metres, as the drone reports it
    relative_altitude: float | None = None  # metres above the take-off point
    gimbal_pitch: float | None = None  # degrees, -90 = nadir
    gimbal_yaw: float | None = None  # degrees clockwise from north
    gimbal_roll: float | None = None  # degrees, positive = right side down

    @property
    def gps(self) -> tuple[float, float, float] | None:
        """(lat, lon, absolute altitude) when the XMP carries a position."""
        if self.lat is None or self.lon is None or not (abs(self.lat) <= 90 and abs(self.lon) <= 180):
            return None
        return (self.lat, self.lon, self.absolute_altitude or 0.0)

    @property
    def has_gimbal(self) -> bool:
        return None not in (self.gimbal_pitch, self.gimbal_yaw, self.gimbal_roll)


def _descriptions(node: Any) -> Iterator[dict[str, Any]]:
    """Every dict in Pillow's parsed XMP tree (rdf:Description blocks and their children)."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _descriptions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _descriptions(value)


def _number(value: Any) -> float | None:
    if isinstance(value, dict):  # an element with attributes: its text is under "text"
        value = value.get("text")
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def read_dji_xmp(image: Image.Image) -> DjiXmp | None:
    """DJI's fields from an opened image's XMP; None when it has no XMP or none of them."""
    if "xmp" not in image.info and "XML:com.adobe.xmp" not in image.info:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns and returns {} when defusedxml is missing
        try:
            tree = image.getxmp()
        except Exception:  # a malformed packet is no metadata, not an unreadable photo
            return None
    values: dict[str, float] = {}
    for description in _descriptions(tree):
        for field, names in _FIELDS.items():
            for name in names:
                if field not in values and name in description:
                    number = _number(description[name])
                    if number is not None:
                        values[field] = number
    return DjiXmp(**values) if values else None


def make_dji_xmp(fields: DjiXmp) -> bytes:
    """An XMP packet with DJI's fields, laid out the way DJI cameras write it."""
    attributes = "".join(
        f'\n    drone-dji:{names[0]}="{value:+.8f}"'
        for field, names in _FIELDS.items()
        if (value := getattr(fields, field)) is not None
    )
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about="DJI Meta Data"\n'
        '    xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"'
        f"{attributes}/>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    ).encode()
