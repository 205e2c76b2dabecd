"""Where each photo was taken, from every source a drone capture has: EXIF, DJI XMP, a flight log.

A photo's position comes from its EXIF GPS, else from DJI's XMP, else from the flight-log CSV
the upload came with (the seed frontend's ``csvData``: one row per photo or per log tick, with a
photo name or a time, and latitude, longitude, altitude). Log rows match photos by name, and
by capture time when the names do not match (interpolated between ticks, with a whole clock
offset found when the log runs on another time zone). A photo whose own GPS and the log
disagree by more than the stated accuracy keeps its own, and the report says so.

>>> log = parse_flight_log("name,lat,lon,alt\\nDJI_0001.JPG,47.1,8.2,480\\nDJI_0002.JPG,47.1001,8.2,481\\n")
>>> [(row.name, row.lat) for row in log.rows]
[('DJI_0001.JPG', 47.1), ('DJI_0002.JPG', 47.1001)]
>>> photos = [PhotoMeta("DJI_0001.JPG", None, None, None), PhotoMeta("DJI_0002.JPG", (47.1001, 8.2, 481.0), None, None)]
>>> located = locate_photos(photos, log, GpsAccuracy(3.0, 5.0))
>>> sorted((name, position.source) for name, position in located.positions.items())
[('DJI_0001.JPG', 'flight_log'), ('DJI_0002.JPG', 'exif')]
"""

from __future__ import annotations

import bisect
import csv
import io
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from spaceport_sfm.errors import BadFlightLogError
from spaceport_sfm.xmp import DjiXmp

# Column names a flight log may use for each field (lower case, without spaces or units).
_COLUMNS = {
    "name": ("name", "filename", "file", "image", "imagename", "photo", "photoname", "picture"),
    "time": ("time", "timestamp", "datetime", "date", "datetimeoriginal", "utc", "gpstime"),
    "lat": ("lat", "latitude", "gpslat", "gpslatitude", "y"),
    "lon": ("lon", "lng", "long", "longitude", "gpslon", "gpslongitude", "x"),
    "alt": ("alt", "altitude", "height", "absolutealtitude", "gpsalt", "gpsaltitude", "elevation", "z"),
}
MAX_LOG_BYTES = 64 * 2**20  # a 10 Hz log of a long flight is a few MB
MAX_TIME_GAP_S = 2.0  # a photo further than this from every log tick has no time match
CLOCK_OFFSET_STEP_S = 15 * 60  # time zones differ by whole quarter hours
MAX_CLOCK_OFFSET_S = 14 * 3600


@dataclass(frozen=True)
class GpsAccuracy:
    """The stated accuracy of the GPS positions: standard deviations in metres."""

    horizontal_m: float
    vertical_m: float


@dataclass(frozen=True)
class PhotoMeta:
    """What a photo says about where it was taken (see ``spaceport_sfm.images.Photo``)."""

    name: str
    exif_gps: tuple[float, float, float] | None
    xmp: DjiXmp | None
    taken_at: datetime | None


@dataclass(frozen=True)
class LogRow:
    lat: float
    lon: float
    alt: float
    name: str | None = None
    time: datetime | None = None


@dataclass(frozen=True)
class FlightLog:
    rows: list[LogRow]
    columns: dict[str, str]  # field -> the column it was read from


@dataclass(frozen=True)
class PhotoPosition:
    lat_lon_alt: tuple[float, float, float]
    source: str  # exif | xmp | flight_log
    relative_altitude: float | None = None  # metres above take-off (DJI XMP)
    gimbal: tuple[float, float, float] | None = None  # pitch, yaw, roll in degrees (DJI XMP)


@dataclass
class LocatedPhotos:
    positions: dict[str, PhotoPosition] = field(default_factory=dict)
    flight_log: dict[str, Any] | None = None  # what the report says about the log
    sources: dict[str, int] = field(default_factory=dict)  # source -> photos


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _float(text: str) -> float | None:
    try:
        value = float(text.strip())
    except (ValueError, AttributeError):
        return None
    return value if math.isfinite(value) else None


def parse_time(text: str) -> datetime | None:
    """A log time: ISO 8601, EXIF's ``YYYY:MM:DD HH:MM:SS``, or Unix seconds/milliseconds.

    Aware times become naive UTC; naive times are kept as they are (the camera's clock).

    >>> parse_time("2026-06-01T10:00:02.5Z"), parse_time("2026:06:01 10:00:02")
    (datetime.datetime(2026, 6, 1, 10, 0, 2, 500000), datetime.datetime(2026, 6, 1, 10, 0, 2))
    >>> parse_time("1780308002")
    datetime.datetime(2026, 6, 1, 10, 0, 2)
    """
    text = text.strip()
    number = _float(text)
    if number is not None:
        if number > 1e11:  # milliseconds since 1970
            number /= 1000.0
        if number < 1e8:  # not an absolute time
            return None
        return datetime.fromtimestamp(number, UTC).replace(tzinfo=None)
    if re.match(r"^\d{4}:\d{2}:\d{2}", text):
        text = text[:10].replace(":", "-") + text[10:]
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return as_naive_utc(parsed)


def as_naive_utc(moment: datetime) -> datetime:
    """Aware -> naive UTC; naive stays as it is."""
    offset = moment.utcoffset()
    return moment if offset is None else (moment - offset).replace(tzinfo=None)


def parse_flight_log(text: str) -> FlightLog:
    """Rows of a flight-log CSV; raises :class:`BadFlightLogError` when it has no usable positions."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise BadFlightLogError("The flight log is empty: it needs one row per photo with latitude and longitude.")
    try:
        dialect: Any = csv.Sniffer().sniff(lines[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    table = [row for row in csv.reader(io.StringIO("\n".join(lines)), dialect) if any(cell.strip() for cell in row)]
    header = [_key(cell) for cell in table[0]]
    columns: dict[str, int] = {}
    for field_name, names in _COLUMNS.items():
        for name in names:
            if name in header and field_name not in columns and header.index(name) not in columns.values():
                columns[field_name] = header.index(name)
    if "lat" in columns and "lon" in columns:
        body = table[1:]
    elif len(table[0]) >= 4 and _float(table[0][1]) is not None and _float(table[0][2]) is not None:
        # No header: time or photo name, lat, lon, alt (the seed frontend's order).
        first = table[0][0]
        columns = {"name" if PurePosixPath(first).suffix else "time": 0, "lat": 1, "lon": 2, "alt": 3}
        body = table
    else:
        raise BadFlightLogError(
            "The flight log has no latitude and longitude columns: name them lat and lon (or latitude and "
            "longitude) in its first row.",
            columns=table[0][:12],
        )
    rows = []
    for cells in body:

        def cell(field_name: str, cells: list[str] = cells) -> str:
            index = columns.get(field_name)
            return cells[index] if index is not None and index < len(cells) else ""

        lat, lon = _float(cell("lat")), _float(cell("lon"))
        if lat is None or lon is None or abs(lat) > 90 or abs(lon) > 180 or (lat == 0 and lon == 0):
            continue  # a header repeated, a log tick before the GPS fix
        photo_name = cell("name").strip() or None
        taken = parse_time(cell("time")) if "time" in columns else None
        rows.append(LogRow(lat, lon, _float(cell("alt")) or 0.0, photo_name, taken))
    if not rows:
        raise BadFlightLogError("The flight log has no row with a valid latitude and longitude.")
    if not any(row.name for row in rows) and not any(row.time for row in rows):
        raise BadFlightLogError(
            "The flight log's rows have neither a photo name nor a time, so they cannot be matched to the photos."
        )
    sources = {
        field_name: table[0][index] if body is not table else f"column {index + 1}"
        for field_name, index in columns.items()
    }
    return FlightLog(rows, sources)


def read_flight_log(path: Path) -> FlightLog:
    """:func:`parse_flight_log` of a file (UTF-8, a byte-order mark allowed)."""
    path = Path(path)
    if not path.is_file():
        raise BadFlightLogError(f"No flight log was found at {path}.", path=str(path))
    if path.stat().st_size > MAX_LOG_BYTES:
        raise BadFlightLogError(f"The flight log {path.name} is larger than {MAX_LOG_BYTES // 2**20} MB.")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        text = path.read_bytes().decode("latin-1")
    return parse_flight_log(text)


def _name_keys(name: str) -> tuple[str, str]:
    stem = PurePosixPath(name).name
    return stem.lower(), PurePosixPath(stem).stem.lower()


def _match_by_name(photos: Sequence[PhotoMeta], log: FlightLog) -> dict[str, LogRow]:
    by_key: dict[str, LogRow] = {}
    for row in log.rows:
        if row.name:
            for key in _name_keys(row.name):
                by_key.setdefault(key, row)
    matched = {}
    for photo in photos:
        full, stem = _name_keys(photo.name)
        found = by_key.get(full) or by_key.get(stem)
        if found is not None:
            matched[photo.name] = found
    return matched


def _position_at(times: list[float], rows: list[LogRow], t: float) -> LogRow | None:
    """The log's position at ``t`` (seconds): interpolated between the ticks around it, else the nearest."""
    i = bisect.bisect_left(times, t)
    before, after = (i - 1 if i > 0 else None), (i if i < len(times) else None)
    if before is not None and after is not None and times[after] - times[before] <= MAX_TIME_GAP_S:
        span = times[after] - times[before]
        w = 0.0 if span == 0 else (t - times[before]) / span
        a, b = rows[before], rows[after]
        return LogRow(a.lat + w * (b.lat - a.lat), a.lon + w * (b.lon - a.lon), a.alt + w * (b.alt - a.alt))
    nearest = min((j for j in (before, after) if j is not None), key=lambda j: abs(times[j] - t), default=None)
    if nearest is None or abs(times[nearest] - t) > MAX_TIME_GAP_S:
        return None
    return rows[nearest]


def _match_by_time(photos: Sequence[PhotoMeta], log: FlightLog) -> tuple[dict[str, LogRow], float]:
    """Rows for photos by capture time, and the clock offset (seconds, log minus camera) that matched most."""
    timed = sorted((row for row in log.rows if row.time), key=lambda row: row.time or datetime.min)
    if not timed:
        return {}, 0.0
    epoch = datetime(1970, 1, 1)
    times = [((row.time or epoch) - epoch).total_seconds() for row in timed]
    shots = {photo.name: (as_naive_utc(photo.taken_at) - epoch).total_seconds() for photo in photos if photo.taken_at}

    def matches(offset: float) -> dict[str, LogRow]:
        found = {}
        for name, t in shots.items():
            row = _position_at(times, timed, t + offset)
            if row is not None:
                found[name] = row
        return found

    best, best_offset = matches(0.0), 0.0
    if len(best) < len(shots) / 2:
        for step in range(-MAX_CLOCK_OFFSET_S // CLOCK_OFFSET_STEP_S, MAX_CLOCK_OFFSET_S // CLOCK_OFFSET_STEP_S + 1):
            offset = float(step * CLOCK_OFFSET_STEP_S)
            if offset and abs(times[0] - (min(shots.values(), default=0) + offset)) < 86_400:
                found = matches(offset)
                if len(found) > len(best):
                    best, best_offset = found, offset
    return best, best_offset


def _distance_m(a: tuple[float, float, float], b: tuple[float, float, float]) -> tuple[float, float]:
    """Horizontal and vertical distance between two lat/lon/alt (an equirectangular approximation)."""
    north = math.radians(b[0] - a[0]) * 6_371_000.0
    east = math.radians(b[1] - a[1]) * 6_371_000.0 * math.cos(math.radians((a[0] + b[0]) / 2))
    return math.hypot(north, east), abs(b[2] - a[2])


def locate_photos(photos: Sequence[PhotoMeta], log: FlightLog | None, accuracy: GpsAccuracy) -> LocatedPhotos:
    """Each photo's position and its source; what was done with the flight log, for the report."""
    located = LocatedPhotos()
    for photo in photos:
        xmp = photo.xmp
        gimbal = (
            (xmp.gimbal_pitch, xmp.gimbal_yaw, xmp.gimbal_roll)
            if xmp is not None
            and xmp.gimbal_pitch is not None
            and xmp.gimbal_yaw is not None
            and xmp.gimbal_roll is not None
            else None
        )
        relative = xmp.relative_altitude if xmp else None
        if photo.exif_gps is not None:
            located.positions[photo.name] = PhotoPosition(photo.exif_gps, "exif", relative, gimbal)
        elif xmp is not None and xmp.gps is not None:
            located.positions[photo.name] = PhotoPosition(xmp.gps, "xmp", relative, gimbal)
    if log is not None:
        located.flight_log = _apply_flight_log(photos, log, accuracy, located)
    for position in located.positions.values():
        located.sources[position.source] = located.sources.get(position.source, 0) + 1
    return located


def _apply_flight_log(
    photos: Sequence[PhotoMeta], log: FlightLog, accuracy: GpsAccuracy, located: LocatedPhotos
) -> dict[str, Any]:
    by_name = _match_by_name(photos, log)
    offset = 0.0
    if len(by_name) >= len(photos) / 2:
        matched, how = by_name, "name"
    else:
        by_time, offset = _match_by_time(photos, log)
        matched, how = (by_time, "time") if len(by_time) > len(by_name) else (by_name, "name")
    used: list[str] = []
    disagreeing: list[dict[str, Any]] = []
    for photo in photos:
        row = matched.get(photo.name)
        if row is None:
            continue
        logged = (row.lat, row.lon, row.alt)
        own = located.positions.get(photo.name)
        if own is None:
            xmp = photo.xmp
            located.positions[photo.name] = PhotoPosition(
                logged,
                "flight_log",
                xmp.relative_altitude if xmp else None,
            )
            used.append(photo.name)
            continue
        horizontal, vertical = _distance_m(own.lat_lon_alt, logged)
        if horizontal > accuracy.horizontal_m or vertical > accuracy.vertical_m:
            disagreeing.append(
                {"name": photo.name, "horizontal_m": round(horizontal, 2), "vertical_m": round(vertical, 2)}
            )
    summary: dict[str, Any] = {
        "rows": len(log.rows),
        "columns": log.columns,
        "matched_by": how,
        "photos_matched": len(matched),
        "photos_positioned_from_log": len(used),
        "unmatched_photos": len(photos) - len(matched),
    }
    if how == "time" and offset:
        summary["clock_offset_s"] = offset
    if disagreeing:
        worst = statistics.median(float(item["horizontal_m"]) for item in disagreeing)
        summary["ignored_where_photos_have_gps"] = disagreeing
        summary["note"] = (
            f"The flight log disagrees with the GPS in {len(disagreeing)} photos by more than the stated accuracy "
            f"({accuracy.horizontal_m:g} m horizontally, {accuracy.vertical_m:g} m vertically; median "
            f"{worst:.1f} m horizontally): those photos keep their own GPS and the log is ignored for them."
        )
    elif not matched:
        summary["note"] = "No photo matched a row of the flight log by name or by time: the log was not used."
    return summary
